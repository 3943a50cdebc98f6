"""The built-in images: no registry is reachable, so well-known images map to small local programs.

`resolve(image)` accepts any tag or digest of a known repository and returns an
`ImageSpec`: the image's ENTRYPOINT and CMD (as a container runtime would read
them from the image config), its usual ports, and `binaries`: paths inside the
"image" that stand for a podnet program (e.g. `/agnhost` -> the Python agnhost).
Commands that are not image binaries run with the host's own tools (`sh`,
`sleep`, `wget`, `curl`, ...).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field

PY = sys.executable


def _mod(module: str, *extra: str) -> list[str]:
    return [PY, "-m", module, *extra]


@dataclass(frozen=True)
class ImageSpec:
    repository: str  # canonical, e.g. docker.io/library/nginx
    entrypoint: list[str]
    cmd: list[str]
    ports: list[int] = field(default_factory=list)
    binaries: dict[str, list[str]] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ImageRef:
    repository: str  # canonical: domain/path
    tag: str
    digest: str

    def __str__(self) -> str:
        s = self.repository
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s


class ImageRefError(ValueError):
    pass


def parse_ref(image: str) -> ImageRef:
    """Split an image reference the way Docker does: domain, path, tag, digest (docker.io/library default)."""
    ref = image.strip()
    if not ref or any(c.isspace() for c in ref) or ref != ref.strip("/:@"):
        raise ImageRefError(f"invalid reference format: {image!r}")
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, _, tag = name.rpartition(":")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        domain, path = parts[0], "/".join(parts[1:])
    else:
        domain, path = "docker.io", name
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    if not path or path != path.lower():
        raise ImageRefError(f"invalid reference format: repository name must be lowercase: {image!r}")
    if not tag and not digest:
        tag = "latest"
    return ImageRef(f"{domain}/{path}", tag, digest)


def _agnhost() -> ImageSpec:
    ag = _mod("podnet.images.agnhost")
    return ImageSpec("registry.k8s.io/e2e-test-images/agnhost", ["/agnhost"], ["pause"], [8080, 8081, 9376],
                     {"/agnhost": ag, "agnhost": ag},
                     "agnhost: netexec, serve-hostname, pause (Kubernetes network test server)")


def _web(repo: str, flavor: str, cmd: list[str], port: int, desc: str) -> ImageSpec:
    server = _mod("podnet.images.webserver", "--flavor", flavor, "--port", str(port))
    bins = {cmd[0]: server, "/" + cmd[0].lstrip("/"): server}
    return ImageSpec(repo, [], cmd, [port], bins, desc)


def _shell(repo: str, entrypoint: list[str], cmd: list[str], desc: str) -> ImageSpec:
    return ImageSpec(repo, entrypoint, cmd, [], {}, desc)


def _build() -> dict[str, ImageSpec]:
    dns = _mod("podnet.dns.server")
    pause = _mod("podnet.images.agnhost", "pause")
    echo = _mod("podnet.images.http_echo")
    specs = [
        _agnhost(),
        _web("docker.io/library/nginx", "nginx", ["nginx", "-g", "daemon off;"], 80,
             "nginx: HTTP on :80, a page naming the pod"),
        _web("docker.io/library/httpd", "httpd", ["httpd-foreground"], 80,
             "httpd: HTTP on :80, a page naming the pod"),
        _web("gcr.io/google-samples/hello-app", "hello-app", ["/hello-app"], 8080,
             "hello-app: HTTP on :8080, 'Hello, world!' and the hostname"),
        _web("docker.io/traefik/whoami", "whoami", ["/whoami"], 80,
             "whoami: HTTP on :80, hostname, IPs and request headers"),
        ImageSpec("docker.io/hashicorp/http-echo", ["/http-echo"], [], [5678],
                  {"/http-echo": echo, "http-echo": echo}, "http-echo: -text, -listen :5678"),
        ImageSpec("registry.k8s.io/pause", ["/pause"], [], [], {"/pause": pause},
                  "pause: sleeps until stopped"),
        ImageSpec("registry.k8s.io/coredns/coredns", ["/coredns"], [], [53],
                  {"/coredns": dns, "coredns": dns}, "coredns: podnet's cluster DNS server"),
        ImageSpec("docker.io/podnet/dns", ["/coredns"], [], [53], {"/coredns": dns},
                  "podnet's cluster DNS server"),
        ImageSpec("docker.io/podnet/demo-frontend", ["/demo-frontend"], [], [80],
                  {"/demo-frontend": _mod("podnet.images.demo_frontend")},
                  "the demo's front-end: who answered, through the back-end Service"),
        _shell("docker.io/library/busybox", [], ["sh"], "busybox: runs the command with the host's tools"),
        _shell("docker.io/library/alpine", [], ["/bin/sh"], "alpine: runs the command with the host's tools"),
        _shell("docker.io/curlimages/curl", ["curl"], ["--help"], "curl: the host's curl"),
        _shell("docker.io/library/python", [], ["python3"], "python: the host's python3"),
        _shell("docker.io/library/ubuntu", [], ["bash"], "ubuntu: runs the command with the host's tools"),
        _shell("docker.io/library/debian", [], ["bash"], "debian: runs the command with the host's tools"),
        _shell("registry.k8s.io/e2e-test-images/busybox", [], ["sh"], "busybox (e2e): host tools"),
    ]
    table = {s.repository: s for s in specs}
    aliases = {
        "k8s.gcr.io/e2e-test-images/agnhost": "registry.k8s.io/e2e-test-images/agnhost",
        "gcr.io/kubernetes-e2e-test-images/agnhost": "registry.k8s.io/e2e-test-images/agnhost",
        "k8s.gcr.io/pause": "registry.k8s.io/pause",
        "gcr.io/google-containers/pause": "registry.k8s.io/pause",
        "k8s.gcr.io/coredns/coredns": "registry.k8s.io/coredns/coredns",
        "docker.io/coredns/coredns": "registry.k8s.io/coredns/coredns",
        "k8s.gcr.io/coredns": "registry.k8s.io/coredns/coredns",
        "gcr.io/google-samples/hello-app": "gcr.io/google-samples/hello-app",
        "us-docker.pkg.dev/google-samples/containers/gke/hello-app": "gcr.io/google-samples/hello-app",
        "docker.io/containous/whoami": "docker.io/traefik/whoami",
        "docker.io/library/nginx-unprivileged": "docker.io/library/nginx",
        "docker.io/nginxinc/nginx-unprivileged": "docker.io/library/nginx",
        "docker.io/busybox": "docker.io/library/busybox",
    }
    for alias, target in aliases.items():
        table[alias] = table[target]
    return table


_TABLE = _build()


def resolve(image: str) -> ImageSpec | None:
    """The built-in image for `image` (any tag or digest), or None when it is not built in."""
    try:
        ref = parse_ref(image)
    except ImageRefError:
        return None
    return _TABLE.get(ref.repository)


def builtin_images() -> list[str]:
    """Canonical names of the built-in images, for messages."""
    return sorted({s.repository for s in _TABLE.values()})


def image_id(image: str) -> str:
    """A stable imageID for containerStatuses: `<repository>@sha256:<digest of the name>`."""
    try:
        ref = parse_ref(image)
    except ImageRefError:
        return ""
    if ref.digest:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}@sha256:{hashlib.sha256(str(ref).encode()).hexdigest()}"


def pull_error_message(image: str) -> str:
    return (f'Failed to pull image "{image}": podnet runs only built-in images (no registry is reachable) '
            f"unless the container gives a command to run with the host's tools. Built-in images: "
            + ", ".join(builtin_images()))


class CommandError(Exception):
    """The container cannot be started; `reason` is the Kubernetes waiting reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def container_argv(image: str, command: list[str] | None, args: list[str] | None) -> list[str]:
    """The argv a container runs, with Kubernetes command/args semantics over the image's ENTRYPOINT/CMD.

    command+args -> command+args; command only -> command; args only -> entrypoint+args;
    neither -> entrypoint+cmd. The first word is then mapped through the image's binaries;
    anything else runs from the host's PATH. Raises CommandError (ErrImagePull/RunContainerError).
    """
    spec = resolve(image)
    if command:
        argv = list(command) + list(args or [])
    elif spec is None:
        raise CommandError("ErrImagePull", pull_error_message(image))
    elif args:
        argv = list(spec.entrypoint) + list(args)
    else:
        argv = list(spec.entrypoint) + list(spec.cmd)
    if not argv:
        raise CommandError("RunContainerError", f'image "{image}" has no entrypoint and no command was given')
    if spec is not None and argv[0] in spec.binaries:
        return list(spec.binaries[argv[0]]) + argv[1:]
    if "/" not in argv[0] and shutil.which(argv[0]) is None:
        hint = HOST_TOOL_HINTS.get(argv[0], "")
        raise CommandError("RunContainerError",
                           f'exec: "{argv[0]}": executable file not found in $PATH'
                           + (f" (podnet runs container commands with this machine's tools: {hint})"
                              if hint else ""))
    return argv


HOST_TOOL_HINTS = {
    "wget": "wget is not installed here; use curl, e.g. `curl -s http://svc:80/`",
    "nc": "nc is not installed here; use curl for HTTP, or bash's /dev/tcp",
    "nslookup": "nslookup is not installed here; use `getent hosts NAME` or dig",
    "dig": "dig is not installed here; use `getent hosts NAME`",
    "ping": "ping is not installed here",
    "python": "use python3",
    "apk": "there is no package manager in a podnet container",
    "apt-get": "there is no package manager in a podnet container",
}
