"""Cluster DNS and the per-pod name-resolution files.

- `records.DnsIndex`: the Kubernetes DNS records (pure; fed Service/EndpointSlice/Pod events).
- `server`: `python -m podnet.dns.server`, UDP+TCP DNS answering from informers (`ClusterDns`).
- `podconfig.resolv_conf` / `podconfig.hosts_file`: a pod's /etc/resolv.conf and /etc/hosts, as the kubelet.
- `envvars.service_env_vars`: the `{SVC}_SERVICE_HOST`... variables, as the kubelet.
- `corefile.parse_corefile`: the settings taken from a CoreDNS Corefile (`-conf`).
"""
