"""The write pipeline around ResourceHooks: order, errors, reservations."""

from __future__ import annotations

from typing import Any

from api_support import SVC_PATH, make_api, service

from podnet.api.errors import APIError
from podnet.model.kinds import Obj, ResourceType


class Res:
    def __init__(self, log: list[str], tag: str):
        self.log, self.tag = log, tag

    def release(self) -> None:
        self.log.append(f"release {self.tag}")

    def commit(self) -> None:
        self.log.append(f"commit {self.tag}")


class FakeHooks:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.refuse = False

    async def load(self, store: Any) -> None:
        pass

    async def before_create(self, rt: ResourceType, obj: Obj) -> Res:
        if self.refuse:
            raise APIError(422, "Invalid", "refused by hook")
        obj["spec"]["clusterIP"] = "10.96.0.42"
        self.log.append(f"create {obj['metadata']['name']}")
        return Res(self.log, obj["metadata"]["name"])

    async def before_update(self, rt: ResourceType, new: Obj, old: Obj) -> Res:
        new["spec"]["clusterIP"] = old["spec"]["clusterIP"]
        self.log.append(f"update {new['metadata']['name']}")
        return Res(self.log, new["metadata"]["name"])

    async def after_delete(self, rt: ResourceType, obj: Obj) -> None:
        self.log.append(f"deleted {obj['metadata']['name']} {obj['spec']['clusterIP']}")


async def test_hook_allocates_commits_and_is_told_of_deletes() -> None:
    hooks = FakeHooks()
    api = await make_api(hooks={"services": hooks})
    try:
        code, svc = await api.call("POST", SVC_PATH, service("a"))
        assert code == 201 and svc["spec"]["clusterIP"] == "10.96.0.42"
        body = service("a", port=90)  # a re-applied manifest without clusterIP keeps it
        code, upd = await api.call("PUT", SVC_PATH + "/a", body)
        assert upd["spec"]["clusterIP"] == "10.96.0.42"
        await api.call("DELETE", SVC_PATH + "/a")
        assert hooks.log == ["create a", "commit a", "update a", "commit a", "deleted a 10.96.0.42"]
    finally:
        await api.client.close()


async def test_reservation_released_when_the_store_refuses() -> None:
    hooks = FakeHooks()
    api = await make_api(hooks={"services": hooks})
    try:
        await api.call("POST", SVC_PATH, service("a"))
        code, _ = await api.call("POST", SVC_PATH, service("a"))
        assert code == 409
        assert hooks.log == ["create a", "commit a", "create a", "release a"]
    finally:
        await api.client.close()


async def test_hook_error_is_returned_alone() -> None:
    hooks = FakeHooks()
    hooks.refuse = True
    api = await make_api(hooks={"services": hooks})
    try:
        code, st = await api.call("POST", SVC_PATH, service("a"))
        assert (code, st["message"], st["reason"]) == (422, "refused by hook", "Invalid")
    finally:
        await api.client.close()


async def test_dry_run_releases_the_reservation() -> None:
    hooks = FakeHooks()
    api = await make_api(hooks={"services": hooks})
    try:
        code, _ = await api.call("POST", SVC_PATH, service("a"), params={"dryRun": "All"})
        assert code == 201
        assert hooks.log == ["create a", "release a"]
    finally:
        await api.client.close()
