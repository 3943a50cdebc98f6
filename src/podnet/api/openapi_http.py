"""HTTP side of the OpenAPI documents (api/openapi.py), as kube-openapi's handlers answer.

- `/openapi/v2`: JSON for `application/json` (and `*/*`), gnostic protobuf for
  `application/com.github.proto-openapi.spec.v2@v1.0+protobuf` (what kubectl sends) or its `.v1.0`
  spelling; anything else 406. `ETag` is the quoted SHA-512 of the JSON document for both encodings
  (`Vary: Accept`); `If-None-Match` with it answers 304.
- `/openapi/v3`: the index of group versions with hash URLs (`ETag`, 304 as well).
- `/openapi/v3/<gv>?hash=H`: the document; a stale H is redirected (301) to the current URL, a current one
  is `Cache-Control: public, immutable` with a one-year `Expires`, so a client caches it until the hash
  in the index changes.
"""

from __future__ import annotations

import email.utils
import json
import time

from aiohttp import web

from podnet.api import openapi
from podnet.api.errors import APIError

V2_PROTO = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_PROTO_SUBTYPES = ("com.github.proto-openapi.spec.v2@v1.0+protobuf",
                   "com.github.proto-openapi.spec.v2.v1.0+protobuf")


def _accepted(header: str) -> list[tuple[str, str]]:
    """(type, subtype) of the Accept header's clauses, highest q first (stable), q=0 left out."""
    clauses: list[tuple[float, int, str, str]] = []
    for i, part in enumerate((header or "*/*").split(",")):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        typ, _, sub = media.partition("/")
        if typ and q > 0:
            clauses.append((-q, i, typ.lower(), sub.lower() or "*"))
    return [(t, s) for _, _, t, s in sorted(clauses)]


def _not_modified(request: web.Request, etag: str) -> bool:
    wanted = request.headers.get("If-None-Match", "")
    if not wanted:
        return False
    tags = [t.strip().removeprefix("W/") for t in wanted.split(",")]
    return "*" in tags or f'"{etag}"' in tags


def _answer(request: web.Request, built: openapi.Built, content_type: str,
            headers: dict[str, str]) -> web.Response:
    headers = {**headers, "Etag": f'"{built.etag}"',
               "Last-Modified": email.utils.formatdate(built.last_modified, usegmt=True)}
    if _not_modified(request, built.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=built.data, headers={**headers, "Content-Type": content_type})


def _not_acceptable(offered: str) -> APIError:
    return APIError(406, "NotAcceptable", f"only the following media types are accepted: {offered}", {})


def v2(request: web.Request) -> web.Response:
    for typ, sub in _accepted(request.headers.get("Accept", "")):
        if typ not in ("application", "*"):
            continue
        if sub in ("json", "*"):
            return _answer(request, openapi.v2_document("json"), "application/json", {"Vary": "Accept"})
        if sub in _PROTO_SUBTYPES:
            return _answer(request, openapi.v2_document("proto"), V2_PROTO, {"Vary": "Accept"})
    raise _not_acceptable(f"application/json, {V2_PROTO}")


def v3_index(request: web.Request) -> web.Response:
    data = json.dumps(openapi.index(), separators=(",", ":")).encode()
    built = openapi.Built(data, openapi.etag_of(data), time.time())
    return _answer(request, built, "application/json", {})


def v3_group(request: web.Request, gv_path: str) -> web.Response | None:
    """None when the group version is not served."""
    built = openapi.v3_document(gv_path)
    if built is None:
        return None
    if not any(t in ("application", "*") and s in ("json", "*")
               for t, s in _accepted(request.headers.get("Accept", ""))):
        raise _not_acceptable("application/json")
    headers = {"Vary": "Accept"}
    wanted = request.query.get("hash")
    if wanted:
        if wanted != built.etag:
            return web.Response(status=301, headers={"Location": openapi.v3_url(gv_path.strip("/"),
                                                                                built.etag)})
        headers["Cache-Control"] = "public, immutable"
        headers["Expires"] = email.utils.formatdate(time.time() + 365 * 86400, usegmt=True)
    else:
        headers["Cache-Control"] = "no-cache, private"
    return _answer(request, built, "application/json", headers)
