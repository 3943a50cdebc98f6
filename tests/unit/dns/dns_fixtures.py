"""Builders for the Services, EndpointSlices and Pods the DNS tests feed in (wire shape)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(name: str, ns: str = "default", *, cluster_ip: str | None = "10.96.0.50",
            ports: list[Obj] | None = None, type_: str = "ClusterIP", external_name: str = "",
            publish_not_ready: bool = False) -> Obj:
    spec: Obj = {"type": type_}
    if ports is None:
        ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    if type_ != "ExternalName":
        spec["ports"] = ports
        spec["clusterIP"] = cluster_ip
        if cluster_ip and cluster_ip != "None":
            spec["clusterIPs"] = [cluster_ip]
    else:
        spec["externalName"] = external_name
    if publish_not_ready:
        spec["publishNotReadyAddresses"] = True
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}


def endpoint(ip: str, *, ready: bool | None = True, hostname: str = "", node: str = "node-1") -> Obj:
    ep: Obj = {"addresses": [ip], "nodeName": node}
    if ready is not None:
        ep["conditions"] = {"ready": ready, "serving": ready, "terminating": False}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(name: str, svc: str, endpoints: list[Obj], ns: str = "default", *,
                   ports: list[Obj] | None = None, address_type: str = "IPv4") -> Obj:
    if ports is None:
        ports = [{"name": "http", "port": 8080, "protocol": "TCP"}]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc,
                                    "endpointslice.kubernetes.io/managed-by":
                                        "endpointslice-controller.k8s.io"}},
            "addressType": address_type, "ports": ports, "endpoints": endpoints}


def pod(name: str, ip: str | None, ns: str = "default", *, phase: str = "Running", **spec: Any) -> Obj:
    status: Obj = {"phase": phase}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}, "status": status}
