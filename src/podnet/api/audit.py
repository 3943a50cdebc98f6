"""An audit log of API requests, when asked for (`podnet controlplane --audit-log PATH`).

One JSON line per request, shaped as kube-apiserver's audit events at level Metadata, stage
ResponseComplete (audit.k8s.io/v1 `Event`: auditID, verb, requestURI, user, sourceIPs, userAgent,
objectRef, responseStatus, requestReceivedTimestamp, stageTimestamp). No bodies are recorded, and
never the Authorization header. The file rotates at 100 MiB (3 old files), as kube-apiserver's
--audit-log-maxsize/--audit-log-maxbackup do.

The controllers run in the API server's process and call its registry directly
(controllers/inprocess.py); `record_call` writes those calls as kube-apiserver records
kube-controller-manager's requests: under the identity the caller gives (controllers/identity.py: each
control loop's ServiceAccount; `system:kube-controller-manager` by default), its user agent, no source
IP (they never cross a network), and for a watch the stage `ResponseStarted` when it begins.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import uuid
from pathlib import Path
from typing import Any

from aiohttp import web

from podnet.api import routing
from podnet.api.auth import request_attributes
from podnet.api.identity import user_of
from podnet.api.sa_tokens import UserInfo
from podnet.model.kinds import ResourceType

MAX_BYTES = 100 * 1024 * 1024
BACKUPS = 3
CONTROLLER_MANAGER = UserInfo("system:kube-controller-manager", ("system:authenticated",))
CONTROLLER_MANAGER_AGENT = "kube-controller-manager/podnet (in-process)"


def _micro(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                                       encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._log = logging.getLogger(f"podnet.audit.{id(self)}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        self._log.addHandler(handler)
        self._handler = handler
        path.chmod(0o600)

    def record(self, request: web.Request, code: int, received: dt.datetime) -> None:
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": str(uuid.uuid4()), "stage": "ResponseComplete", "requestURI": request.path_qs,
            "verb": request.method.lower(),
        }
        user = user_of(request)
        if user is not None:
            event["user"] = {"username": user.name, "groups": list(user.groups)}
        if request.remote:  # none on the unix socket
            event["sourceIPs"] = [request.remote]
        if request.headers.get("User-Agent"):
            event["userAgent"] = request.headers["User-Agent"]
        target = routing.parse_path(request.path)
        if isinstance(target, routing.Target):
            a = request_attributes(request.method, dict(request.query), target)
            event["verb"] = a.verb
            ref: dict[str, str] = {"resource": target.rt.plural}
            if target.namespace:
                ref["namespace"] = target.namespace
            if target.name:
                ref["name"] = target.name
            ref["apiVersion"] = target.rt.api_version
            if target.subresource:
                ref["subresource"] = target.subresource
            event["objectRef"] = ref
        event["responseStatus"] = {"metadata": {}, "code": code}
        event["requestReceivedTimestamp"] = _micro(received)
        event["stageTimestamp"] = _micro(dt.datetime.now(dt.UTC))
        self._log.info("%s", json.dumps(event, separators=(",", ":")))

    def record_call(self, verb: str, rt: ResourceType, namespace: str, name: str, code: int,
                    received: dt.datetime, *, subresource: str = "", query: str = "",
                    user: UserInfo = CONTROLLER_MANAGER, user_agent: str = CONTROLLER_MANAGER_AGENT,
                    stage: str = "ResponseComplete") -> None:
        """A call made inside this process (an in-process controller's), as the request it stands for."""
        uri = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
        if rt.namespaced and namespace:
            uri += f"/namespaces/{namespace}"
        uri += f"/{rt.plural}"
        if name:
            uri += f"/{name}" + (f"/{subresource}" if subresource else "")
        ref: dict[str, str] = {"resource": rt.plural}
        if rt.namespaced and namespace:
            ref["namespace"] = namespace
        if name:
            ref["name"] = name
        ref["apiVersion"] = rt.api_version
        if subresource:
            ref["subresource"] = subresource
        event: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": str(uuid.uuid4()), "stage": stage, "requestURI": uri + (f"?{query}" if query else ""),
            "verb": verb, "user": {"username": user.name, "groups": list(user.groups)},
            "userAgent": user_agent, "objectRef": ref, "responseStatus": {"metadata": {}, "code": code},
            "requestReceivedTimestamp": _micro(received), "stageTimestamp": _micro(dt.datetime.now(dt.UTC)),
        }
        self._log.info("%s", json.dumps(event, separators=(",", ":")))

    def close(self) -> None:
        self._log.removeHandler(self._handler)
        self._handler.close()
