"""`kubectl explain` against podnet's OpenAPI v3 documents, for every served kind."""

from __future__ import annotations

import pytest
from kube_support import ApiServerProc

from podnet.model import kinds

pytestmark = pytest.mark.e2e


def test_explain_service_spec_ports(apiserver: ApiServerProc) -> None:
    out = apiserver.kubectl("explain", "service.spec.ports").stdout
    assert out.startswith("KIND:       Service\nVERSION:    v1\n\nFIELD: ports <[]ServicePort>\n")
    assert "The ports the Service exposes" in out
    for line in ("  nodePort\t<integer>", "  port\t<integer>", "  protocol\t<string>",
                 "  targetPort\t<IntOrString>", "  name\t<string>"):
        assert line in out, out
    assert "allocated\n    from 30000-32767" in out


def test_explain_a_deep_field_and_a_group_kind(apiserver: ApiServerProc) -> None:
    out = apiserver.kubectl("explain", "deployment.spec.template.spec.containers.ports.containerPort").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                          "FIELD: containerPort <integer>\n"), out


def test_explain_a_missing_field_is_kubectls_error(apiserver: ApiServerProc) -> None:
    res = apiserver.kubectl("explain", "service.spec.nosuch", check=False)
    assert res.returncode != 0
    assert 'error: field "nosuch" does not exist' in res.stderr


def test_every_served_kind_explains(apiserver: ApiServerProc) -> None:
    names = apiserver.kubectl("api-resources", "--no-headers", "-o", "name").stdout.split()
    assert len(names) >= 30
    served = {(rt.plural, rt.group): rt for g in kinds.all_groups() for rt in g.resources}
    failed = {}
    for name in names:
        plural, _, group = name.partition(".")
        rt = served[(plural, group)]
        res = apiserver.kubectl("explain", plural, f"--api-version={rt.api_version}", check=False)
        if res.returncode != 0 or f"KIND:       {rt.kind}\n" not in res.stdout:
            failed[name] = res.stderr.strip() or res.stdout[:200]
    assert not failed, failed


def test_kubectl_still_asks_the_server_to_validate_fields(apiserver: ApiServerProc) -> None:
    # the OpenAPI document declares fieldValidation on every PATCH: kubectl leaves validation to the server
    manifest = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: explain-strict\n"
                "data:\n  a: b\nbogus: 1\n")
    res = apiserver.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert res.returncode != 0
    assert 'strict decoding error: unknown field "bogus"' in res.stderr
