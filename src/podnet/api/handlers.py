"""HTTP handlers for resources: decode the request, call the registry, encode the answer."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from podnet.api import bodies, fieldvalidation, objmeta, protobuf, routing, tables
from podnet.api.deletion import DeleteOptions, Deleter
from podnet.api.errors import APIError, bad_request, method_not_allowed, too_large
from podnet.api.exec_proxy import ExecProxy
from podnet.api.logs import LogProxy
from podnet.api.portforward import PortForwardProxy
from podnet.api.registry import Registry
from podnet.api.selection import make_filter
from podnet.api.subresources import Subresources
from podnet.api.watch import Watcher
from podnet.model import kinds
from podnet.model.kinds import Obj, ResourceType

TRUE = ("1", "true", "True")


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(obj, separators=(",", ":")).encode(),
                        content_type="application/json", headers=CACHE_CONTROL)


CACHE_CONTROL = {"Cache-Control": "no-cache, private"}  # apiserver filters/cachecontrol.go, every answer


def status_response(err: APIError) -> web.Response:
    """An error as kube-apiserver answers it: the Status bytes (errors.APIError.body), application/json."""
    return web.Response(status=err.code, body=err.body(), content_type="application/json",
                        headers=CACHE_CONTROL)


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any("as=Table" in part and "g=meta.k8s.io" in part for part in accept.split(","))


def table_for(rt: ResourceType, objs: list[Obj], include_object: str = "Metadata") -> Obj:
    """Server-side printing (podnet.api.tables), as kubectl asks for it with `Accept: ...;as=Table`."""
    if include_object not in ("None", "Metadata", "Object"):
        raise bad_request(f'includeObject: Unsupported value: "{include_object}": supported values: '
                          f'"None", "Metadata", "Object"')
    return tables.table_for(rt, objs, include_object=include_object)


async def read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large() from None


BODY_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")


def body_format(content_type: str) -> str:
    """"json", "yaml" or "protobuf" for a request's Content-Type (none: JSON, as kube-apiserver
    takes its first serializer); anything else is refused with kube-apiserver's 415."""
    mtype = content_type.split(";", 1)[0].strip().lower()
    if mtype in ("", "application/json"):
        return "json"
    if mtype == "application/yaml":
        return "yaml"
    if mtype == "application/vnd.kubernetes.protobuf":
        return "protobuf"
    raise unsupported_body()


async def decode_object(raw: bytes, content_type: str, rt: ResourceType) -> Obj:
    """A request body as an object of the resource's kind (Kubernetes' decode errors: 400)."""
    fmt = body_format(content_type)
    if not raw.strip():
        raise bad_request("the body of the request was empty")
    try:
        if fmt == "protobuf":
            data = protobuf.decode(raw)
        else:
            data = await (bodies.decode_yaml(raw) if fmt == "yaml" else bodies.decode_json(raw))
    except protobuf.ProtobufError as e:
        raise APIError(415, "UnsupportedMediaType", str(e)) from None
    except bodies.DecodeError as e:
        raise bad_request(f"couldn't get version/kind; {fmt} parse error: {e}") from None
    if not isinstance(data, dict):
        raise bad_request(f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                          f"{_go_type(data)} into Go value of type struct {{ APIVersion string "
                          f'"json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }}')
    kind, api_version = data.get("kind"), data.get("apiVersion")
    if api_version and api_version != rt.api_version:
        raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                          f"API version ({rt.api_version})")
    if kind and kind != rt.kind:
        raise bad_request(f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                          f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
    if "metadata" in data and not isinstance(data["metadata"], dict):
        raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                          f"json: cannot unmarshal {_go_type(data['metadata'])} into Go struct field "
                          f"{rt.kind}.metadata of type v1.ObjectMeta")
    return data


