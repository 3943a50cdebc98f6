"""What a node may read because a pod bound to it uses it (kube-apiserver's node authorizer graph):
the Secrets a pod mounts or reads into env (and pulls images with), and its ServiceAccount, whose
tokens the node requests for the pod's projected volume."""

from __future__ import annotations

from typing import Any

from podnet.model.kinds import Obj


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _l(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def secrets_used_by(pod: Obj) -> set[str]:
    spec = _d(pod.get("spec"))
    names = {str(_d(r).get("name")) for r in _l(spec.get("imagePullSecrets")) if _d(r).get("name")}
    for v in _l(spec.get("volumes")):
        name = _d(_d(v).get("secret")).get("secretName")
        if name:
            names.add(str(name))
        for src in _l(_d(_d(v).get("projected")).get("sources")):
            pname = _d(_d(src).get("secret")).get("name")
            if pname:
                names.add(str(pname))
    for c in [*_l(spec.get("containers")), *_l(spec.get("initContainers"))]:
        for ef in _l(_d(c).get("envFrom")):
            ref = _d(_d(ef).get("secretRef")).get("name")
            if ref:
                names.add(str(ref))
        for e in _l(_d(c).get("env")):
            ref = _d(_d(_d(e).get("valueFrom")).get("secretKeyRef")).get("name")
            if ref:
                names.add(str(ref))
    return names


def service_account_of(pod: Obj) -> str:
    spec = _d(pod.get("spec"))
    return str(spec.get("serviceAccountName") or spec.get("serviceAccount") or "default")
