"""Request bodies: JSON and YAML decoded with bounded cost, large ones off the event loop.

    data = await decode_json(raw)      # or decode_yaml(raw); raises DecodeError (a ValueError)

Limits, as kube-apiserver has them (the request size itself is capped at 3 MiB by the server):
- nesting depth: `MAX_DEPTH` levels of objects/arrays ("exceeded max depth of N"). kube-apiserver
  allows 10,000; podnet's patch, merge and copy code is recursive Python, so it stops at 100, far
  beyond any Kubernetes object (a Deployment's affinity terms are about 12 levels deep).
- YAML aliases: the rule of yaml.v2 (which kube-apiserver's sigs.k8s.io/yaml uses): once more than
  100 of the 1,000+ decoded nodes came through aliases, their share may not exceed 99 % (falling
  to 10 % at 4 million nodes): "yaml: document contains excessive aliasing". A billion-laughs
  document is refused after a few thousand events without being expanded.
- YAML is read as libyaml's event stream (the C parser) and built into plain JSON values here,
  iteratively: scalars resolve as YAML 1.1 (PyYAML's resolver), timestamps and unknown tags stay
  strings, `<<` merge keys are honoured, only the first document is read, and .inf/.nan are
  refused as JSON cannot carry them.
- Bodies over `INLINE_LIMIT` bytes are decoded on one worker thread, so a 3 MB YAML POST does not
  hold up every other request (the event loop keeps serving while the worker holds the GIL only
  in switch-interval slices, 1 ms: `share_the_gil`). The request's later heavy steps (copying,
  type checks, validation of the decoded object) go to the same worker (`offload`).
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from functools import partial
from typing import Any, TypeVar

import yaml

T = TypeVar("T")
MAX_DEPTH = 100
INLINE_LIMIT = 64 * 1024
_ALIAS_LOW, _ALIAS_HIGH = 400_000, 4_000_000

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="podnet-decode")

_STR = "tag:yaml.org,2002:str"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_RESOLVER: Any = yaml.resolver.Resolver()
_CONSTRUCTOR: Any = yaml.constructor.SafeConstructor()


class DecodeError(ValueError):
    """The body is not valid JSON/YAML or exceeds a limit; str(e) is the one-line reason."""


_LARGE: ContextVar[bool] = ContextVar("podnet_large_body", default=False)


async def decode_json(raw: bytes) -> Any:
    return await _run(load_json, raw)


async def decode_yaml(raw: bytes) -> Any:
    return await _run(load_yaml, raw)


async def _run(fn: Callable[[bytes], Any], raw: bytes) -> Any:
    if len(raw) <= INLINE_LIMIT:
        return fn(raw)
    _LARGE.set(True)  # this request's task: later heavy steps go to the worker too (offload)
    return await asyncio.get_running_loop().run_in_executor(_POOL, fn, raw)


async def offload(fn: Callable[..., T], *args: Any) -> T:
    """fn(*args) on the decode worker when the current request brought a large body (copying
    and validating a 3 MB object takes the event loop 100s of ms), else right here. fn must
    only touch objects no other task uses meanwhile (the request's own copy)."""
    if not _LARGE.get():
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(_POOL, partial(fn, *args))


SWITCH_INTERVAL = 0.001


def share_the_gil() -> None:
    """Let the event loop take the GIL back from the decode worker within 1 ms instead of
    CPython's default 5 ms (a small request needs the GIL several times; the API server calls
    this when it starts)."""
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))


# ---- JSON ------------------------------------------------------------------------------------

def _no_constant(name: str) -> Any:
    raise DecodeError(f"invalid character '{name[0]}' looking for beginning of value")


def _finite(text: str) -> float:
    f = float(text)
    if math.isinf(f):
        raise DecodeError(f"json: cannot unmarshal number {text[:40]} into Go value of type float64")
    return f


def load_json(raw: bytes) -> Any:
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise DecodeError(f"exceeded max depth of {MAX_DEPTH}") from None
    except DecodeError:
        raise
    except ValueError as e:
        raise DecodeError(" ".join(str(e).split())) from None
    check_depth(data)
    return data


