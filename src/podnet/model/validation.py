"""Field validation with Kubernetes' paths, error types and messages.

`validate(obj, old=None)` validates a *defaulted* object (run `apply_defaults` first, as the
API server does): create rules when `old` is None, update rules otherwise. It returns the
`FieldError` list in Kubernetes' order; an empty list means valid. Turn it into the 422
`Status` with `podnet.api.errors.invalid(rt, name, errors)`.

What is *not* checked here, because Kubernetes does it elsewhere:
- clusterIP / nodePort allocation and ranges (the allocators);
- Service updates that omit `clusterIP` or `nodePort` (the REST layer copies the old
  values in before validating; do that before calling `validate(new, old)`);
- the namespace in the URL vs the body (the API server).
Fields with the wrong JSON type (a string for a port number) are returned alone as
FieldValueTypeInvalid errors; Kubernetes rejects those at decoding with 400 BadRequest, whose
text `podnet.model.wiretypes.decode_error(obj)` gives.
For Services, `clusterIPs` is taken to mirror `clusterIP` when only `clusterIP` is given
(what the REST layer's normalisation does before validation).
"""

from __future__ import annotations

from collections.abc import Callable

from podnet.model.errors import FieldError, required
from podnet.model.kinds import Obj
from podnet.model.openapi_schema import validate_custom
from podnet.model.validation_anp import validate_admin_network_policy, validate_baseline_admin_network_policy
from podnet.model.validation_apps import validate_deployment, validate_replicaset
from podnet.model.validation_identity import (
    validate_cluster_role,
    validate_cluster_role_binding,
    validate_role,
    validate_role_binding,
    validate_secret,
    validate_service_account,
)
from podnet.model.validation_misc import (
    validate_configmap,
    validate_endpoints,
    validate_endpointslice,
    validate_event,
    validate_namespace,
    validate_node,
)
from podnet.model.validation_netpol import validate_network_policy
from podnet.model.validation_pod import validate_pod, validate_pod_update
from podnet.model.validation_policy import (
    validate_apiservice,
    validate_controller_revision,
    validate_crd,
    validate_hpa,
    validate_pdb,
)
from podnet.model.validation_service import validate_service, validate_service_update
from podnet.model.validation_workloads import (
    validate_cronjob,
    validate_daemonset,
    validate_job,
    validate_replication_controller,
    validate_statefulset,
)
from podnet.model.wiretypes import type_errors

Validator = Callable[[Obj, Obj | None], list[FieldError]]


def _service(obj: Obj, old: Obj | None) -> list[FieldError]:
    return validate_service(obj) if old is None else validate_service_update(obj, old)


def _pod(obj: Obj, old: Obj | None) -> list[FieldError]:
    return validate_pod(obj) if old is None else validate_pod_update(obj, old)


_VALIDATORS: dict[tuple[str, str], Validator] = {
    ("v1", "Service"): _service,
    ("v1", "Pod"): _pod,
    ("v1", "Namespace"): validate_namespace,
    ("v1", "Node"): validate_node,
    ("v1", "Endpoints"): validate_endpoints,
    ("v1", "ConfigMap"): validate_configmap,
    ("v1", "Event"): validate_event,
    ("apps/v1", "Deployment"): validate_deployment,
    ("apps/v1", "ReplicaSet"): validate_replicaset,
    ("discovery.k8s.io/v1", "EndpointSlice"): validate_endpointslice,
    ("v1", "Secret"): validate_secret,
    ("v1", "ServiceAccount"): validate_service_account,
    ("v1", "ReplicationController"): validate_replication_controller,
    ("apps/v1", "DaemonSet"): validate_daemonset,
    ("apps/v1", "StatefulSet"): validate_statefulset,
    ("apps/v1", "ControllerRevision"): validate_controller_revision,
    ("batch/v1", "Job"): validate_job,
    ("batch/v1", "CronJob"): validate_cronjob,
    ("rbac.authorization.k8s.io/v1", "Role"): validate_role,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): validate_cluster_role,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): validate_role_binding,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): validate_cluster_role_binding,
    ("policy/v1", "PodDisruptionBudget"): validate_pdb,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): validate_hpa,
    ("apiregistration.k8s.io/v1", "APIService"): validate_apiservice,
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): validate_crd,
    ("networking.k8s.io/v1", "NetworkPolicy"): validate_network_policy,
    ("policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy"): validate_admin_network_policy,
    ("policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy"):
        validate_baseline_admin_network_policy,
}


def validate(obj: Obj, old: Obj | None = None, *, types_checked: bool = False) -> list[FieldError]:
    """Validate `obj` (create when `old` is None, else update from `old`). `types_checked`: the caller
    has just run `type_errors` on this very object, unchanged since, and it found nothing."""
    if not isinstance(obj, dict):
        return [required("", "the object must be a JSON/YAML mapping")]
    api_version = str(obj.get("apiVersion") or "")
    kind = str(obj.get("kind") or "")
    errs: list[FieldError] = []
    if not api_version:
        errs.append(required("apiVersion", ""))
    if not kind:
        errs.append(required("kind", ""))
    if errs:
        return errs
    fn = _VALIDATORS.get((api_version, kind))
    if fn is None:
        return validate_custom(obj, old if isinstance(old, dict) else None)
    wrong_types = [] if types_checked else type_errors(obj)
    if wrong_types:
        # Kubernetes fails these at decoding, before validation (see wiretypes.decode_error for its 400 text).
        return wrong_types
    return fn(obj, old if isinstance(old, dict) else None)
