"""The ServiceAccount and root-CA publisher controllers of kube-controller-manager: every active
namespace gets a `default` ServiceAccount and a `kube-root-ca.crt` ConfigMap holding the cluster
CA (what in-cluster clients verify the API server with)."""

from __future__ import annotations

import copy

from podnet.controllers import objects
from podnet.controllers.actions import Action
from podnet.model.kinds import CONFIGMAPS, SERVICEACCOUNTS, Obj

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such "
    "as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)


def root_ca_configmap(namespace: str, ca_pem: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": ROOT_CA_CONFIGMAP,
            "namespace": namespace,
            "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
        },
        "data": {"ca.crt": ca_pem},
    }


def reconcile_namespace(
    ns: Obj, service_accounts: list[Obj], configmaps: list[Obj], ca_pem: str
) -> list[Action]:
    """Actions for one namespace, given its ServiceAccounts and ConfigMaps (from the caches)."""
    if objects.is_deleting(ns) or (ns.get("status") or {}).get("phase") == "Terminating":
        return []
    name = objects.name(ns)
    actions: list[Action] = []
    if not any(objects.name(sa) == "default" for sa in service_accounts):
        actions.append(
            Action(
                "create",
                SERVICEACCOUNTS,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": name},
                },
            )
        )
    if ca_pem:
        current = next((cm for cm in configmaps if objects.name(cm) == ROOT_CA_CONFIGMAP), None)
        if current is None:
            actions.append(Action("create", CONFIGMAPS, root_ca_configmap(name, ca_pem)))
        elif (current.get("data") or {}).get("ca.crt") != ca_pem or current.get("binaryData"):
            fixed = copy.deepcopy(current)
            fixed["data"] = {"ca.crt": ca_pem}
            fixed.pop("binaryData", None)
            actions.append(Action("update", CONFIGMAPS, fixed))
    return actions