def _go_type(value: Any) -> str:
    """The JSON type name Go's decoder puts in its errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def unsupported_body(content_type: str = "") -> APIError:
    """kube-apiserver's 415 (negotiation.NewUnsupportedMediaTypeError); client-go retries a CBOR
    request as JSON on it."""
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types include: "
                    f"{', '.join(BODY_TYPES)}")


def _int_param(request: web.Request, name: str) -> int | None:
    v = request.query.get(name)
    if v is None or v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise bad_request(f'{name}: Invalid value: "{v}": must be an integer') from None


class ResourceHandler:
    def __init__(self, registry: Registry, deleter: Deleter, subresources: Subresources,
                 watcher: Watcher, logs: LogProxy):
        self.registry = registry
        self.deleter = deleter
        self.sub = subresources
        self.watcher = watcher
        self.logs = logs
        self.execs = ExecProxy(registry)
        self.forwards = PortForwardProxy(self.execs)

    async def handle(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        if t.rt.namespaced and t.namespace is None and t.name:
            raise APIError(404, "NotFound", "the server could not find the requested resource")
        if t.subresource:
            return await self._subresource(request, t)
        if t.name:
            return await self._object(request, t)
        return await self._collection(request, t)

    # ---- collections -----------------------------------------------------------------------

    async def _collection(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        rt, q = t.rt, request.query
        if request.method == "GET":
            flt = make_filter(rt, q.get("labelSelector", ""), q.get("fieldSelector", ""))
            if q.get("watch", "") in TRUE:
                table = None
                if wants_table(request):
                    include = q.get("includeObject", "Metadata")

                    def table(objs: list[Obj]) -> Obj:
                        return table_for(rt, objs, include)

                return await self.watcher.serve(request, rt, t.namespace, flt, q.get("resourceVersion", ""),
                                                _timeout(request), q.get("allowWatchBookmarks", "") in TRUE,
                                                table, q.get("sendInitialEvents", "") in TRUE)
            limit = _int_param(request, "limit") or 0
            res = await self.registry.list(rt, t.namespace, flt, limit, q.get("continue", ""))
            if wants_table(request):
                doc = table_for(rt, res.items, q.get("includeObject", "Metadata"))
                doc.setdefault("metadata", {})["resourceVersion"] = res.resource_version
                if res.cont:
                    doc["metadata"]["continue"] = res.cont
                return json_response(doc)
            return json_response(objmeta.list_object(rt, res.items, res.resource_version, res.cont,
                                                     res.remaining))
        if request.method == "POST":
            if rt.namespaced and t.namespace is None:
                raise method_not_allowed()
            mode = fieldvalidation.directive(request, "CreateOptions")
            body = await decode_object(await read_body(request), _ctype(request), rt)
            warnings = await bodies.offload(fieldvalidation.check_body, rt, body, mode)
            obj = await self.registry.create(rt, t.namespace or "", body, dry_run=_dry_run(request),
                                             body_is_ours=True)
            return fieldvalidation.add_warnings(json_response(obj, 201), warnings)
        if request.method == "DELETE" and "deletecollection" in rt.verbs:
            if rt.namespaced and t.namespace is None:
                raise method_not_allowed()  # deletecollection is served per namespace only
            return await self._delete_collection(request, t)
        raise method_not_allowed()

    async def _delete_collection(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        rt, q = t.rt, request.query
        opts = DeleteOptions.from_request(await _optional_json(request), dict(q))
        flt = make_filter(rt, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        res = await self.registry.list(rt, t.namespace, flt)
        out: list[Obj] = []
        for o in res.items:
            try:
                obj, _ = await self.deleter.delete(rt, objmeta.namespace_of(o), objmeta.name_of(o), opts)
            except APIError as e:
                if e.code == 404:
                    continue
                raise
            out.append(obj)
        return json_response(objmeta.list_object(rt, out, str(await self.registry.store.current_rv())))

    # ---- single objects --------------------------------------------------------------------

    async def _object(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        rt, ns, name = t.rt, t.namespace or "", t.name
        if request.method == "GET":
            obj = await self.registry.get(rt, ns, name)
            if wants_table(request):
                return json_response(table_for(rt, [obj], request.query.get("includeObject", "Metadata")))
            return json_response(obj)
        if request.method == "PUT":
            mode = fieldvalidation.directive(request, "UpdateOptions")
            body = await decode_object(await read_body(request), _ctype(request), rt)
            warnings = await bodies.offload(fieldvalidation.check_body, rt, body, mode)
            obj, created = await self.registry.update(rt, ns, name, body, dry_run=_dry_run(request))
            return fieldvalidation.add_warnings(json_response(obj, 201 if created else 200), warnings)
        if request.method == "PATCH":
            mode = fieldvalidation.directive(request, "PatchOptions")
            raw = await read_body(request)
            found: list[str] = []
            obj, created = await self.sub.patch(rt, ns, name, request.headers.get("Content-Type", ""), raw,
                                                field_manager=request.query.get("fieldManager", ""),
                                                dry_run=_dry_run(request), field_validation=mode,
                                                warnings=found)
            return fieldvalidation.add_warnings(json_response(obj, 201 if created else 200), found)
        if request.method == "DELETE":
            opts = DeleteOptions.from_request(await _optional_json(request), dict(request.query))
            if _dry_run(request):
                opts.dry_run = True
            obj, removed = await self.deleter.delete(rt, ns, name, opts)
            code = 202 if not removed and opts.propagation == "Foreground" else 200
            return json_response(obj, code)
        raise method_not_allowed()

    # ---- subresources ----------------------------------------------------------------------

    async def _subresource(self, request: web.Request, t: routing.Target) -> web.StreamResponse:
        rt, ns, name, sub = t.rt, t.namespace or "", t.name, t.subresource
        method = request.method
        if sub == "status":
            if method == "GET":
                return json_response(await self.registry.get(rt, ns, name))
            if method == "PUT":
                body = await decode_object(await read_body(request), _ctype(request), rt)
                return json_response(await self.registry.update_status(rt, ns, name, body,
                                                                       dry_run=_dry_run(request)))
            if method == "PATCH":
                obj, _ = await self.sub.patch(rt, ns, name, request.headers.get("Content-Type", ""),
                                              await read_body(request), subresource="status",
                                              field_manager=request.query.get("fieldManager", ""),
                                              dry_run=_dry_run(request))
                return json_response(obj)
        elif sub == "scale":
            if method == "GET":
                return json_response(await self.sub.get_scale(rt, ns, name))
            if method == "PUT":
                body = await _scale_body(await read_body(request))
                scale = await self.sub.update_scale(rt, ns, name, body, dry_run=_dry_run(request))
                return json_response(scale)
            if method == "PATCH":
                obj, _ = await self.sub.patch(rt, ns, name, request.headers.get("Content-Type", ""),
                                              await read_body(request), subresource="scale",
                                              field_manager=request.query.get("fieldManager", ""),
                                              dry_run=_dry_run(request))
                return json_response(obj)
        elif sub == "log" and rt is kinds.PODS:
            if method == "GET":
                return await self.logs.serve(request, ns, name)
        elif sub == "finalize" and rt is kinds.NAMESPACES:
            if method == "PUT":
                body = await decode_object(await read_body(request), _ctype(request), rt)
                return json_response(await self.registry.finalize_namespace(name, body))
        elif sub == "binding" and rt is kinds.PODS:
            if method == "POST":
                body = await _plain_json(await read_body(request))
                return json_response(await self.registry.bind(ns, name, body), 201)
        elif sub == "exec" and rt is kinds.PODS:
            if method in ("GET", "POST"):
                return await self.execs.serve(request, ns, name)
        elif sub == "portforward" and rt is kinds.PODS:
            if method in ("GET", "POST"):
                return await self.forwards.serve(request, ns, name)
        elif sub == "attach" and rt is kinds.PODS and method in ("GET", "POST"):
            return await self.execs.serve(request, ns, name, "attach")
        raise method_not_allowed()


async def _scale_body(raw: bytes) -> Obj:
    return await _plain_json(raw)


async def _plain_json(raw: bytes) -> Obj:
    try:
        data = await bodies.decode_json(raw)
    except bodies.DecodeError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None
    if not isinstance(data, dict):
        raise bad_request("the body of the request must be a JSON object")
    return data


async def _optional_json(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        return None
    if "protobuf" in request.content_type:
        try:
            return protobuf.decode(raw)
        except protobuf.ProtobufError as e:
            raise APIError(415, "UnsupportedMediaType", str(e)) from None
    try:
        return await bodies.decode_json(raw)
    except bodies.DecodeError as e:
        raise bad_request(f"couldn't get version/kind; json parse error: {e}") from None


def _ctype(request: web.Request) -> str:
    return request.headers.get("Content-Type", "")


def _dry_run(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def _timeout(request: web.Request) -> float | None:
    v = _int_param(request, "timeoutSeconds")
    # 0: the server's default; negative: already expired (kube-apiserver's context.WithTimeout)
    return None if v is None or v == 0 else max(float(v), 0.0)
