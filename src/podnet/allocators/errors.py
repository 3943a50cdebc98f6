"""Allocator errors, worded as kube-apiserver's ipallocator/portallocator word them.

The pure allocators raise these; `service_hooks` turns them into API errors with
the field path (`spec.clusterIPs`, `spec.ports[0].nodePort`, ...).
"""

from __future__ import annotations


class AllocationError(Exception):
    """Base class: `str(err)` is the text Kubernetes puts after `failed to allocate ...:`."""


class RangeFull(AllocationError):
    def __init__(self) -> None:
        super().__init__("range is full")


class AlreadyAllocated(AllocationError):
    def __init__(self, what: str = "IP") -> None:
        super().__init__(f"provided {what} is already allocated")


class NotInRange(AllocationError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
