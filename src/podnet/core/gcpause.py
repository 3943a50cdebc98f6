"""`gc_paused()`: no cyclic garbage collection while a large, acyclic structure is built.

Building the ruleset of 100,000 Services allocates millions of tuples and strings that are all
alive until the build ends; the collector, triggered by the allocation count, walks the growing
heap again and again (~70 % of the time of such a build, measured in bench/bench_proxy.py). The
objects made there form no reference cycles, so pausing the collector loses nothing; it resumes
(if it was on) when the block ends, even on an exception. Nested use is fine.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def gc_paused() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def without_gc(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorator: run `fn` inside gc_paused()."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return fn(*args, **kwargs)

    return wrapper