def check_depth(data: Any) -> None:
    """Refuse values nested deeper than MAX_DEPTH (iteratively: no recursion on the input)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise DecodeError(f"exceeded max depth of {MAX_DEPTH}")
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))


# ---- YAML ------------------------------------------------------------------------------------

class _Frame:
    __slots__ = ("anchor", "height", "is_map", "key", "merges", "size", "value")

    def __init__(self, is_map: bool, anchor: str | None):
        self.value: Any = {} if is_map else []
        self.is_map = is_map
        self.key: Any = _NO_KEY
        self.anchor = anchor
        self.size = 1
        self.height = 1
        self.merges: list[Any] = []


_NO_KEY = object()
_MERGE_KEY = object()


def _allowed_alias_ratio(decoded: int) -> float:
    if decoded <= _ALIAS_LOW:
        return 0.99
    if decoded >= _ALIAS_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_LOW) / (_ALIAS_HIGH - _ALIAS_LOW)


def _scalar(ev: Any, as_key: bool) -> Any:
    tag, value = ev.tag, ev.value
    if tag is None or tag == "!":
        tag = _RESOLVER.resolve(yaml.ScalarNode, value, ev.implicit)
    if tag == _STR:
        return value
    if tag == _NULL:
        return None
    if tag == _MERGE:
        return _MERGE_KEY if as_key else value
    node = yaml.ScalarNode(tag, value)
    try:
        if tag == _BOOL:
            return _CONSTRUCTOR.construct_yaml_bool(node)
        if tag == _INT:
            return _CONSTRUCTOR.construct_yaml_int(node)
        if tag == _FLOAT:
            f = _CONSTRUCTOR.construct_yaml_float(node)
        else:
            return value  # timestamps, binary and unknown tags: the text, as a JSON string
    except (ValueError, yaml.YAMLError) as e:
        raise DecodeError(f"yaml: cannot decode {value[:40]!r} as {tag.rsplit(':', 1)[-1]}: "
                          f"{' '.join(str(e).split())}") from None
    if math.isinf(f) or math.isnan(f):
        raise DecodeError(f"json: unsupported value: {value}")
    return f  # timestamps, binary and unknown tags: the text, as a JSON string


def _map_key(key: Any) -> Any:
    if key is _MERGE_KEY or isinstance(key, str):
        return key
    if isinstance(key, dict | list):
        raise DecodeError("yaml: invalid map key: a map key must be a scalar")
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _merge_into(frame: _Frame) -> None:
    target: dict[str, Any] = frame.value
    sources: list[Any] = []
    for m in frame.merges:
        sources.extend(m if isinstance(m, list) else [m])
    for src in sources:
        if not isinstance(src, dict):
            raise DecodeError("yaml: map merge requires map or sequence of maps as the value")
        for k, v in src.items():
            target.setdefault(k, v)


def load_yaml(raw: bytes) -> Any:
    """The first YAML document of raw as JSON values (dict/list/str/int/float/bool/None)."""
    loader = yaml.CSafeLoader(raw)
    try:
        return _build(loader)
    except yaml.YAMLError as e:
        if "exceeded maximum nesting depth" in str(e):  # libyaml's own limit, met while scanning ahead
            raise DecodeError(f"exceeded max depth of {MAX_DEPTH}") from None
        raise DecodeError(" ".join(str(e).split())) from None
    finally:
        loader.dispose()


def _build(loader: Any) -> Any:
    stack: list[_Frame] = []
    anchors: dict[str, tuple[Any, int, int]] = {}  # value, expanded node count, nesting height
    root: Any = None
    decoded = aliased = 0

    def add(value: Any, size: int, height: int = 0) -> Any:
        nonlocal root
        if not stack:
            root = value
            return value
        top = stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if not top.is_map:
            top.value.append(value)
        elif top.key is _NO_KEY:
            top.key = _map_key(value)
        else:
            if top.key is _MERGE_KEY:
                top.merges.append(value)
            else:
                top.value[top.key] = value
            top.key = _NO_KEY
        return value

    def as_key() -> bool:
        return bool(stack) and stack[-1].is_map and stack[-1].key is _NO_KEY

    while True:
        ev = loader.get_event()
        if ev is None or isinstance(ev, yaml.DocumentEndEvent):
            break
        if isinstance(ev, yaml.ScalarEvent):
            decoded += 1
            value = add(_scalar(ev, as_key()), 1)
            if ev.anchor:
                anchors[ev.anchor] = (value, 1, 0)
        elif isinstance(ev, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            decoded += 1
            if len(stack) >= MAX_DEPTH:
                raise DecodeError(f"exceeded max depth of {MAX_DEPTH}")
            stack.append(_Frame(isinstance(ev, yaml.MappingStartEvent), ev.anchor))
        elif isinstance(ev, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame = stack.pop()
            if frame.merges:
                _merge_into(frame)
            add(frame.value, frame.size, frame.height)
            if frame.anchor:
                anchors[frame.anchor] = (frame.value, frame.size, frame.height)
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in anchors:
                raise DecodeError(f"yaml: unknown anchor '{ev.anchor}' referenced")
            value, size, height = anchors[ev.anchor]
            if len(stack) + height > MAX_DEPTH:
                raise DecodeError(f"exceeded max depth of {MAX_DEPTH}")
            decoded += 1 + size
            aliased += size
            if aliased > 100 and decoded > 1000 and aliased / decoded > _allowed_alias_ratio(decoded):
                raise DecodeError("yaml: document contains excessive aliasing")
            add(copy.deepcopy(value) if isinstance(value, dict | list) else value, size, height)
        # StreamStart, DocumentStart: nothing to build
    return root
