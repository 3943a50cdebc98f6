"""Allocators for Service values (ClusterIP, NodePort, LoadBalancer IP) and the API server hook."""

from podnet.allocators.cluster_ip import ClusterIPAllocator
from podnet.allocators.errors import AllocationError, AlreadyAllocated, NotInRange, RangeFull
from podnet.allocators.lb_pool import LB_CLASS, LB_IP_ANNOTATION, LoadBalancerPool
from podnet.allocators.node_port import NodePortAllocator
from podnet.allocators.service_hooks import ServiceHooks, ServiceReservation

__all__ = [
    "LB_CLASS",
    "LB_IP_ANNOTATION",
    "AllocationError",
    "AlreadyAllocated",
    "ClusterIPAllocator",
    "LoadBalancerPool",
    "NodePortAllocator",
    "NotInRange",
    "RangeFull",
    "ServiceHooks",
    "ServiceReservation",
]
