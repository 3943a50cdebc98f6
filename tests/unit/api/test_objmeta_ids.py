"""Server-made uids and creation timestamps (objmeta): the same shapes as uuid4 and RFC 3339, unique,
and never shared with a forked child."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid

from podnet.api import objmeta


def test_uids_are_distinct_version_4_uuids() -> None:
    made = [objmeta.new_uid() for _ in range(1000)]  # more than one batch of random bytes
    assert len(set(made)) == len(made)
    for u in made:
        parsed = uuid.UUID(u)
        assert str(parsed) == u and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_child_makes_other_uids_than_its_parent() -> None:
    objmeta.new_uid()  # the parent holds unused random bytes now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, objmeta.new_uid().encode())
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    child = os.read(r, 64).decode()
    os.close(r)
    assert uuid.UUID(child).version == 4
    assert child != objmeta.new_uid()


def test_creation_timestamp_is_now_in_rfc3339() -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    stamp = objmeta.now_rfc3339()
    after = dt.datetime.now(dt.UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp)
    t = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    assert before <= t <= after
