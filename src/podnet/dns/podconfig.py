"""A pod's /etc/resolv.conf and /etc/hosts, as the kubelet (and the CRI runtime) write them. Pure.

Kubernetes: pkg/kubelet/network/dns/dns.go (`GetPodDNS`, `appendDNSConfig`,
`formDNSConfigFitsLimits`), pkg/kubelet/kubelet_pods.go (`managedHostsFileContent`,
`GeneratePodHostNameAndDomain`); containerd writes resolv.conf as
`search ...` / `nameserver ...` lines / `options ...`.

dnsPolicy:
* `ClusterFirst` (default): nameserver = cluster DNS; search = `<ns>.svc.<d> svc.<d> <d>`
  followed by the host's search domains; options = `ndots:5` (the host's options are dropped).
  A `hostNetwork` pod with ClusterFirst gets `Default` instead.
* `ClusterFirstWithHostNet`: as ClusterFirst, also for hostNetwork pods.
* `Default`: the host's nameservers, search and options.
* `None`: nothing but `spec.dnsConfig`.
`spec.dnsConfig` is then merged: nameservers and searches appended (duplicates dropped),
options merged by name (the pod's value wins). Limits: 3 nameservers, 32 search domains,
2048 characters of search line, no search domain longer than 253 characters; extra
entries are dropped with a warning, as the kubelet does (it also records a
`DNSConfigForming` event).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from podnet.model.kinds import Obj

MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_LINE_CHARS = 2048
MAX_DOMAIN_LENGTH = 253
DEFAULT_OPTIONS = ("ndots:5",)
HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
HOSTS_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass
class ResolverConfig:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # DNSConfigForming messages, for events

    def render(self) -> str:
        out = ""
        if self.searches:
            out += "search " + " ".join(self.searches) + "\n"
        for ns in self.nameservers:
            out += f"nameserver {ns}\n"
        if self.options:
            out += "options " + " ".join(self.options) + "\n"
        return out


def parse_resolv_conf(text: str) -> ResolverConfig:
    """Nameservers, search domains and options of a resolv.conf (kubelet's parseResolvConf)."""
    cfg = ResolverConfig()
    for raw in text.splitlines():
        line = re.split(r"[#;]", raw, maxsplit=1)[0]
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            try:
                cfg.nameservers.append(str(ipaddress.ip_address(fields[1].split("%")[0])))
            except ValueError:
                cfg.warnings.append(f"couldn't parse nameserver: {fields[1]!r}")
        elif fields[0] == "search":
            cfg.searches = [s.rstrip(".") for s in fields[1:] if s != "."]
        elif fields[0] == "options":
            cfg.options = _merge_options(cfg.options, fields[1:])
    return cfg


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _merge_options(existing: Sequence[str], new: Sequence[str]) -> list[str]:
    merged: dict[str, str] = {}
    for op in [*existing, *new]:
        name, sep, value = op.partition(":")
        merged[name] = value if sep else ""
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def _pod_dns_options(options: Sequence[Obj]) -> list[str]:
    out = []
    for op in options:
        name = str(op.get("name") or "")
        if not name:
            continue
        value = op.get("value")
        out.append(f"{name}:{value}" if value not in (None, "") else name)
    return out


def dns_policy_kind(pod: Obj) -> str:
    """`cluster`, `host` or `none`: which base configuration a pod gets."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst":
        return "host" if spec.get("hostNetwork") else "cluster"
    if policy == "Default":
        return "host"
    raise ValueError(f"spec.dnsPolicy: Unsupported value: {policy!r}: supported values: "
                     '"ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"')


def pod_dns_config(pod: Obj, *, cluster_domain: str, dns_ip: str | Sequence[str],
                   host_resolv_conf: str) -> ResolverConfig:
    """The resolver configuration the kubelet computes for `pod` (GetPodDNS)."""
    host = parse_resolv_conf(host_resolv_conf)
    kind = dns_policy_kind(pod)
    cluster_ips = [dns_ip] if isinstance(dns_ip, str) else list(dns_ip)
    cluster_ips = [i for i in cluster_ips if i]
    if kind == "cluster" and not cluster_ips:
        kind = "host"  # the kubelet falls back to Default when no cluster DNS is configured
        host.warnings.append("kubelet does not have ClusterDNS IP configured and cannot create Pod using "
                             '"ClusterFirst" policy. Falling back to "Default" policy.')
    cfg: ResolverConfig
    if kind == "none":
        cfg = ResolverConfig(warnings=list(host.warnings))
    elif kind == "cluster":
        ns = str((pod.get("metadata") or {}).get("namespace") or "default")
        domain = cluster_domain.strip(".")
        searches = host.searches
        if domain:
            searches = _unique([f"{ns}.svc.{domain}", f"svc.{domain}", domain, *host.searches])
        cfg = ResolverConfig(list(cluster_ips), searches, list(DEFAULT_OPTIONS), list(host.warnings))
    else:
        cfg = host
    extra = (pod.get("spec") or {}).get("dnsConfig")
    if extra:
        cfg.nameservers = _unique([*cfg.nameservers, *[str(n) for n in extra.get("nameservers") or []]])
        cfg.searches = _unique([*cfg.searches, *[str(s) for s in extra.get("searches") or []]])
        cfg.options = _merge_options(cfg.options, _pod_dns_options(extra.get("options") or []))
    _fit_limits(cfg)
    return cfg


def _fit_limits(cfg: ResolverConfig) -> None:
    if len(cfg.nameservers) > MAX_NAMESERVERS:
        cfg.nameservers = cfg.nameservers[:MAX_NAMESERVERS]
        cfg.warnings.append("Nameserver limits were exceeded, some nameservers have been omitted, "
                            "the applied nameserver line is: " + " ".join(cfg.nameservers))
    exceeded = False
    searches = cfg.searches
    if len(searches) > MAX_SEARCH_PATHS:
        searches = searches[:MAX_SEARCH_PATHS]
        exceeded = True
    kept = [s for s in searches if len(s) <= MAX_DOMAIN_LENGTH]
    exceeded = exceeded or len(kept) != len(searches)
    line_len = len(" ".join(kept))
    if line_len > MAX_SEARCH_LINE_CHARS:
        while kept and line_len > MAX_SEARCH_LINE_CHARS:
            line_len -= len(kept[-1]) + 1
            kept = kept[:-1]
        exceeded = True
    cfg.searches = kept
    if exceeded:
        cfg.warnings.append("Search Line limits were exceeded, some search paths have been omitted, "
                            "the applied search line is: " + " ".join(kept))


def resolv_conf(pod: Obj, *, cluster_domain: str, dns_ip: str, host_resolv_conf: str) -> str:
    """The pod's /etc/resolv.conf text."""
    return pod_dns_config(pod, cluster_domain=cluster_domain, dns_ip=dns_ip,
                          host_resolv_conf=host_resolv_conf).render()


def _check_label(value: str, what: str) -> None:
    if len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise ValueError(f"pod {what} {value!r} is not a valid DNS label: a lowercase RFC 1123 label must "
                         "consist of lower case alphanumeric characters or '-', and must start and end "
                         "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                         "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")


def pod_hostname_and_domain(pod: Obj, *, cluster_domain: str) -> tuple[str, str]:
    """(hostname, host domain) as kubelet's GeneratePodHostNameAndDomain: hostname defaults to the
    pod name (truncated to 63 characters), the domain is `<subdomain>.<ns>.svc.<d>` when set."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name = str(meta.get("name") or "")
    hostname = name
    if spec.get("hostname"):
        hostname = str(spec["hostname"])
        _check_label(hostname, "Hostname")
    if len(hostname) > 63:
        hostname = hostname[:63].rstrip("-.")
        if not hostname:
            raise ValueError(f"hostname for pod {name!r} was invalid: {hostname!r}")
    domain = ""
    if spec.get("subdomain"):
        sub = str(spec["subdomain"])
        _check_label(sub, "Subdomain")
        ns = str(meta.get("namespace") or "default")
        domain = f"{sub}.{ns}.svc.{cluster_domain.strip('.')}"
    return hostname, domain


def _alias_lines(pod: Obj) -> str:
    aliases = (pod.get("spec") or {}).get("hostAliases") or []
    if not aliases:
        return ""
    out = "\n# Entries added by HostAliases.\n"
    for a in aliases:
        out += f"{a.get('ip', '')}\t" + "\t".join(str(h) for h in a.get("hostnames") or []) + "\n"
    return out


def hosts_file(pod: Obj, pod_ip: str | Sequence[str], *, cluster_domain: str,
               host_hosts_file: str | None = None) -> str:
    """The pod's /etc/hosts (kubelet's managed hosts file).

    `pod_ip`: the pod's IP, or all its IPs (dual stack). For a hostNetwork pod pass the
    node's own hosts file as `host_hosts_file`: the kubelet then copies it (plus hostAliases).
    """
    if (pod.get("spec") or {}).get("hostNetwork") and host_hosts_file is not None:
        return HOSTS_HEADER_HOST_NETWORK + host_hosts_file + _alias_lines(pod)
    ips = [pod_ip] if isinstance(pod_ip, str) else list(pod_ip)
    hostname, domain = pod_hostname_and_domain(pod, cluster_domain=cluster_domain)
    out = (HOSTS_HEADER
           + "127.0.0.1\tlocalhost\n"
           + "::1\tlocalhost ip6-localhost ip6-loopback\n"
           + "fe00::0\tip6-localnet\n"
           + "fe00::0\tip6-mcastprefix\n"
           + "fe00::1\tip6-allnodes\n"
           + "fe00::2\tip6-allrouters\n")
    for ip in ips:
        out += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    return out + _alias_lines(pod)
