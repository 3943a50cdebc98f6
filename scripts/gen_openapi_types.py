"""Regenerate src/podnet/model/openapi_types.py: the field names and types of every served kind.

    .venv/bin/python scripts/gen_openapi_types.py

Reads the official `kubernetes` Python client's models (their `openapi_types` and `attribute_map`,
generated from Kubernetes' own OpenAPI document), starting from each kind in podnet.model.kinds, and
writes one table: schema name -> {JSON field: type}. Only names and types are taken; podnet writes its
own descriptions (podnet.model.openapi_docs). Run it again when a kind is added.
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes.client.models as models

from podnet.model import kinds

OUT = Path(__file__).resolve().parents[1] / "src" / "podnet" / "model" / "openapi_types.py"
META = {"ObjectMeta", "ListMeta", "LabelSelector", "LabelSelectorRequirement", "OwnerReference",
        "ManagedFieldsEntry", "Condition", "Status", "StatusDetails", "StatusCause"}
SPECIAL = {"ApiextensionsV1ServiceReference": "ServiceReference", "ApiregistrationV1ServiceReference":
           "ServiceReference", "CoreV1Event": "Event", "CoreV1EventSeries": "EventSeries",
           "CoreV1EndpointPort": "EndpointPort", "DiscoveryV1EndpointPort": "EndpointPort",
           "AdmissionregistrationV1ServiceReference": "ServiceReference",
           "ApiextensionsV1WebhookClientConfig": "WebhookClientConfig"}
PKG = {"": "core", "apps": "apps", "batch": "batch", "discovery.k8s.io": "discovery",
       "networking.k8s.io": "networking", "rbac.authorization.k8s.io": "rbac", "policy": "policy",
       "autoscaling": "autoscaling", "authorization.k8s.io": "authorization",
       "authentication.k8s.io": "authentication"}
SPECIAL_ROOTS = {
    ("apiregistration.k8s.io", "APIService"): "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1",
    ("apiextensions.k8s.io", "CustomResourceDefinition"):
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
}


METRICS = "io.k8s.metrics.pkg.apis.metrics.v1beta1"
EXTRA: dict[str, dict[str, str]] = {  # kinds the client has no model of (metrics-server's own types)
    f"{METRICS}.NodeMetrics": {"apiVersion": "string", "kind": "string",
                               "metadata": "#io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                               "timestamp": "date-time", "window": "string", "usage": "{}any"},
    f"{METRICS}.PodMetrics": {"apiVersion": "string", "kind": "string",
                              "metadata": "#io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                              "timestamp": "date-time", "window": "string",
                              "containers": f"[]#{METRICS}.ContainerMetrics"},
    f"{METRICS}.ContainerMetrics": {"name": "string", "usage": "{}any"},
}


def class_for(rt: kinds.ResourceType) -> type:
    version = rt.version[0].upper() + rt.version[1:]
    for name in (f"{version}{rt.kind}", f"Core{version}{rt.kind}"):
        if hasattr(models, name):
            return getattr(models, name)  # type: ignore[no-any-return]
    raise LookupError(f"no model for {rt.api_version} {rt.kind}")


CORE = "io.k8s.api.core.v1"


def core_classes() -> set[str]:
    """The model classes reachable from the core group's kinds: core/v1 types (the client's models
    carry no package, and apps/batch kinds embed core types such as PodTemplateSpec)."""
    seen: set[str] = set()
    todo = [class_for(rt) for rt in kinds.ALL_RESOURCES if rt.group == ""]
    while todo:
        cls = todo.pop()
        if cls.__name__ in seen:
            continue
        seen.add(cls.__name__)
        for t in cls.openapi_types.values():
            for name in re.findall(r"[A-Za-z0-9_]+", t):
                if name[0].isupper() and hasattr(models, name) and name not in ("List", "Dict"):
                    todo.append(getattr(models, name))
    return seen


def short_name(cls_name: str) -> str:
    if cls_name in SPECIAL:
        return SPECIAL[cls_name]
    return re.sub(r"^(V\d+(alpha\d+|beta\d+)?)", "", cls_name)


def main() -> None:
    schemas: dict[str, dict[str, str]] = {}
    roots: dict[str, str] = {}
    todo: list[tuple[type, str]] = []
    for rt in (*kinds.ALL_RESOURCES, *kinds.SERVED_REVIEWS):
        try:
            cls = class_for(rt)
        except LookupError as e:
            print(f"skipped: {e} (served with its envelope only)")
            continue
        prefix = SPECIAL_ROOTS.get((rt.group, rt.kind)) or f"io.k8s.api.{PKG[rt.group]}.{rt.version}"
        roots[f"{rt.api_version}/{rt.kind}"] = f"{prefix}.{rt.kind}"
        todo.append((cls, prefix))

    core = core_classes()

    def name_of(cls_name: str, prefix: str) -> str:
        short = short_name(cls_name)
        if short in META:
            return f"io.k8s.apimachinery.pkg.apis.meta.v1.{short}"
        if cls_name in core:  # PodSpec, Container, ...: core types wherever they are used, as kube names them
            return f"{CORE}.{short}"
        version = re.match(r"^V(\d+(alpha\d+|beta\d+)?)", cls_name)
        if version and not prefix.endswith("." + "v" + version.group(1)):
            prefix = prefix.rsplit(".", 1)[0] + ".v" + version.group(1)
        return f"{prefix}.{short}"

    def type_of(t: str, prefix: str) -> str:
        t = t.strip()
        if t.startswith("List[") or t.startswith("list["):
            return "[]" + type_of(t[5:-1], prefix)
        if t.startswith("Dict[") or t.startswith("dict("):
            inner = t[5:-1].split(",", 1)[1]
            return "{}" + type_of(inner, prefix)
        simple = {"str": "string", "int": "integer", "bool": "boolean", "float": "number",
                  "datetime": "date-time", "date": "date-time", "object": "any", "bytearray": "byte",
                  "bytes": "byte"}
        if t in simple:
            return simple[t]
        cls = getattr(models, t)
        todo.append((cls, prefix))
        return "#" + name_of(t, prefix)

    for rt in kinds.METRICS:
        roots[f"{rt.api_version}/{rt.kind}"] = f"{METRICS}.{rt.kind}"
    schemas.update(EXTRA)
    while todo:
        cls, prefix = todo.pop()
        key = name_of(cls.__name__, prefix)
        if key in schemas:
            continue
        fields: dict[str, str] = {}
        schemas[key] = fields
        for attr, t in cls.openapi_types.items():
            fields[cls.attribute_map[attr]] = type_of(t, prefix)

    lines = ['"""Field names and types of every served kind, for the OpenAPI documents (api/openapi.py).',
             "",
             "Generated by scripts/gen_openapi_types.py from the names and types of the official",
             "`kubernetes` Python client's models; do not edit by hand. A type is `string`, `integer`,",
             "`boolean`, `number`,",
             "`date-time`, `byte`, `any` (int-or-string, quantities, raw JSON), `#<schema>` (a struct),",
             "`[]<type>` (a list) or `{}<type>` (a map from string keys).",
             '"""', "", "from __future__ import annotations", "",
             "ROOTS: dict[str, str] = {"]
    lines += [f"    {k!r}: {v!r}," for k, v in sorted(roots.items())]
    lines += ["}", "", "SCHEMAS: dict[str, dict[str, str]] = {"]
    for key in sorted(schemas):
        lines.append(f"    {key!r}: {{")
        lines += [f"        {f!r}: {t!r}," for f, t in sorted(schemas[key].items())]
        lines.append("    },")
    lines += ["}", ""]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}: {len(roots)} kinds, {len(schemas)} schemas")


if __name__ == "__main__":
    main()
