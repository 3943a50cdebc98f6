"""ServiceAccount tokens: issued by the TokenRequest API, checked on every request.

Tokens are JWTs (HS256, a per-cluster key in `<state_dir>/sa-signing.key`, 0600) with the claims
kube-apiserver puts in bound tokens: `iss`, `sub` (`system:serviceaccount:<ns>:<name>`), `aud`,
`iat`, `nbf`, `exp`, and `kubernetes.io` {namespace, serviceaccount {name, uid}, pod {name, uid}}.
A token is accepted only while it is unexpired, its ServiceAccount still exists with the same uid
(so a token of a deleted ServiceAccount is refused at once, even if one of the same name is made
again), and, when bound to a pod, that pod still exists with the same uid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podnet.model.kinds import Obj

ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"  # tokens kept in `kubernetes.io/service-account-token` Secrets
LEGACY_PREFIX = "kubernetes.io/serviceaccount/"
DEFAULT_AUDIENCES = (ISSUER,)
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
KEY_FILE = "sa-signing.key"

Lookup = Callable[[str, str], Awaitable[Obj | None]]
"""(namespace, name) -> the object, or None when there is none."""


@dataclass(frozen=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def service_account(self) -> tuple[str, str] | None:
        """(namespace, name) for `system:serviceaccount:<ns>:<name>` users."""
        parts = self.name.split(":")
        if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
            return parts[2], parts[3]
        return None


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
        uid,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_create_key(state_dir: Path) -> bytes:
    path = Path(state_dir) / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex())
    return key


def looks_like_jwt(token: str) -> bool:
    return token.startswith("eyJ") and token.count(".") == 2


class TokenIssuer:
    def __init__(self, key: bytes, issuer: str = ISSUER):
        self.key = key
        self.issuer = issuer

    def issue(
        self,
        namespace: str,
        sa_name: str,
        sa_uid: str,
        *,
        audiences: list[str] | None = None,
        expiration_seconds: int = DEFAULT_EXPIRATION,
        pod: tuple[str, str] | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        iat = int(now if now is not None else time.time())
        exp = iat + expiration_seconds
        k8s: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
        if pod is not None:
            k8s["pod"] = {"name": pod[0], "uid": pod[1]}
        claims = {
            "aud": list(audiences or DEFAULT_AUDIENCES),
            "exp": exp,
            "iat": iat,
            "iss": self.issuer,
            "jti": secrets.token_hex(16),
            "kubernetes.io": k8s,
            "nbf": iat,
            "sub": f"system:serviceaccount:{namespace}:{sa_name}",
        }
        header = _b64(
            json.dumps({"alg": "HS256", "kid": self._kid(), "typ": "JWT"}, separators=(",", ":")).encode()
        )
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{sig}", exp

    def issue_legacy(self, namespace: str, sa_name: str, sa_uid: str, secret_name: str) -> str:
        """A non-expiring token for a `kubernetes.io/service-account-token` Secret (the tokens
        controller's legacy claims); valid while the Secret and the ServiceAccount exist."""
        claims = {"iss": LEGACY_ISSUER, "sub": f"system:serviceaccount:{namespace}:{sa_name}",
                  f"{LEGACY_PREFIX}namespace": namespace, f"{LEGACY_PREFIX}secret.name": secret_name,
                  f"{LEGACY_PREFIX}service-account.name": sa_name,
                  f"{LEGACY_PREFIX}service-account.uid": sa_uid}
        return self._sign(claims)

    def _sign(self, claims: dict[str, Any]) -> str:
        head = {"alg": "HS256", "kid": self._kid(), "typ": "JWT"}
        header = _b64(json.dumps(head, separators=(",", ":")).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self.key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{sig}"

    def _kid(self) -> str:
        return hashlib.sha256(self.key).hexdigest()[:16]

    def claims(self, token: str, now: float | None = None) -> dict[str, Any] | None:
        """The claims of a token this issuer signed that is valid now, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        want = _b64(hmac.new(self.key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(want, parts[2]):
            return None
        try:
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            return None
        if isinstance(claims, dict) and claims.get("iss") == LEGACY_ISSUER:
            return claims
        if not isinstance(claims, dict) or claims.get("iss") != self.issuer:
            return None
        t = now if now is not None else time.time()
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= t:
            return None
        if isinstance(claims.get("nbf"), int) and claims["nbf"] > t + 60:
            return None
        return claims


class ServiceAccountAuthenticator:
    def __init__(self, issuer: TokenIssuer, get_service_account: Lookup, get_pod: Lookup,
                 get_secret: Lookup | None = None):
        self.issuer = issuer
        self.get_service_account = get_service_account
        self.get_pod = get_pod
        self.get_secret = get_secret

    async def _legacy(self, token: str, claims: dict[str, Any]) -> UserInfo | None:
        ns = str(claims.get(f"{LEGACY_PREFIX}namespace") or "")
        sa_name = str(claims.get(f"{LEGACY_PREFIX}service-account.name") or "")
        sa_uid = str(claims.get(f"{LEGACY_PREFIX}service-account.uid") or "")
        found = await self.get_service_account(ns, sa_name)
        if found is None or str((found.get("metadata") or {}).get("uid") or "") != sa_uid:
            return None
        if self.get_secret is None:
            return None
        secret = await self.get_secret(ns, str(claims.get(f"{LEGACY_PREFIX}secret.name") or ""))
        stored = str(((secret or {}).get("data") or {}).get("token") or "")
        try:
            if secret is None or base64.b64decode(stored).decode() != token:
                return None  # the Secret was deleted (or its token replaced)
        except ValueError:
            return None
        return service_account_user(ns, sa_name, sa_uid)

    async def authenticate(
        self, token: str, audiences: tuple[str, ...] = DEFAULT_AUDIENCES
    ) -> UserInfo | None:
        claims = self.issuer.claims(token)
        if claims is None:
            return None
        if claims.get("iss") == LEGACY_ISSUER:
            return await self._legacy(token, claims)
        aud = claims.get("aud")
        if isinstance(aud, list) and audiences and not set(aud) & set(audiences):
            return None
        k8s = claims.get("kubernetes.io")
        if not isinstance(k8s, dict):
            return None
        ns = str(k8s.get("namespace") or "")
        sa = k8s.get("serviceaccount") or {}
        sa_name, sa_uid = str(sa.get("name") or ""), str(sa.get("uid") or "")
        found = await self.get_service_account(ns, sa_name)
        if found is None or str((found.get("metadata") or {}).get("uid") or "") != sa_uid:
            return None  # the ServiceAccount was deleted (or deleted and made again)
        pod = k8s.get("pod")
        extra: dict[str, list[str]] = {}
        if isinstance(pod, dict):
            live = await self.get_pod(ns, str(pod.get("name") or ""))
            meta = (live or {}).get("metadata") or {}
            if live is None or meta.get("uid") != pod.get("uid"):
                return None  # the pod is gone (a terminating pod keeps its identity until removed)
            extra = {
                "authentication.kubernetes.io/pod-name": [str(pod.get("name"))],
                "authentication.kubernetes.io/pod-uid": [str(pod.get("uid"))],
            }
        user = service_account_user(ns, sa_name, sa_uid)
        return UserInfo(user.name, user.groups, user.uid, extra)
