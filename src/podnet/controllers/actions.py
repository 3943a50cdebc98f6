"""What a reconcile function asks for: plain data, executed by the runner through the API client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from podnet.controllers import objects
from podnet.model.kinds import Obj, ResourceType

Verb = Literal["create", "update", "update_status", "delete", "bind", "event"]


@dataclass
class Action:
    """One API call.

    - create/update/update_status: `obj` is the full object to send (updates carry the
      resourceVersion they were computed from, so a stale decision fails with 409 and is retried).
    - delete: `obj` names the object (metadata.name/namespace/uid).
    - bind: `obj` is a `Binding` (POST pods/{name}/binding).
    - event: `obj` is a core/v1 Event (see `events.make_event`).
    `then_event` is posted after the call succeeds; `{name}` in its message is replaced by the
    name of the object the call returned (for objects created with generateName).
    """

    verb: Verb
    rt: ResourceType
    obj: Obj
    then_event: Obj | None = None

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    def describe(self) -> str:
        ns = self.namespace
        who = f"{ns}/{self.name}" if ns else self.name
        if not self.name:
            who += str((self.obj.get("metadata") or {}).get("generateName") or "") + "*"
        return f"{self.verb} {self.rt.plural} {who}"


def delete_action(rt: ResourceType, obj: Obj, then_event: Obj | None = None) -> Action:
    """Delete `obj`, named by its metadata name, namespace and uid (a later object of the same name
    is not the one the decision was about)."""
    meta = {"name": objects.name(obj), "namespace": objects.namespace(obj), "uid": objects.uid(obj)}
    return Action("delete", rt, {"metadata": meta}, then_event=then_event)
