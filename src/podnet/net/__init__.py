"""The kernel's networking: `ops.NetOps` with a real (pyroute2) and a fake implementation proven equal
by a kernel test, code run inside a network namespace (`nsthread`), the one netlink thread of a process
(`netlink_thread`), pod IPAM, the pod network (`cni`) and a node's network and routes (`nodenet`)."""
