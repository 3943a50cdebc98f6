"""Objects for the policy tests: namespaces x, y, z and pods in them, on nodes n1 and n2."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def ns(name: str, **labels: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name, "ns": name, **labels}}}


def pod(namespace: str, name: str, ip: str, node: str = "n1", labels: dict[str, str] | None = None,
        ports: tuple[tuple[str, int, str], ...] = (("serve-80-tcp", 80, "TCP"), ("serve-81-tcp", 81, "TCP"),
                                                   ("serve-80-udp", 80, "UDP"))) -> Obj:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": namespace, "name": name, "labels": labels or {"pod": name}},
            "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                {"name": n, "containerPort": p, "protocol": pr} for n, p, pr in ports]}]},
            "status": {"phase": "Running", "podIP": ip}}


def netpol(namespace: str, name: str, **spec: Any) -> Obj:
    from podnet.model.defaults import apply_defaults

    obj = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"namespace": namespace, "name": name}, "spec": {"podSelector": {}, **spec}}
    return apply_defaults(obj)


NAMESPACES = [ns("x"), ns("y"), ns("z")]
# x/a, y/a, z/a on n1; b and c on n2
PODS = [pod(n, p, f"10.244.{1 if p == 'a' else 2}.{10 * (i + 1) + j}", "n1" if p == "a" else "n2")
        for i, n in enumerate("xyz") for j, p in enumerate("abc")]
IPS = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"] for p in PODS}
