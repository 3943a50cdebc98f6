"""Who a request is and what it may do, for ServiceAccount tokens and impersonation; plus the APIs
that answer such questions: TokenRequest (`serviceaccounts/<name>/token`), SelfSubjectAccessReview,
SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview, SelfSubjectReview and
TokenReview.

The API server calls `handle_token` for a bearer token that looks like a JWT, `impersonate` for an
admin request carrying `Impersonate-User` (what `kubectl --as` sends), and `serve` for the review
and token resources. The admin token stays cluster-admin (`system:masters`); join-token node
credentials stay with `podnet.api.auth.NodeAuthorizer`.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from aiohttp import web

from podnet.api import protobuf, routing
from podnet.api.auth import forbidden_for, request_attributes
from podnet.api.errors import APIError, bad_request, invalid, not_found, unauthorized
from podnet.api.hooks import NoReservation, Reservation
from podnet.api.rbac import BOOTSTRAP, RBACAuthorizer, Request
from podnet.api.registry import Registry
from podnet.api.sa_tokens import (
    DEFAULT_AUDIENCES,
    MIN_EXPIRATION,
    ServiceAccountAuthenticator,
    TokenIssuer,
    UserInfo,
    service_account_user,
)
from podnet.api.selection import make_filter
from podnet.model import kinds
from podnet.model.errors import invalid as field_invalid
from podnet.model.errors import required
from podnet.model.kinds import Obj, ResourceType

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
USER_KEY = web.RequestKey("podnet.user", UserInfo)
ADMIN = UserInfo("kubernetes-admin", ("system:masters", "system:authenticated"))
TOKEN_REQUEST_RT = ResourceType("authentication.k8s.io", "v1", "TokenRequest", "token", "token", True)


def _d(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _json(obj: Any, status: int = 201) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(obj, separators=(",", ":")).encode(), content_type="application/json"
    )


def user_of(request: web.Request) -> UserInfo | None:
    user = request.get(USER_KEY)
    return user if isinstance(user, UserInfo) else None


class Identity:
    def __init__(self, registry: Registry, key: bytes):
        self.registry = registry
        self.issuer = TokenIssuer(key)
        self.authn = ServiceAccountAuthenticator(self.issuer, self._get_sa, self._get_pod, self._get_secret)
        self.ca_pem = ""  # the cluster CA, put in token Secrets (set by the control plane)
        self.rbac = RBACAuthorizer(self._list, self._get)

    # ---- lookups -----------------------------------------------------------------------------

    async def _get(self, rt: ResourceType, ns: str, name: str) -> Obj | None:
        try:
            return await self.registry.get(rt, ns, name)
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def _get_sa(self, ns: str, name: str) -> Obj | None:
        return await self._get(kinds.SERVICEACCOUNTS, ns, name)

    async def _get_secret(self, ns: str, name: str) -> Obj | None:
        return await self._get(kinds.SECRETS, ns, name)

    async def _get_pod(self, ns: str, name: str) -> Obj | None:
        return await self._get(kinds.PODS, ns, name)

    async def _list(self, rt: ResourceType, ns: str | None) -> list[Obj]:
        return (await self.registry.list(rt, ns, make_filter(rt, "", ""))).items

    async def ensure_bootstrap_policy(self) -> None:
        """The default cluster roles and bindings, created when missing (never overwritten)."""
        for rt, obj in BOOTSTRAP:
            if await self._get(rt, "", obj["metadata"]["name"]) is None:
                try:
                    await self.registry.create(rt, "", copy.deepcopy(obj))
                except APIError as e:
                    if e.reason != "AlreadyExists":
                        raise

    # ---- authentication + authorization ---------------------------------------------------------

    async def handle_token(self, request: web.Request, token: str, handler: Handler) -> web.StreamResponse:
        user = await self.authn.authenticate(token)
        if user is None:
            raise unauthorized()
        return await self.serve_as(request, user, handler)

    async def impersonate(self, request: web.Request, name: str, handler: Handler) -> web.StreamResponse:
        """An admin request acting as another user (`Impersonate-User`, `Impersonate-Group`)."""
        groups = [g for g in request.headers.getall("Impersonate-Group", []) if g]
        user = UserInfo(name, tuple(groups))
        sa = user.service_account
        if sa is not None:
            user = service_account_user(*sa)
            user = UserInfo(user.name, tuple(dict.fromkeys([*user.groups, *groups])))
        elif "system:authenticated" not in user.groups and name != "system:anonymous":
            user = UserInfo(name, (*user.groups, "system:authenticated"))
        return await self.serve_as(request, user, handler)

    async def serve_as(self, request: web.Request, user: UserInfo, handler: Handler) -> web.StreamResponse:
        request[USER_KEY] = user
        target = routing.parse_path(request.path)
        if isinstance(target, routing.Target):
            a = request_attributes(request.method, dict(request.query), target)
            r = Request(a.verb, a.namespace, a.rt.group, a.rt.plural, a.subresource, a.name)
            if not await self.rbac.allowed(user, r):
                raise forbidden_for(user.name, a)
        else:
            verb = request.method.lower() if request.method != "GET" else "get"
            if not await self.rbac.allowed(user, Request(verb, path=request.path)):
                raise APIError(
                    403, "Forbidden", f'forbidden: User "{user.name}" cannot {verb} path "{request.path}"', {}
                )
        return await handler(request)

    # ---- review and token resources ---------------------------------------------------------------

    @staticmethod
    def handles(target: routing.Target) -> bool:
        return target.rt in kinds.REVIEWS or (
            target.rt is kinds.SERVICEACCOUNTS and target.subresource == "token"
        )

    async def serve(
        self, request: web.Request, target: routing.Target, default_user: UserInfo | None
    ) -> web.StreamResponse:
        user = user_of(request) or default_user
        token_request = target.rt is kinds.SERVICEACCOUNTS
        if user is None and not token_request:
            # only the node authorizer lets a request through without a user, and only for tokens
            raise forbidden_for("system:anonymous", request_attributes(request.method, {}, target))
        if request.method != "POST":
            raise APIError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
            )
        raw = await request.read()
        try:
            if "protobuf" in request.content_type:
                body = protobuf.decode(raw)
            else:
                body = yaml.safe_load(raw.decode("utf-8")) if "yaml" in request.content_type else \
                    json.loads(raw or b"{}")
        except protobuf.ProtobufError as e:
            raise APIError(415, "UnsupportedMediaType", str(e), {}) from None
        except (ValueError, yaml.YAMLError) as e:
            why = " ".join(str(e).split())
            raise bad_request(f"couldn't get version/kind; json parse error: {why}") from None
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        if target.rt is kinds.SERVICEACCOUNTS:
            return _json(await self.token_request(target.namespace or "", target.name, body))
        assert user is not None
        rt = target.rt
        out: dict[str, Any] = {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {
                "creationTimestamp": None,
                **{k: v for k, v in _d(body.get("metadata")).items() if k in ("name", "namespace")},
            },
            "spec": _d(body.get("spec")),
        }
        spec: dict[str, Any] = out["spec"]
        if rt is kinds.SELFSUBJECTREVIEWS:
            out.pop("spec")
            out["status"] = {"userInfo": _user_info(user)}
        elif rt is kinds.TOKENREVIEWS:
            reviewed = await self.authn.authenticate(
                str(spec.get("token") or ""), tuple(spec.get("audiences") or DEFAULT_AUDIENCES)
            )
            out["status"] = (
                {
                    "authenticated": True,
                    "user": _user_info(reviewed),
                    "audiences": list(spec.get("audiences") or DEFAULT_AUDIENCES),
                }
                if reviewed
                else {"user": {}, "error": "invalid bearer token"}
            )
        elif rt is kinds.SELFSUBJECTRULESREVIEWS:
            out["status"] = await self._rules_review(user, str(spec.get("namespace") or ""))
        else:
            subject = user
            if rt in (kinds.SUBJECTACCESSREVIEWS, kinds.LOCALSUBJECTACCESSREVIEWS):
                subject = _subject_of(rt, spec)
                if rt is kinds.LOCALSUBJECTACCESSREVIEWS:
                    ns = _d(spec.get("resourceAttributes")).get("namespace")
                    if ns != target.namespace:
                        raise invalid(
                            rt,
                            "",
                            [
                                field_invalid(
                                    "spec.resourceAttributes.namespace",
                                    ns or "",
                                    "must match metadata.namespace",
                                )
                            ],
                        )
            out["status"] = await self._access_review(subject, spec)
        return _json(out)

    async def _access_review(self, user: UserInfo, spec: dict[str, Any]) -> dict[str, Any]:
        res, nonres = _d(spec.get("resourceAttributes")), _d(spec.get("nonResourceAttributes"))
        if res:
            r = Request(
                str(res.get("verb") or ""),
                str(res.get("namespace") or ""),
                str(res.get("group") or ""),
                str(res.get("resource") or ""),
                str(res.get("subresource") or ""),
                str(res.get("name") or ""),
            )
        else:
            r = Request(str(nonres.get("verb") or ""), path=str(nonres.get("path") or ""))
        allowed = await self.rbac.allowed(user, r)
        if allowed:
            return {"allowed": True, "reason": _allow_reason(user)}
        return {"allowed": False}

    async def _rules_review(self, user: UserInfo, namespace: str) -> dict[str, Any]:
        rules = await self.rbac.rules_for(user, namespace)
        resource = [
            {k: r[k] for k in ("verbs", "apiGroups", "resources", "resourceNames") if r.get(k)}
            for r in rules
            if not r.get("nonResourceURLs")
        ]
        nonres = [
            {"verbs": r["verbs"], "nonResourceURLs": r["nonResourceURLs"]}
            for r in rules
            if r.get("nonResourceURLs")
        ]
        return {"resourceRules": resource, "nonResourceRules": nonres, "incomplete": False}

    async def token_request(self, ns: str, name: str, body: Obj) -> Obj:
        sa = await self._get_sa(ns, name)
        if sa is None:
            raise not_found(kinds.SERVICEACCOUNTS, name)
        spec = _d(body.get("spec"))
        seconds = spec.get("expirationSeconds", 3600)
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < MIN_EXPIRATION:
            raise invalid(
                TOKEN_REQUEST_RT,
                "",
                [
                    field_invalid(
                        "spec.expirationSeconds", seconds, "may not specify a duration less than 10 minutes"
                    )
                ],
            )
        if seconds > 2**32:
            raise invalid(
                TOKEN_REQUEST_RT,
                "",
                [
                    field_invalid(
                        "spec.expirationSeconds",
                        seconds,
                        "may not specify a duration larger than 2^32 seconds",
                    )
                ],
            )
        pod: tuple[str, str] | None = None
        ref = spec.get("boundObjectRef")
        if isinstance(ref, dict):
            if ref.get("kind") != "Pod":
                raise invalid(
                    TOKEN_REQUEST_RT,
                    "",
                    [
                        field_invalid(
                            "spec.boundObjectRef.kind", ref.get("kind") or "", "supported values: Pod"
                        )
                    ],
                )
            if not ref.get("name"):
                raise invalid(TOKEN_REQUEST_RT, "", [required("spec.boundObjectRef.name", "")])
            live = await self._get_pod(ns, str(ref["name"]))
            if live is None:
                raise not_found(kinds.PODS, str(ref["name"]))
            uid = str(_d(live.get("metadata")).get("uid") or "")
            if ref.get("uid") and ref["uid"] != uid:
                raise APIError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on pods "{ref["name"]}": the UID in '
                    f"the bound object reference ({ref['uid']}) does not match the UID "
                    f"in record. The object might have been deleted and then recreated",
                    {"name": str(ref["name"]), "kind": "pods"},
                )
            pod = (str(ref["name"]), uid)
        audiences = [str(a) for a in spec.get("audiences") or []] or list(DEFAULT_AUDIENCES)
        sa_uid = str(_d(sa.get("metadata")).get("uid") or "")
        token, exp = self.issuer.issue(
            ns, name, sa_uid, audiences=audiences, expiration_seconds=seconds, pod=pod
        )
        out_spec: dict[str, Any] = {
            "audiences": audiences,
            "expirationSeconds": seconds,
            "boundObjectRef": ref,
        }
        when = dt.datetime.fromtimestamp(exp, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": None},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": when},
        }


def _user_info(user: UserInfo | None) -> dict[str, Any]:
    if user is None:
        return {}
    out: dict[str, Any] = {"username": user.name, "groups": list(user.groups)}
    if user.uid:
        out["uid"] = user.uid
    if user.extra:
        out["extra"] = user.extra
    return out


def _subject_of(rt: ResourceType, spec: dict[str, Any]) -> UserInfo:
    name = str(spec.get("user") or "")
    groups = tuple(str(g) for g in spec.get("groups") or [])
    if not name and not groups:
        raise invalid(
            rt, "", [field_invalid("spec.user", "", "at least one of user or group must be specified")]
        )
    return UserInfo(name, groups, str(spec.get("uid") or ""))


def _allow_reason(user: UserInfo) -> str:
    if "system:masters" in user.groups:
        return ""
    return "RBAC: allowed"


SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"


class TokenSecretHooks:
    """The tokens controller's work on `kubernetes.io/service-account-token` Secrets, done as the
    Secret is written: `data.token` (a long-lived token valid while this Secret and its
    ServiceAccount exist), `data.ca.crt`, `data.namespace` and the ServiceAccount's uid annotation.
    A Secret naming a ServiceAccount that does not exist stays without a token."""

    def __init__(self, identity: Identity):
        self.identity = identity

    async def load(self, store: Any) -> None:
        return None

    async def _fill(self, obj: Obj) -> None:
        if obj.get("type") != "kubernetes.io/service-account-token":
            return
        meta = _d(obj.get("metadata"))
        annotations = meta.get("annotations")
        annotations = annotations if isinstance(annotations, dict) else None
        data = _d(obj.get("data"))
        if annotations is None or not annotations.get(SA_NAME_ANNOTATION) or data.get("token"):
            return
        ns, sa_name = str(meta.get("namespace") or ""), str(annotations[SA_NAME_ANNOTATION])
        sa = await self.identity._get_sa(ns, sa_name)
        if sa is None:
            return
        sa_uid = str(_d(sa.get("metadata")).get("uid") or "")
        if annotations.get(SA_UID_ANNOTATION) and annotations[SA_UID_ANNOTATION] != sa_uid:
            return
        annotations[SA_UID_ANNOTATION] = sa_uid
        token = self.identity.issuer.issue_legacy(ns, sa_name, sa_uid, str(meta.get("name") or ""))
        filled = {"token": token, "namespace": ns}
        if self.identity.ca_pem:
            filled["ca.crt"] = self.identity.ca_pem
        obj["data"] = {**data, **{k: base64.b64encode(v.encode()).decode() for k, v in filled.items()}}

    async def before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        await self._fill(obj)
        return NoReservation()

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Reservation:
        await self._fill(new)
        return NoReservation()

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        return None
