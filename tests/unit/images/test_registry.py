import sys

import pytest

from podnet.images.registry import (
    CommandError,
    ImageRefError,
    builtin_images,
    container_argv,
    image_id,
    parse_ref,
    resolve,
)


@pytest.mark.parametrize("image,repo,tag,digest", [
    ("nginx", "docker.io/library/nginx", "latest", ""),
    ("nginx:1.25-alpine", "docker.io/library/nginx", "1.25-alpine", ""),
    ("docker.io/library/nginx:latest", "docker.io/library/nginx", "latest", ""),
    ("hashicorp/http-echo:1.0", "docker.io/hashicorp/http-echo", "1.0", ""),
    ("registry.k8s.io/e2e-test-images/agnhost:2.45", "registry.k8s.io/e2e-test-images/agnhost", "2.45", ""),
    ("localhost:5000/x/y:3", "localhost:5000/x/y", "3", ""),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox", "", "sha256:" + "a" * 64),
])
def test_parse_ref(image: str, repo: str, tag: str, digest: str) -> None:
    ref = parse_ref(image)
    assert (ref.repository, ref.tag, ref.digest) == (repo, tag, digest)


@pytest.mark.parametrize("bad", ["", "Nginx", "nginx:", "a b"])
def test_parse_ref_rejects(bad: str) -> None:
    with pytest.raises(ImageRefError, match="invalid reference format"):
        parse_ref(bad)


@pytest.mark.parametrize("image", [
    "registry.k8s.io/e2e-test-images/agnhost:2.53", "k8s.gcr.io/e2e-test-images/agnhost:2.21",
    "registry.k8s.io/e2e-test-images/agnhost@sha256:" + "b" * 64,
])
def test_agnhost_any_tag_or_digest(image: str) -> None:
    spec = resolve(image)
    assert spec is not None and spec.repository == "registry.k8s.io/e2e-test-images/agnhost"


def test_unknown_image_is_none() -> None:
    assert resolve("quay.io/someone/app:1") is None
    assert resolve("Nginx") is None


def test_command_args_semantics_agnhost() -> None:
    py = [sys.executable, "-m", "podnet.images.agnhost"]
    img = "registry.k8s.io/e2e-test-images/agnhost:2.45"
    # neither: entrypoint + cmd
    assert container_argv(img, None, None) == [*py, "pause"]
    # args only: entrypoint + args
    assert container_argv(img, None, ["netexec", "--http-port=8080"]) == [*py, "netexec", "--http-port=8080"]
    # command (image binary) + args
    assert container_argv(img, ["/agnhost"], ["serve-hostname"]) == [*py, "serve-hostname"]
    # command only (host tool), cmd of the image ignored
    assert container_argv(img, ["sleep", "5"], None) == ["sleep", "5"]


def test_coredns_maps_to_podnet_dns() -> None:
    argv = container_argv("registry.k8s.io/coredns/coredns:v1.11.1", None, ["-conf", "/etc/coredns/Corefile"])
    assert argv == [sys.executable, "-m", "podnet.dns.server", "-conf", "/etc/coredns/Corefile"]
    assert container_argv("podnet/dns", None, None) == [sys.executable, "-m", "podnet.dns.server"]


def test_nginx_default_and_busybox_default() -> None:
    argv = container_argv("nginx:1.27", None, None)
    assert argv[:3] == [sys.executable, "-m", "podnet.images.webserver"]
    assert "--flavor" in argv and argv[argv.index("--flavor") + 1] == "nginx"
    assert container_argv("busybox", None, None) == ["sh"]
    assert container_argv("busybox:1.36", ["sh", "-c", "echo hi"], None) == ["sh", "-c", "echo hi"]


def test_unknown_image_without_command_is_err_image_pull() -> None:
    with pytest.raises(CommandError) as ei:
        container_argv("quay.io/someone/app:1", None, ["--flag"])
    assert ei.value.reason == "ErrImagePull"
    assert 'Failed to pull image "quay.io/someone/app:1"' in ei.value.message
    for name in ("registry.k8s.io/e2e-test-images/agnhost", "docker.io/library/nginx",
                 "docker.io/hashicorp/http-echo", "registry.k8s.io/pause"):
        assert name in ei.value.message
        assert name in builtin_images()


def test_unknown_image_with_command_runs_host_tool() -> None:
    assert container_argv("quay.io/someone/app:1", ["sleep", "1"], None) == ["sleep", "1"]


def test_missing_executable_is_run_container_error() -> None:
    with pytest.raises(CommandError) as ei:
        container_argv("busybox", ["no-such-tool-podnet"], None)
    assert ei.value.reason == "RunContainerError"
    assert ei.value.message == 'exec: "no-such-tool-podnet": executable file not found in $PATH'


def test_image_id_stable_and_uses_digest() -> None:
    assert image_id("nginx") == image_id("docker.io/library/nginx:latest")
    assert image_id("nginx").startswith("docker.io/library/nginx@sha256:")
    d = "sha256:" + "c" * 64
    assert image_id("nginx@" + d) == "docker.io/library/nginx@" + d


def test_missing_busybox_applet_gets_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError) as ei:
        container_argv("busybox", ["wget", "-qO-", "http://web"], None)
    assert ei.value.message == ('exec: "wget": executable file not found in $PATH (podnet runs container '
                                "commands with this machine's tools: wget is not installed here; use curl, "
                                "e.g. `curl -s http://svc:80/`)")
