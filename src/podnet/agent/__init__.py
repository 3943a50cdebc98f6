"""The node agent (kubelet's role, and the host of the proxy and policy runners on its node).

It registers the Node and keeps its status, runs the pods bound to it (`runtime`, `pods`, the
container `shim`, `probes`, `logs`, the kubelet-style endpoint `kubelet_http`), keeps routes to the
other nodes, and runs the service proxy and the NetworkPolicy runner. It reaches the cluster only
through the API. Entry point: `podnet.agent.main` (started by `podnet agent`).
"""
