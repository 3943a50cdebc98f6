"""podnet's own descriptions of the types and fields people set most, shown by `kubectl explain`.

Keys are `<Type>` or `<Type>.<field>` with the short type name (`ServiceSpec.ports`). A field without
an entry is shown without a description. Written for podnet; see the Kubernetes API reference for the
full text of every field.
"""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    # objects
    "Service": "A Service gives a set of pods, chosen by a label selector, one stable virtual IP "
               "(ClusterIP) and DNS name inside the cluster, and optionally a port on every node "
               "(NodePort) or an external address (LoadBalancer). podnet programs it into each node's "
               "nftables ruleset.",
    "Pod": "A Pod is one or more containers sharing a network namespace: one IP address, one set of "
           "ports, reachable from every other pod and node without NAT.",
    "Deployment": "A Deployment keeps a number of identical pods running from a template, replacing "
                  "them in a rolling update when the template changes.",
    "ReplicaSet": "A ReplicaSet keeps a number of pods matching its selector running.",
    "Namespace": "A Namespace is a scope for names; deleting it deletes everything in it.",
    "Node": "A Node is a machine (in podnet, a network namespace) that runs pods; it has its own IP "
            "and a podCIDR from which its pods' addresses come.",
    "ConfigMap": "A ConfigMap holds non-secret configuration as key/value pairs, for pods to read as "
                 "environment variables or files.",
    "Secret": "A Secret holds sensitive data (base64 in `data`, or plain text in `stringData` on write).",
    "EndpointSlice": "An EndpointSlice lists the ready and not-ready addresses and ports of the pods a "
                     "Service selects; the service proxy follows it.",
    "NetworkPolicy": "A NetworkPolicy limits which traffic may reach (ingress) or leave (egress) the "
                     "pods it selects; podnet enforces it in each node's nftables.",
    "IntOrString": "A number or a string: a port number or a port's name, a count or a percentage.",
    "ObjectMeta": "Metadata every object has: name, namespace, labels, annotations, owner and version.",
    "ListMeta": "Metadata of a list: the resourceVersion it was read at, and the token to continue "
                "a paged list from.",
    "Patch": "The body of a PATCH request, in the format its Content-Type names (JSON patch, merge "
             "patch, strategic merge patch or apply configuration).",
    "Status": "The result of a request that returns no object, or of a failed one: a reason, a message "
              "and details.",
    # type metadata (every object)
    "TypeMeta.apiVersion": "The API group and version of the object's schema (`v1`, `apps/v1`); the "
                           "server answers in the version the client asked for.",
    "TypeMeta.kind": "The kind of object (`Service`, `Deployment`), in CamelCase; set by the server "
                     "from the endpoint when it is left out.",
    # metadata
    "ObjectMeta.name": "The object's name, unique among objects of its kind in its namespace.",
    "ObjectMeta.namespace": "The namespace the object lives in; empty for cluster-scoped kinds.",
    "ObjectMeta.labels": "Key/value pairs used by selectors (Services, Deployments, NetworkPolicies) "
                         "to pick objects.",
    "ObjectMeta.annotations": "Key/value pairs for tools and people; not used for selection.",
    "ObjectMeta.resourceVersion": "An opaque version the server changes on every write; sent back on "
                                  "update to detect conflicting writes.",
    "ObjectMeta.generateName": "A prefix from which the server makes a unique name when `name` is empty.",
    # Service
    "Service.spec": "What the Service selects and how it is exposed.",
    "Service.status": "The Service's observed state: the LoadBalancer ingress addresses.",
    "ServiceSpec.selector": "Labels of the pods this Service sends traffic to. Without a selector, "
                            "endpoints are managed by hand.",
    "ServiceSpec.ports": "The ports the Service exposes, each forwarded to a port of the selected pods.",
    "ServiceSpec.type": "How the Service is exposed: ClusterIP (inside the cluster only, the default), "
                        "NodePort (also on a port of every node), LoadBalancer (also on an external "
                        "address; without a pool it works as NodePort), or ExternalName (a DNS alias).",
    "ServiceSpec.clusterIP": "The virtual IP inside the cluster, allocated from the service CIDR when "
                             "empty; `None` makes a headless Service (DNS returns the pods' IPs).",
    "ServiceSpec.externalTrafficPolicy": "Cluster (the default) spreads outside traffic over pods on "
                                         "every node, masquerading the client; Local keeps the client "
                                         "IP and sends only to pods on the receiving node.",
    "ServiceSpec.internalTrafficPolicy": "Cluster (the default) or Local: traffic from inside the "
                                         "cluster goes only to pods on the same node.",
    "ServiceSpec.sessionAffinity": "ClientIP sends every connection of one client to the same pod; "
                                   "None (the default) picks a pod at random each time.",
    "ServicePort.port": "The port the Service listens on, at its ClusterIP.",
    "ServicePort.targetPort": "The pods' port traffic is sent to: a number, or the name of a container "
                              "port. Defaults to `port`.",
    "ServicePort.nodePort": "For NodePort and LoadBalancer Services, the port on every node; allocated "
                            "from 30000-32767 when not given.",
    "ServicePort.protocol": "TCP (the default), UDP or SCTP.",
    "ServicePort.name": "The port's name; required when the Service has more than one port.",
    # Pod
    "Pod.spec": "The pod's containers, volumes and scheduling.",
    "Pod.status": "The pod's observed state: phase, IP, conditions and container states.",
    "PodSpec.containers": "The containers of the pod; they share its network namespace.",
    "PodSpec.nodeName": "The node the pod runs on, set by the scheduler.",
    "PodSpec.hostNetwork": "Run in the node's network namespace instead of one of the pod's own.",
    "PodSpec.restartPolicy": "Always (the default), OnFailure or Never.",
    "PodSpec.dnsPolicy": "Where the pod's resolv.conf points: ClusterFirst (the cluster DNS, the "
                         "default), Default (the node's), None (dnsConfig only).",
    "Container.name": "The container's name, unique in the pod.",
    "Container.image": "The image to run.",
    "Container.command": "Replaces the image's ENTRYPOINT.",
    "Container.args": "Replaces the image's CMD.",
    "Container.ports": "Ports the container listens on; informational, but their names can be used "
                       "by Services' targetPort and NetworkPolicies.",
    "Container.env": "Environment variables for the container.",
    "Container.readinessProbe": "A check that must pass before the pod receives Service traffic.",
    "ContainerPort.containerPort": "The port number the container listens on.",
    "PodStatus.podIP": "The pod's IP address, from its node's podCIDR.",
    "PodStatus.phase": "Pending, Running, Succeeded, Failed or Unknown.",
    # Deployment
    "DeploymentSpec.replicas": "How many pods to run (default 1).",
    "DeploymentSpec.selector": "Which pods belong to this Deployment; must match the template's labels.",
    "DeploymentSpec.template": "The pod template new pods are made from.",
    "DeploymentSpec.strategy": "How pods are replaced: RollingUpdate (the default) or Recreate.",
    # NetworkPolicy
    "NetworkPolicySpec.podSelector": "The pods the policy applies to; empty selects every pod of the "
                                     "namespace.",
    "NetworkPolicySpec.ingress": "Traffic allowed in; a selected pod accepts only what some rule allows.",
    "NetworkPolicySpec.egress": "Traffic allowed out; a selected pod sends only what some rule allows.",
    "NetworkPolicySpec.policyTypes": "Ingress, Egress or both: which directions the policy restricts.",
}
