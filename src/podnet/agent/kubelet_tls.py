"""The node endpoint's TLS: the node's serving certificate (signed by the cluster CA through the API)
and the server context that requires the API server's client certificate.

The key is made here and stays in `<node dir>/kubelet.key` (0600); the CSR goes to the API server in
an annotation of the node's own Node (podnet.core.tls.SERVING_CSR_ANNOTATION), which signs it in that
same write for the node's name and the addresses the node reports; the certificate comes back in
SERVING_CERT_ANNOTATION. A certificate still valid for the node IP is reused across restarts.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from podnet.client.client import ApiClient
from podnet.core.config import write_private
from podnet.core.tls import (
    SERVING_CERT_ANNOTATION,
    SERVING_CSR_ANNOTATION,
    kubelet_server_ssl_context,
    kubelet_serving_csr,
    serving_cert_ok,
)
from podnet.model.kinds import NODES

log = logging.getLogger("podnet.agent")


class KubeletTLSError(Exception):
    """No serving certificate could be had; the message says why."""


async def kubelet_server_context(client: ApiClient, *, node: str, ip: str, ca_file: Path,
                                 node_dir: Path) -> ssl.SSLContext:
    """The TLS context for <ip>:10250, getting a serving certificate through the API when needed."""
    if not ca_file.exists():
        raise KubeletTLSError(f"no cluster CA at {ca_file}: cannot authenticate callers")
    crt, key = node_dir / "kubelet.crt", node_dir / "kubelet.key"
    if not (serving_cert_ok(crt, ca_file, ip) and key.exists()):
        key_pem, csr_pem = kubelet_serving_csr(node, ip)
        patched = await client.patch(NODES, node, {"metadata": {"annotations": {
            SERVING_CSR_ANNOTATION: csr_pem.decode()}}})
        annotations = (patched.get("metadata") or {}).get("annotations") or {}
        cert = str(annotations.get(SERVING_CERT_ANNOTATION) or "")
        if not cert:
            raise KubeletTLSError("the API server signed no serving certificate for this node (is it a "
                                  "podnet control plane with the cluster CA?)")
        node_dir.mkdir(parents=True, exist_ok=True)
        write_private(key, key_pem.decode())
        write_private(crt, cert)
        if not serving_cert_ok(crt, ca_file, ip):
            raise KubeletTLSError(f"the serving certificate the API server signed is not valid for {ip} "
                                  f"under {ca_file}")
        log.info("node %s: serving certificate for %s signed by the cluster CA", node, ip)
    return kubelet_server_ssl_context(ca_file, crt, key)
