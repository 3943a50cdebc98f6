"""Controllers: pure `reconcile(...) -> list[Action]` functions plus the runner that feeds them.

- endpointslices / endpoints: Service selector + pod readiness -> EndpointSlices and Endpoints
- replicaset / deployment: pods from templates, rolling updates
- scheduler: pods onto nodes (pods/binding)
- node_ipam / node_lifecycle: podCIDRs; nodes that stop reporting
- lb_status: LoadBalancer EXTERNAL-IP in status
- runner: `run_controllers(client, config)` / `ControllerManager`
"""

from podnet.controllers.actions import Action
from podnet.controllers.events import make_event

__all__ = ["Action", "make_event"]
