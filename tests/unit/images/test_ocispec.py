"""The OCI runtime config podnet writes for a real image: Kubernetes' command/args/env/user rules,
containerd's capabilities, the kubelet's runAsNonRoot messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from podnet.images.ocispec import (
    DEFAULT_CAPS,
    ConfigError,
    Mount,
    RunSpec,
    capabilities,
    merge_argv,
    merge_env,
    runtime_config,
    user_for,
)
from podnet.images.store import ImageConfig

IMG = ImageConfig(entrypoint=["/docker-entrypoint.sh"], cmd=["nginx", "-g", "daemon off;"],
                  env=["PATH=/usr/sbin:/bin", "NGINX_VERSION=1.25"], working_dir="/srv", user="",
                  exposed_ports=[])
POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}, "spec": {}}


def img(user: str) -> ImageConfig:
    return ImageConfig([], ["sh"], [], "", user, [])


def test_command_replaces_entrypoint_and_args_replace_cmd() -> None:
    assert merge_argv(IMG, None, None) == ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]
    assert merge_argv(IMG, None, ["-v"]) == ["/docker-entrypoint.sh", "-v"]
    assert merge_argv(IMG, ["sh"], None) == ["sh"]  # CMD is dropped too
    assert merge_argv(IMG, ["sh"], ["-c", "x"]) == ["sh", "-c", "x"]


def test_env_image_first_pod_over_it_default_path_does_not_override() -> None:
    env = merge_env(IMG, {"PATH": "/host/path", "HOSTNAME": "web", "NGINX_VERSION": "2"}, {"NGINX_VERSION"})
    assert env == ["PATH=/usr/sbin:/bin", "NGINX_VERSION=2", "HOSTNAME=web"]
    env = merge_env(IMG, {"PATH": "/mine"}, {"PATH"})
    assert "PATH=/mine" in env


def test_user_from_image_names_and_security_context(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/:/bin/sh\nnginx:x:101:102::/:/bin/sh\n")
    (tmp_path / "etc" / "group").write_text("root:x:0:\nwww:x:33:\n")
    c = {"name": "main"}
    assert user_for(POD, c, img(""), tmp_path) == (0, 0, [])
    assert user_for(POD, c, img("nginx"), tmp_path) == (101, 102, [])
    assert user_for(POD, c, img("nginx:www"), tmp_path) == (101, 33, [])
    assert user_for(POD, c, img("1000:1000"), tmp_path) == (1000, 1000, [])
    pod = {**POD, "spec": {"securityContext": {"runAsUser": 7, "runAsGroup": 8, "supplementalGroups": [9]}}}
    assert user_for(pod, c, img("nginx"), tmp_path) == (7, 8, [9])
    with pytest.raises(ConfigError, match="unable to find user nobody: no matching entries in passwd file"):
        user_for(POD, c, img("nobody"), tmp_path)


def test_run_as_non_root_refused_with_the_kubelet_messages(tmp_path: Path) -> None:
    c = {"name": "main", "securityContext": {"runAsNonRoot": True}}
    with pytest.raises(ConfigError) as e:
        user_for(POD, c, img(""), tmp_path)
    assert e.value.reason == "CreateContainerConfigError"
    assert e.value.message == ('container has runAsNonRoot and image will run as root '
                               '(pod: "web_default(u-1)", container: main)')
    with pytest.raises(ConfigError) as e:
        user_for(POD, c, img("app"), tmp_path)
    assert e.value.message == ('container has runAsNonRoot and image has non-numeric user (app), cannot '
                               'verify user is non-root (pod: "web_default(u-1)", container: main)')
    c2 = {"name": "main", "securityContext": {"runAsNonRoot": True, "runAsUser": 0}}
    with pytest.raises(ConfigError, match="container's runAsUser breaks non-root policy"):
        user_for(POD, c2, img("1000"), tmp_path)
    assert user_for(POD, c, img("1000"), tmp_path)[0] == 1000


def test_capabilities_default_add_drop_all_privileged() -> None:
    assert capabilities({}) == list(DEFAULT_CAPS)
    assert "CAP_SYS_ADMIN" not in capabilities({})
    got = capabilities({"capabilities": {"add": ["NET_ADMIN"], "drop": ["KILL", "CAP_CHOWN"]}})
    assert "CAP_NET_ADMIN" in got and "CAP_KILL" not in got and "CAP_CHOWN" not in got
    assert capabilities({"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}) == \
        ["CAP_NET_BIND_SERVICE"]
    assert "CAP_SYS_ADMIN" in capabilities({"privileged": True})
    assert "CAP_CHECKPOINT_RESTORE" not in capabilities({"privileged": True}, last_cap=37)
    with pytest.raises(ConfigError, match="unknown capability 'CAP_BOGUS'"):
        capabilities({"capabilities": {"add": ["BOGUS"]}})


def test_runtime_config_joins_the_pod_netns_and_honours_security_fields() -> None:
    spec = RunSpec(argv=["httpd"], env=["PATH=/bin"], cwd="/www", uid=33, gid=33, additional_gids=[5],
                   hostname="web", netns_path="/run/netns/pn-x-pod-1", cgroups_path="/podnet-x/c",
                   readonly_root=True, no_new_privileges=True, caps=["CAP_NET_BIND_SERVICE"],
                   memory_limit=64 << 20, mounts=[Mount("/etc/resolv.conf", "/state/resolv.conf", True)])
    cfg = runtime_config(spec)
    ns = {n["type"]: n for n in cfg["linux"]["namespaces"]}
    assert set(ns) == {"pid", "ipc", "uts", "mount", "network"}
    assert ns["network"]["path"] == "/run/netns/pn-x-pod-1"
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert cfg["process"]["user"] == {"uid": 33, "gid": 33, "additionalGids": [5]}
    assert cfg["process"]["noNewPrivileges"] is True
    caps = cfg["process"]["capabilities"]
    assert caps["bounding"] == ["CAP_NET_BIND_SERVICE"]
    assert caps["effective"] == []  # not root: none effective
    assert cfg["linux"]["resources"]["memory"] == {"limit": 64 << 20}
    assert {"destination": "/etc/resolv.conf", "type": "bind", "source": "/state/resolv.conf",
            "options": ["rbind", "rprivate", "ro"]} in cfg["mounts"]
    assert "/proc/kcore" in cfg["linux"]["maskedPaths"]
    priv = runtime_config(RunSpec(["sh"], [], "/", 0, 0, [], "h", "", "/c", privileged=True))
    assert "maskedPaths" not in priv["linux"]
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
