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


def anp(name: str, priority: int, subject: Obj, ingress: list[Obj] | None = None,
        egress: list[Obj] | None = None) -> Obj:
    """An AdminNetworkPolicy, defaulted and checked by the model (so the tests only use valid ones)."""
    from podnet.model.defaults import apply_defaults
    from podnet.model.validation import validate

    spec: Obj = {"priority": priority, "subject": subject}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    obj = apply_defaults({"apiVersion": "policy.networking.k8s.io/v1alpha1", "kind": "AdminNetworkPolicy",
                          "metadata": {"name": name}, "spec": spec})
    assert validate(obj) == [], validate(obj)
    return obj


def banp(subject: Obj, ingress: list[Obj] | None = None, egress: list[Obj] | None = None) -> Obj:
    obj = anp("default", 0, subject, ingress, egress)
    obj["kind"] = "BaselineAdminNetworkPolicy"
    del obj["spec"]["priority"]
    return obj


def ns_sel(name: str) -> Obj:
    """`namespaces:` selecting one of x, y, z by its `ns` label."""
    return {"namespaces": {"matchLabels": {"ns": name}}}
