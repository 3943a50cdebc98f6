"""What Services mean beyond their fields, defined once for every layer that reads them.

The well-known labels of Services' EndpointSlices, and whether a Service is headless: the
API server's allocators, the endpoint controllers, the proxy and the DNS server all use these.
"""

from __future__ import annotations

from podnet.model.kinds import Obj

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
"""On an EndpointSlice: the Service it belongs to."""

HEADLESS_LABEL = "service.kubernetes.io/headless"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
"""On an EndpointSlice: the controller that manages it."""

ENDPOINTSLICE_CONTROLLER = "endpointslice-controller.k8s.io"
"""The MANAGED_BY_LABEL value of the slices the EndpointSlice controller makes (the ones a proxy uses)."""
"""On an EndpointSlice (and Endpoints) of a headless Service."""

NONE_IP = "None"
"""`spec.clusterIP: None`: a headless Service."""


def is_headless(svc: Obj) -> bool:
    """The Service asks for no virtual IP: `spec.clusterIP` (or the first of `spec.clusterIPs`) is None."""
    spec = svc.get("spec") or {}
    return spec.get("clusterIP") == NONE_IP or (spec.get("clusterIPs") or [None])[0] == NONE_IP


def without_cluster_ip(svc: Obj) -> bool:
    """A stored Service that is reached through its endpoints' own IPs: not an ExternalName, and no
    ClusterIP (headless, or none allocated). How the endpoint controllers and DNS read Services."""
    spec = svc.get("spec") or {}
    return spec.get("type") != "ExternalName" and spec.get("clusterIP") in (NONE_IP, "", None)
