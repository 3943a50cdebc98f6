"""Join tokens and what a node that joined with one may do (kubeadm bootstrap tokens + the node authorizer).

Tokens
  A join token looks like kubeadm's: `abcdef.0123456789abcdef` (a 6-character public ID, a dot, a
  16-character secret; lower-case letters and digits). `JoinTokens(state_dir)` keeps them in
  `<state_dir>/join-tokens.json` (only the secret's SHA-256 is stored) and is re-read whenever the file
  changes, so `podnet token revoke ID` takes effect on the very next request.

Identities
  * the admin token (config.token) can do everything; the API server checks it before anything here;
  * `<join token>:<node name>` authenticates as `system:node:<node name>` (the agent's bearer token);
  * no token: anonymous, which may only GET the `kube-public/cluster-info` ConfigMap (the CA and the
    cluster's public settings; `podnet join` checks the CA against `--ca-cert-hash` before it trusts it);
  * anything else (unknown, revoked or malformed token) gets 401 Unauthorized.
  A token made for one node (`create(node=NAME)`: the credential `podnet up` gives each of its own
  agents) authenticates only as `<token>:NAME`, and NAME is bound to it at once, so the agents of a
  local cluster are authorized exactly as joined nodes are (`issue_node_credential`).
  A token past its TTL can no longer register new nodes; nodes that registered with it keep working
  until the token is revoked (as kubeadm nodes keep their credentials when the bootstrap token expires).

What `system:node:NAME` may do (everything else: 403 Forbidden, worded as kube-apiserver words it)
  * read (get, list, watch) nodes, pods, services, endpoints and endpointslices;
  * get a ConfigMap that a pod bound to NAME uses (volumes, env, envFrom);
  * create the Node NAME; get/update/patch Node NAME and its status, once NAME is bound to this token
    (the binding is made when the node registers, and kept in `<state_dir>/join-nodes.json`);
  * update/patch the status of pods bound to NAME (spec.nodeName), and delete those pods;
  * create, update and patch Events.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import string
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from podnet.api import routing
from podnet.api.errors import APIError, unauthorized
from podnet.api.hooks import NoReservation, Reservation
from podnet.api.node_graph import secrets_used_by, service_account_of
from podnet.core.tls import SERVING_CERT_ANNOTATION, SERVING_CSR_ANNOTATION, load_ca, sign_kubelet_serving_csr
from podnet.model import kinds
from podnet.model.kinds import Obj, ResourceType
from podnet.store.base import Store

TOKENS_FILE = "join-tokens.json"
BINDINGS_FILE = "join-nodes.json"
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
NODE_CRED_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16}):([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?)$")
CLUSTER_INFO_NS = "kube-public"
CLUSTER_INFO_NAME = "cluster-info"
READABLE = (kinds.NODES, kinds.PODS, kinds.SERVICES, kinds.ENDPOINTS, kinds.ENDPOINTSLICES,
            kinds.NAMESPACES, kinds.NETWORKPOLICIES, kinds.ADMINNETWORKPOLICIES,
            kinds.BASELINEADMINNETWORKPOLICIES)
"""What a node's agent reads: its kubelet's, kube-proxy's and its network plugin's inputs (namespaces,
NetworkPolicies and the admin policies are how the policy enforcer picks peers)."""
_ALPHABET = string.ascii_lowercase + string.digits

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PodGetter = Callable[[str, str], Awaitable[Obj | None]]
PodLister = Callable[[str], Awaitable[list[Obj]]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_ttl(text: str) -> dt.timedelta | None:
    """`1h`, `30m`, `90s`, `2h30m`, `24h`; `0` means never expires (None). ValueError with a clear message."""
    t = text.strip()
    if t in ("0", "0s"):
        return None
    m = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", t)
    if not t or m is None or not any(m.groups()):
        raise ValueError(f'invalid TTL "{text}" (--ttl): use a duration like 1h, 30m, 2h30m or 90s '
                         "(0 = never expires)")
    h, mi, s = (int(g or 0) for g in m.groups())
    return dt.timedelta(hours=h, minutes=mi, seconds=s)


@dataclass(frozen=True)
class TokenInfo:
    id: str
    created: str
    expires: str  # "" = never
    description: str = ""
    node: str = ""  # a node credential's token: valid for this node name only

    def expired(self, now: dt.datetime | None = None) -> bool:
        return bool(self.expires) and _parse_iso(self.expires) <= (now or _now())

    def to_dict(self) -> dict[str, str]:
        out = {"id": self.id, "created": self.created, "expires": self.expires or "never",
               "description": self.description}
        if self.node:
            out["node"] = self.node
        return out


class JoinTokens:
    """The join tokens of one cluster, in `<state_dir>/join-tokens.json` (written under an flock)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / TOKENS_FILE
        self._cache: tuple[tuple[int, int], dict[str, dict[str, str]]] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._cache = None
            return {}
        key = (st.st_mtime_ns, st.st_size)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        try:
            data = json.loads(self.path.read_text()).get("tokens", {})
        except (OSError, ValueError, AttributeError):
            data = {}
        tokens = {str(k): dict(v) for k, v in data.items() if isinstance(v, dict)}
        self._cache = (key, tokens)
        return tokens

    def _write(self, tokens: dict[str, dict[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"tokens": tokens}, f, indent=2, sort_keys=True)
        tmp.replace(self.path)
        self._cache = None

    def create(self, ttl: dt.timedelta | None = dt.timedelta(hours=24), description: str = "",
               node: str = "") -> str:
        """A new token `id.secret` (the secret is shown only here); with `node`, valid for that node only."""
        with self._locked():
            tokens = dict(self._read())
            tid = "".join(secrets.choice(_ALPHABET) for _ in range(6))
            while tid in tokens:
                tid = "".join(secrets.choice(_ALPHABET) for _ in range(6))
            secret = "".join(secrets.choice(_ALPHABET) for _ in range(16))
            now = _now()
            tokens[tid] = {"secretSha256": _sha(secret), "created": _iso(now),
                           "expires": _iso(now + ttl) if ttl is not None else "", "description": description}
            if node:
                tokens[tid]["node"] = node
            self._write(tokens)
        return f"{tid}.{secret}"

    def list(self, node_credentials: bool = False) -> list[TokenInfo]:
        """The join tokens; with `node_credentials`, also the tokens behind `podnet up`'s node credentials."""
        out = [TokenInfo(tid, v.get("created", ""), v.get("expires", ""), v.get("description", ""),
                         v.get("node", "")) for tid, v in sorted(self._read().items())]
        return [t for t in out if node_credentials or not t.node]

    def revoke(self, token_id: str) -> bool:
        """Remove token `token_id` (the ID, or the whole token); False when there is no such token."""
        tid = token_id.split(".", 1)[0]
        with self._locked():
            tokens = dict(self._read())
            if tid not in tokens:
                return False
            del tokens[tid]
            self._write(tokens)
        return True

    def lookup(self, token: str) -> TokenInfo | None:
        """The token's info when `token` (id.secret) is known and its secret matches, else None."""
        m = TOKEN_RE.match(token)
        if m is None:
            return None
        entry = self._read().get(m.group(1))
        if entry is None or not hmac.compare_digest(entry.get("secretSha256", ""), _sha(m.group(2))):
            return None
        return TokenInfo(m.group(1), entry.get("created", ""), entry.get("expires", ""),
                         entry.get("description", ""), entry.get("node", ""))


class NodeBindings:
    """node name -> the ID of the join token it registered with (`<state_dir>/join-nodes.json`), re-read
    when the file changes (`podnet up` binds its own nodes' credentials from another process)."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / BINDINGS_FILE
        self._nodes: dict[str, str] | None = None
        self._stamp: tuple[int, int] | None = None

    def _load(self) -> dict[str, str]:
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if self._nodes is None or stamp != self._stamp:
            try:
                raw = json.loads(self.path.read_text())
                self._nodes = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            except (OSError, ValueError):
                self._nodes = {}
            self._stamp = stamp
        return self._nodes

    def get(self, node: str) -> str | None:
        return self._load().get(node)

    def bind(self, node: str, token_id: str) -> None:
        nodes = self._load()
        if nodes.get(node) == token_id:
            return
        nodes[node] = token_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(nodes, indent=2, sort_keys=True))
        tmp.replace(self.path)
        st = self.path.stat()
        self._stamp = (st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class NodeIdentity:
    node: str
    token_id: str
    token_expired: bool

    @property
    def user(self) -> str:
        return f"system:node:{self.node}"


CURRENT_NODE: contextvars.ContextVar[NodeIdentity | None] = contextvars.ContextVar("podnet_node",
                                                                                   default=None)
"""The node a request being handled acts for (set by NodeAuthorizer.handle around the handler)."""

NODE_RESTRICTION_LABEL_NS = "node-restriction.kubernetes.io"


def node_credential(token: str, node: str) -> str:
    """The bearer token a joined node's agent uses: `<join token>:<node name>`."""
    return f"{token}:{node}"


def issue_node_credential(state_dir: Path, node: str) -> str:
    """A credential for `podnet up`'s own agent of `node`: a token valid for that node name only, never
    expiring, bound to the node before the agent starts; the agent is then `system:node:<node>` under
    the node rules and NodeRestriction, as a joined node is. Returns `<token>:<node>`."""
    token = JoinTokens(state_dir).create(None, f"node credential of {node} (podnet up)", node=node)
    NodeBindings(state_dir).bind(node, token.split(".", 1)[0])
    return node_credential(token, node)


# ---- request attributes -----------------------------------------------------------------------
@dataclass(frozen=True)
class Attributes:
    verb: str
    rt: ResourceType
    namespace: str
    name: str
    subresource: str


def request_attributes(method: str, query: dict[str, str], target: routing.Target) -> Attributes:
    if method == "GET":
        verb = "get" if target.name else ("watch" if query.get("watch", "") in ("1", "true", "True")
                                          else "list")
    elif method == "DELETE":
        verb = "delete" if target.name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    return Attributes(verb, target.rt, target.namespace or "", target.name, target.subresource)


def forbidden_for(user: str, a: Attributes, reason: str = "") -> APIError:
    """kube-apiserver's wording (responsewriters.forbiddenMessage + errors.NewForbidden)."""
    resource = a.rt.plural + (f"/{a.subresource}" if a.subresource else "")
    msg = f'User "{user}" cannot {a.verb} resource "{resource}" in API group "{a.rt.group}" '
    msg += f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
    if reason:
        msg += f": {reason}"
    what = f'{a.rt.group_resource} "{a.name}"' if a.name else a.rt.group_resource
    details: dict[str, Any] = {"kind": a.rt.plural}
    if a.name:
        details["name"] = a.name
    if a.rt.group:
        details["group"] = a.rt.group
    return APIError(403, "Forbidden", f"{what} is forbidden: {msg}", details)


def configmaps_used_by(pod: Obj) -> set[str]:
    spec = pod.get("spec") or {}
    names: set[str] = set()
    for v in spec.get("volumes") or []:
        cm = (v or {}).get("configMap") or {}
        if cm.get("name"):
            names.add(str(cm["name"]))
        for src in ((v or {}).get("projected") or {}).get("sources") or []:
            pcm = (src or {}).get("configMap") or {}
            if pcm.get("name"):
                names.add(str(pcm["name"]))
    for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for ef in (c or {}).get("envFrom") or []:
            ref = (ef or {}).get("configMapRef") or {}
            if ref.get("name"):
                names.add(str(ref["name"]))
        for e in (c or {}).get("env") or []:
            ref = ((e or {}).get("valueFrom") or {}).get("configMapKeyRef") or {}
            if ref.get("name"):
                names.add(str(ref["name"]))
    return names


def _body_name(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return ""
    meta = data.get("metadata") if isinstance(data, dict) else None
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


class NodeAuthorizer:
    """Authenticates join-token requests and applies the node rules of this module's docstring.

    The API server calls `handle(request, token, handler)` for every request whose bearer token is not
    the admin token (token "" when there is none).
    """

    def __init__(self, state_dir: Path, *, get_pod: PodGetter, list_node_pods: PodLister):
        self.tokens = JoinTokens(state_dir)
        self.bindings = NodeBindings(state_dir)
        self.get_pod = get_pod
        self.list_node_pods = list_node_pods

    def authenticate(self, token: str) -> NodeIdentity | None:
        m = NODE_CRED_RE.match(token)
        if m is None:
            return None
        info = self.tokens.lookup(f"{m.group(1)}.{m.group(2)}")
        if info is None or (info.node and info.node != m.group(3)):
            return None
        return NodeIdentity(node=m.group(3), token_id=info.id, token_expired=info.expired())

    async def handle(self, request: web.Request, token: str, handler: Handler) -> web.StreamResponse:
        target = routing.parse_path(request.path)
        if not token:
            if request.method == "GET" and isinstance(target, routing.Target) and \
                    target.rt is kinds.CONFIGMAPS and target.namespace == CLUSTER_INFO_NS and \
                    target.name == CLUSTER_INFO_NAME and not target.subresource:
                return await handler(request)
            raise unauthorized()
        ident = self.authenticate(token)
        if ident is None:
            raise unauthorized()
        bound = self.bindings.get(ident.node)
        if ident.token_expired and bound != ident.token_id:
            raise unauthorized()  # an expired token registers no new nodes
        if not isinstance(target, routing.Target):
            if request.method != "GET":
                raise APIError(403, "Forbidden", f'forbidden: User "{ident.user}" cannot '
                               f'{request.method.lower()} path "{request.path}"')
            return await handler(request)
        a = request_attributes(request.method, dict(request.query), target)
        await self.authorize(ident, bound, a, request)
        ctx = CURRENT_NODE.set(ident)  # for the NodeRestriction checks of the write itself
        try:
            resp = await handler(request)
        finally:
            CURRENT_NODE.reset(ctx)
        if a.rt is kinds.NODES and a.verb == "create" and resp.status == 201:
            self.bindings.bind(ident.node, ident.token_id)
        return resp

    @staticmethod
    def _require_bound(ident: NodeIdentity, bound: str | None, a: Attributes) -> None:
        """NodeRestriction: `<token>:<node>` acts only for the node that registered with that token."""
        if bound != ident.token_id:
            raise forbidden_for(ident.user, a, f"node '{ident.node}' was not registered with this join token")

    async def authorize(self, ident: NodeIdentity, bound: str | None, a: Attributes,
                        request: web.Request) -> None:
        """Raise 403 unless node `ident` may do `a`."""
        me, user = ident.node, ident.user
        if a.verb in ("get", "list", "watch") and a.rt in READABLE and a.subresource in ("", "status"):
            return
        if a.rt is kinds.EVENTS and a.verb in ("create", "update", "patch"):
            return
        if a.rt is kinds.CONFIGMAPS and a.verb == "get" and a.name and not a.subresource:
            self._require_bound(ident, bound, a)
            for pod in await self.list_node_pods(me):
                ns = (pod.get("metadata") or {}).get("namespace")
                if ns == a.namespace and a.name in configmaps_used_by(pod):
                    return
            raise forbidden_for(user, a, f"no relationship found between node '{me}' and this object")
        if (a.rt is kinds.SECRETS and a.verb == "get" and a.name and not a.subresource) or \
                (a.rt is kinds.SERVICEACCOUNTS and a.verb == "create" and a.subresource == "token"):
            self._require_bound(ident, bound, a)
            for pod in await self.list_node_pods(me):
                if (pod.get("metadata") or {}).get("namespace") != a.namespace:
                    continue
                used = secrets_used_by(pod) if a.rt is kinds.SECRETS else {service_account_of(pod)}
                if a.name in used:
                    return
            raise forbidden_for(user, a, f"no relationship found between node '{me}' and this object")
        if a.rt is kinds.NODES:
            if a.verb == "create" and not a.subresource:
                name = _body_name(await request.read())
                if name == me:
                    return
                a = Attributes(a.verb, a.rt, a.namespace, name or a.name, a.subresource)
                raise forbidden_for(user, a, f"node '{me}' cannot create node '{name}'")
            if a.verb in ("get", "update", "patch") and a.name == me and a.subresource in ("", "status"):
                self._require_bound(ident, bound, a)
                return
            if a.verb in ("update", "patch") and a.name:
                raise forbidden_for(user, a, f"node '{me}' cannot modify node '{a.name}'")
        if a.rt is kinds.PODS and a.name and ((a.verb in ("update", "patch") and a.subresource == "status")
                                              or (a.verb == "delete" and not a.subresource)):
            self._require_bound(ident, bound, a)
            found = await self.get_pod(a.namespace, a.name)
            if found is None:
                return  # the handler answers 404
            if (found.get("spec") or {}).get("nodeName") == me:
                return
            # NodeRestriction's admission messages (plugin/pkg/admission/noderestriction)
            what = "update pod status for pods" if a.subresource == "status" else "delete pods"
            raise APIError(403, "Forbidden", f'pods "{a.name}" is forbidden: node "{me}" can only {what} '
                           f"with spec.nodeName set to itself", {"kind": "pods", "name": a.name})
        raise forbidden_for(user, a)


def _labels(obj: Obj | None) -> dict[str, str]:
    meta = (obj or {}).get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def _restricted_labels(new: dict[str, str], old: dict[str, str]) -> list[str]:
    changed = {k for k in new.keys() | old.keys() if new.get(k) != old.get(k) or (k in new) != (k in old)}
    out = []
    for k in changed:
        prefix = k.split("/", 1)[0] if "/" in k else ""
        if prefix == NODE_RESTRICTION_LABEL_NS or prefix.endswith("." + NODE_RESTRICTION_LABEL_NS):
            out.append(k)
    return sorted(out)


def _addresses(node: Obj | None) -> set[str]:
    status = (node or {}).get("status")
    addrs = status.get("addresses") if isinstance(status, dict) else None
    return {str(a.get("address")) for a in addrs or [] if isinstance(a, dict)
            and a.get("type") in ("InternalIP", "ExternalIP") and a.get("address")}


def _pod_cidrs(node: Obj | None) -> list[str]:
    spec = (node or {}).get("spec")
    if not isinstance(spec, dict):
        return []
    cidrs = spec.get("podCIDRs")
    if isinstance(cidrs, list) and cidrs:
        return [str(c) for c in cidrs]
    return [str(spec["podCIDR"])] if spec.get("podCIDR") else []


class NodeRestriction:
    """The write side of NodeRestriction, as a registry hook on nodes (podnet.api.hooks.ResourceHooks).

    For a request made with a node credential (`CURRENT_NODE`), the Node written may not
    * add, change or remove `node-restriction.kubernetes.io/*` labels (kube-apiserver's words);
    * set spec.podCIDR(s): the control plane's node IPAM controller assigns them;
    * claim an address (InternalIP/ExternalIP) another Node reports, or one of `reserved`
      (the host's address on the node network).
    Writes by the admin (the control plane, `podnet up`'s agents, kubectl) are not restricted here.

    It also signs node serving certificates (as the kubernetes.io/kubelet-serving signer): a Node write
    that carries a CSR in SERVING_CSR_ANNOTATION gets, in that same write, the certificate from the CA
    in `ca_dir` in SERVING_CERT_ANNOTATION, for the node's name and the addresses it reports only.
    """

    def __init__(self, reserved: dict[str, str] | None = None, ca_dir: Path | None = None):
        self.reserved = dict(reserved or {})  # address -> what holds it
        self.ca_dir = ca_dir
        self._store: Store | None = None

    async def load(self, store: Store) -> None:
        self._store = store

    async def before_create(self, rt: ResourceType, obj: Obj) -> Reservation:
        await self._check(obj, None)
        return NoReservation()

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Reservation:
        await self._check(new, old)
        self._sign(new)
        return NoReservation()

    def _sign(self, node: Obj) -> None:
        meta = node.get("metadata")
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if not isinstance(annotations, dict) or SERVING_CSR_ANNOTATION not in annotations:
            return
        name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
        csr = str(annotations.pop(SERVING_CSR_ANNOTATION) or "")
        ca = load_ca(self.ca_dir) if self.ca_dir is not None else None
        if ca is None:
            raise APIError(503, "ServiceUnavailable", "this API server has no cluster CA to sign node "
                           "serving certificates with")
        try:
            annotations[SERVING_CERT_ANNOTATION] = sign_kubelet_serving_csr(ca, csr, name, _addresses(node))
        except ValueError as e:
            raise APIError(403, "Forbidden", f'nodes "{name}" is forbidden: the serving certificate request '
                           f"{e}", {"name": name, "kind": "nodes"}) from None

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        return None

    async def _check(self, new: Obj, old: Obj | None) -> None:
        ident = CURRENT_NODE.get()
        if ident is None:
            return
        name = str((new.get("metadata") or {}).get("name") or "")

        def refuse(why: str) -> APIError:
            return APIError(403, "Forbidden", f'nodes "{name}" is forbidden: {why}',
                            {"name": name, "kind": "nodes"})

        bad = _restricted_labels(_labels(new), _labels(old))
        if bad:
            if old is None:
                raise refuse(f'node "{ident.node}" is not allowed to set the following labels: '
                             f'{", ".join(bad)}')
            raise refuse(f"is not allowed to modify labels: {', '.join(bad)}")
        if _pod_cidrs(new) and not _pod_cidrs(old):  # a change of a set one: validation's 422
            raise refuse(f'node "{ident.node}" is not allowed to set spec.podCIDR: the control plane\'s node '
                         "IPAM controller assigns it")
        claimed = _addresses(new) - _addresses(old)
        if not claimed:
            return
        for addr in sorted(claimed):
            if addr in self.reserved:
                raise refuse(f'node "{ident.node}" is not allowed to claim address {addr}: it is '
                             f"{self.reserved[addr]}")
        if self._store is None:
            return
        items, _ = await self._store.list(kinds.NODES.key, None)
        for other in items:
            other_name = str((other.get("metadata") or {}).get("name") or "")
            if other_name == name:
                continue
            taken = sorted(claimed & _addresses(other))
            if taken:
                raise refuse(f'node "{ident.node}" is not allowed to claim address {taken[0]}: node '
                             f'"{other_name}" reports it')


def registry_pod_lookups(registry: Any) -> tuple[PodGetter, PodLister]:
    """Pod lookups for `NodeAuthorizer` backed by the API server's registry (podnet.api.registry)."""
    from podnet.api.selection import make_filter

    async def get_pod(ns: str, name: str) -> Obj | None:
        try:
            obj: Obj = await registry.get(kinds.PODS, ns, name)
            return obj
        except APIError as e:
            if e.code == 404:
                return None
            raise

    async def list_node_pods(node: str) -> list[Obj]:
        res = await registry.list(kinds.PODS, None, make_filter(kinds.PODS, "", f"spec.nodeName={node}"))
        return list(res.items)

    return get_pod, list_node_pods


def node_authorizer(state_dir: Path, registry: Any, reserved: dict[str, str] | None = None) -> NodeAuthorizer:
    """The node authorizer for the API server whose registry this is; it also installs the
    NodeRestriction hook on nodes. `reserved`: addresses no node may claim (address -> what it is)."""
    get_pod, list_node_pods = registry_pod_lookups(registry)
    restriction = NodeRestriction(reserved, ca_dir=state_dir)
    restriction._store = registry.store
    registry.hooks.setdefault(kinds.NODES.key, restriction)
    return NodeAuthorizer(state_dir, get_pod=get_pod, list_node_pods=list_node_pods)
