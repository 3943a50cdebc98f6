"""Join tokens and the node rules (podnet.api.auth) through the real API server app."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_support import POD_PATH, SVC_PATH, Api, deployment, make_api, pod, service

from podnet.api.auth import JoinTokens, issue_node_credential, node_authorizer, node_credential, parse_ttl

ADMIN = {"Authorization": "Bearer admin-secret"}
NODES = "/api/v1/nodes"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def node(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    a = await make_api(tokens=("admin-secret",))
    a.server.authorizer = node_authorizer(tmp_path, a.server.registry)
    try:
        yield a
    finally:
        await a.client.close()


def test_tokens_look_like_kubeadm_and_store_no_secret(tmp_path: Path) -> None:
    tokens = JoinTokens(tmp_path)
    tok = tokens.create(dt.timedelta(hours=1), "for ci")
    tid, secret = tok.split(".")
    assert len(tid) == 6 and len(secret) == 16 and tok.islower()
    stored = (tmp_path / "join-tokens.json").read_text()
    assert secret not in stored and tid in stored
    [info] = tokens.list()
    assert info.id == tid and info.description == "for ci" and not info.expired()
    assert tokens.lookup(tok) is not None
    assert tokens.lookup(f"{tid}.{'0' * 16}") is None
    assert tokens.revoke(tid) and not tokens.revoke(tid)
    assert tokens.lookup(tok) is None


def test_ttl_parsing_names_the_flag() -> None:
    assert parse_ttl("1h") == dt.timedelta(hours=1)
    assert parse_ttl("2h30m") == dt.timedelta(hours=2, minutes=30)
    assert parse_ttl("0") is None
    with pytest.raises(ValueError) as e:
        parse_ttl("soon")
    assert str(e.value) == ('invalid TTL "soon" (--ttl): use a duration like 1h, 30m, 2h30m or 90s '
                            "(0 = never expires)")


async def test_a_node_reads_the_cluster_but_cannot_change_it(api: Api, tmp_path: Path) -> None:
    cred = bearer(node_credential(JoinTokens(tmp_path).create(), "m1"))
    assert (await api.call("POST", SVC_PATH, service("web"), headers=ADMIN))[0] == 201
    for path in (SVC_PATH, "/api/v1/services", NODES, "/api/v1/pods",
                 "/apis/discovery.k8s.io/v1/endpointslices", "/api", "/apis"):
        code, _ = await api.call("GET", path, headers=cred)
        assert code == 200, path
    code, body = await api.call("POST", SVC_PATH, service("evil"), headers=cred)
    assert code == 403
    assert body["message"] == ('services is forbidden: User "system:node:m1" cannot create resource '
                               '"services" in API group "" in the namespace "default"')
    assert body["reason"] == "Forbidden" and body["details"] == {"kind": "services"}
    code, body = await api.call("DELETE", f"{SVC_PATH}/web", headers=cred)
    assert code == 403 and body["message"].startswith('services "web" is forbidden: User "system:node:m1" '
                                                      'cannot delete resource "services"')
    code, body = await api.call("POST", "/apis/apps/v1/namespaces/default/deployments", deployment("d"),
                                headers=cred)
    assert code == 403 and body["message"] == (
        'deployments.apps is forbidden: User "system:node:m1" cannot create resource "deployments" in '
        'API group "apps" in the namespace "default"')
    code, body = await api.call("GET", "/api/v1/namespaces/default/configmaps", headers=cred)
    assert code == 403 and "cannot list resource \"configmaps\"" in body["message"]
    assert (await api.call("GET", f"{SVC_PATH}/web", headers=ADMIN))[0] == 200  # still there


async def test_a_node_registers_itself_only_and_keeps_to_its_own_node(api: Api, tmp_path: Path) -> None:
    tok = JoinTokens(tmp_path).create()
    me = bearer(node_credential(tok, "m1"))
    code, body = await api.call("POST", NODES, node("m2"), headers=me)
    assert code == 403 and body["message"] == (
        'nodes "m2" is forbidden: User "system:node:m1" cannot create resource "nodes" in API group "" at '
        "the cluster scope: node 'm1' cannot create node 'm2'")
    assert (await api.call("POST", NODES, node("m1"), headers=me))[0] == 201
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    code, got = await api.call("PATCH", f"{NODES}/m1/status", status, headers=me,
                               ctype="application/merge-patch+json")
    assert code == 200 and got["status"]["conditions"][0]["status"] == "True"
    # a node made by the admin (podnet up) cannot be taken over with a join token
    assert (await api.call("POST", NODES, node("n0"), headers=ADMIN))[0] == 201
    other = bearer(node_credential(tok, "n0"))
    code, body = await api.call("PATCH", f"{NODES}/n0/status", status, headers=other,
                                ctype="application/merge-patch+json")
    assert code == 403 and body["message"].endswith("node 'n0' was not registered with this join token")
    code, body = await api.call("PATCH", f"{NODES}/n0", {"metadata": {"labels": {"x": "y"}}}, headers=me,
                                ctype="application/merge-patch+json")
    assert code == 403 and body["message"].endswith("node 'm1' cannot modify node 'n0'")
    code, _ = await api.call("DELETE", f"{NODES}/m1", headers=me)
    assert code == 403


async def test_pod_status_and_deletion_only_for_pods_bound_to_the_node(api: Api, tmp_path: Path) -> None:
    me = bearer(node_credential(JoinTokens(tmp_path).create(), "m1"))
    assert (await api.call("POST", NODES, node("m1"), headers=me))[0] == 201
    for name, where in (("mine", "m1"), ("theirs", "m2")):
        assert (await api.call("POST", POD_PATH, pod(name, node=where), headers=ADMIN))[0] == 201
    patch = {"status": {"phase": "Running"}}
    code, got = await api.call("PATCH", f"{POD_PATH}/mine/status", patch, headers=me,
                               ctype="application/merge-patch+json")
    assert code == 200 and got["status"]["phase"] == "Running"
    code, body = await api.call("PATCH", f"{POD_PATH}/theirs/status", patch, headers=me,
                                ctype="application/merge-patch+json")
    assert code == 403 and body["message"] == (
        'pods "theirs" is forbidden: node "m1" can only update pod status for pods with spec.nodeName set '
        "to itself")
    code, body = await api.call("DELETE", f"{POD_PATH}/theirs", {"gracePeriodSeconds": 0}, headers=me)
    assert code == 403 and body["message"] == (
        'pods "theirs" is forbidden: node "m1" can only delete pods with spec.nodeName set to itself')
    code, _ = await api.call("DELETE", f"{POD_PATH}/mine", {"gracePeriodSeconds": 0}, headers=me)
    assert code == 200
    assert (await api.call("GET", f"{POD_PATH}/mine", headers=ADMIN))[0] == 404
    code, _ = await api.call("POST", POD_PATH, pod("new", node="m1"), headers=me)
    assert code == 403
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
             "involvedObject": {"kind": "Pod", "name": "mine", "namespace": "default"}, "reason": "Started"}
    assert (await api.call("POST", "/api/v1/namespaces/default/events", event, headers=me))[0] == 201


async def test_configmaps_only_those_its_pods_use(api: Api, tmp_path: Path) -> None:
    me = bearer(node_credential(JoinTokens(tmp_path).create(), "m1"))
    assert (await api.call("POST", NODES, node("m1"), headers=me))[0] == 201
    for cm in ("used", "other"):
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm}, "data": {"k": "v"}}
        code, _ = await api.call("POST", "/api/v1/namespaces/default/configmaps", body, headers=ADMIN)
        assert code == 201
    p = pod("withcm", node="m1")
    p["spec"]["volumes"] = [{"name": "c", "configMap": {"name": "used"}}]
    assert (await api.call("POST", POD_PATH, p, headers=ADMIN))[0] == 201
    assert (await api.call("GET", "/api/v1/namespaces/default/configmaps/used", headers=me))[0] == 200
    code, body = await api.call("GET", "/api/v1/namespaces/default/configmaps/other", headers=me)
    assert code == 403 and body["message"].endswith(
        "no relationship found between node 'm1' and this object")


async def test_revoked_token_gets_401_on_the_next_request(api: Api, tmp_path: Path) -> None:
    tokens = JoinTokens(tmp_path)
    tok = tokens.create()
    me = bearer(node_credential(tok, "m1"))
    assert (await api.call("GET", NODES, headers=me))[0] == 200
    tokens.revoke(tok.split(".")[0])
    code, body = await api.call("GET", NODES, headers=me)
    assert code == 401 and body["message"] == "Unauthorized"
    for bad in (tok, node_credential("abcdef.0123456789abcdef", "m1"), "garbage"):
        assert (await api.call("GET", NODES, headers=bearer(bad)))[0] == 401


async def test_expired_token_joins_no_new_node_but_its_nodes_keep_working(api: Api, tmp_path: Path) -> None:
    tokens = JoinTokens(tmp_path)
    tok = tokens.create(dt.timedelta(hours=1))
    assert (await api.call("POST", NODES, node("m1"), headers=bearer(node_credential(tok, "m1"))))[0] == 201
    path = tmp_path / "join-tokens.json"
    data = json.loads(path.read_text())
    data["tokens"][tok.split(".")[0]]["expires"] = "2000-01-01T00:00:00Z"
    path.write_text(json.dumps(data))
    assert (await api.call("GET", NODES, headers=bearer(node_credential(tok, "m1"))))[0] == 200
    code, _ = await api.call("POST", NODES, node("m2"), headers=bearer(node_credential(tok, "m2")))
    assert code == 401


async def test_anonymous_may_read_cluster_info_only(api: Api) -> None:
    ns = "/api/v1/namespaces/kube-public/configmaps"
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info"},
            "data": {"ca.crt": "PEM"}}
    assert (await api.call("POST", ns, body, headers=ADMIN))[0] == 201
    code, got = await api.call("GET", f"{ns}/cluster-info")
    assert code == 200 and got["data"]["ca.crt"] == "PEM"
    for method, path in (("GET", ns), ("GET", f"{ns}/other"), ("PUT", f"{ns}/cluster-info"),
                         ("GET", NODES)):
        assert (await api.call(method, path, body if method == "PUT" else None))[0] == 401, (method, path)


async def test_a_credential_acts_only_for_the_node_registered_with_its_token(api: Api,
                                                                             tmp_path: Path) -> None:
    """issue 19 #3: `<jointoken>:<other-node>` cannot patch or delete pods of a node it did not register."""
    tokens = JoinTokens(tmp_path)
    tok = tokens.create()
    assert (await api.call("POST", NODES, node("m1"), headers=bearer(node_credential(tok, "m1"))))[0] == 201
    assert (await api.call("POST", NODES, node("n0"), headers=ADMIN))[0] == 201  # a node of `podnet up`
    assert (await api.call("POST", POD_PATH, pod("dns", node="n0"), headers=ADMIN))[0] == 201
    # m2: a name never registered; n0: registered by the admin, not by this token
    for other in ("m2", "n0"):
        cred = bearer(node_credential(tok, other))
        code, body = await api.call("PATCH", f"{POD_PATH}/dns/status", {"status": {"podIP": "10.0.0.66"}},
                                    headers=cred, ctype="application/merge-patch+json")
        assert code == 403, body
        assert body["message"] == (
            f'pods "dns" is forbidden: User "system:node:{other}" cannot patch resource "pods/status" in API '
            f"group \"\" in the namespace \"default\": "
            f"node '{other}' was not registered with this join token")
        code, body = await api.call("DELETE", f"{POD_PATH}/dns", {"gracePeriodSeconds": 0}, headers=cred)
        assert code == 403
        assert body["message"].endswith(f"node '{other}' was not registered with this join token")
    # a second token cannot act for m1 either
    cred = bearer(node_credential(tokens.create(), "m1"))
    code, _ = await api.call("PATCH", f"{NODES}/m1/status", {"status": {}}, headers=cred,
                             ctype="application/merge-patch+json")
    assert code == 403
    code, got = await api.call("GET", f"{POD_PATH}/dns", headers=ADMIN)
    assert code == 200 and "podIP" not in got.get("status", {})


async def test_node_restriction_on_the_node_object(tmp_path: Path) -> None:
    """issue 19 #4: a node keeps its podCIDR, claims no other node's or the host's address, sets no
    node-restriction.kubernetes.io labels."""
    a = await make_api(tokens=("admin-secret",))
    a.server.authorizer = node_authorizer(tmp_path, a.server.registry,
                                          {"172.30.1.1": "the host's address on the node network"})
    try:
        tok = JoinTokens(tmp_path).create()
        me = bearer(node_credential(tok, "m1"))
        n0 = node("n0")
        n0["spec"] = {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}
        assert (await a.call("POST", NODES, n0, headers=ADMIN))[0] == 201
        addr = {"status": {"addresses": [{"type": "InternalIP", "address": "172.30.1.2"}]}}
        assert (await a.call("PATCH", f"{NODES}/n0/status", addr, headers=ADMIN,
                             ctype="application/merge-patch+json"))[0] == 200
        assert (await a.call("POST", NODES, node("m1"), headers=me))[0] == 201
        # the control plane (admin) assigns m1 its podCIDR, from "" once
        cidr = {"spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}}
        assert (await a.call("PATCH", f"{NODES}/m1", cidr, headers=ADMIN,
                             ctype="application/merge-patch+json"))[0] == 200
        steal = {"spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]}}
        for who in (me, ADMIN):  # nobody may change it once set (ValidateNodeUpdate)
            code, body = await a.call("PATCH", f"{NODES}/m1", steal, headers=who,
                                      ctype="application/merge-patch+json")
            assert code == 422, body
            assert body["message"] == ('Node "m1" is invalid: spec.podCIDRs: Forbidden: node updates may not '
                                       'change podCIDR except from "" to valid')
        for ip, why in (("172.30.1.2", 'node "n0" reports it'),
                        ("172.30.1.1", "it is the host's address on the node network")):
            claim = {"status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
            code, body = await a.call("PATCH", f"{NODES}/m1/status", claim, headers=me,
                                      ctype="application/merge-patch+json")
            assert code == 403, body
            assert body["message"] == (f'nodes "m1" is forbidden: node "m1" is not allowed to claim address '
                                       f"{ip}: {why}")
        ok = {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.5.7"}]}}
        assert (await a.call("PATCH", f"{NODES}/m1/status", ok, headers=me,
                             ctype="application/merge-patch+json"))[0] == 200
        label = {"metadata": {"labels": {"node-restriction.kubernetes.io/fast": "yes"}}}
        code, body = await a.call("PATCH", f"{NODES}/m1", label, headers=me,
                                  ctype="application/merge-patch+json")
        assert code == 403 and body["message"] == (
            'nodes "m1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/fast')
        assert (await a.call("PATCH", f"{NODES}/m1", {"metadata": {"labels": {"disk": "ssd"}}}, headers=me,
                             ctype="application/merge-patch+json"))[0] == 200
        assert (await a.call("PATCH", f"{NODES}/m1", label, headers=ADMIN,
                             ctype="application/merge-patch+json"))[0] == 200
        code, got = await a.call("GET", f"{NODES}/m1", headers=ADMIN)
        assert got["spec"]["podCIDR"] == "10.244.1.0/24"
        assert [x["address"] for x in got["status"]["addresses"]] == ["192.168.5.7"]
    finally:
        await a.client.close()


async def test_a_node_gets_a_serving_certificate_for_its_own_name_and_address_only(tmp_path: Path) -> None:
    """The node endpoint's certificate: the CSR in an annotation of the node's own Node is signed by the
    cluster CA in the same write, for the node's name and the address it reports, nothing else."""
    from cryptography import x509

    from podnet.core.tls import (
        SERVING_CERT_ANNOTATION,
        SERVING_CSR_ANNOTATION,
        ensure_ca_and_cert,
        kubelet_serving_csr,
    )

    ensure_ca_and_cert(tmp_path, [])
    a = await make_api(tokens=("admin-secret",))
    a.server.authorizer = node_authorizer(tmp_path, a.server.registry)
    try:
        me = bearer(node_credential(JoinTokens(tmp_path).create(), "m1"))
        assert (await a.call("POST", NODES, node("m1"), headers=me))[0] == 201
        addr = {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.5.7"}]}}
        assert (await a.call("PATCH", f"{NODES}/m1/status", addr, headers=me,
                             ctype="application/merge-patch+json"))[0] == 200
        _key, wrong = kubelet_serving_csr("m1", "192.168.5.8")
        ask = {"metadata": {"annotations": {SERVING_CSR_ANNOTATION: wrong.decode()}}}
        code, body = await a.call("PATCH", f"{NODES}/m1", ask, headers=me,
                                  ctype="application/merge-patch+json")
        assert code == 403 and body["message"] == (
            'nodes "m1" is forbidden: the serving certificate request names 192.168.5.8, which is neither '
            "node m1 nor an address it reports")
        _key, csr = kubelet_serving_csr("m1", "192.168.5.7")
        ask = {"metadata": {"annotations": {SERVING_CSR_ANNOTATION: csr.decode()}}}
        code, got = await a.call("PATCH", f"{NODES}/m1", ask, headers=me,
                                 ctype="application/merge-patch+json")
        assert code == 200, got
        annotations = got["metadata"]["annotations"]
        assert SERVING_CSR_ANNOTATION not in annotations
        cert = x509.load_pem_x509_certificate(annotations[SERVING_CERT_ANNOTATION].encode())
        ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string() == "CN=system:node:m1,O=system:nodes"
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]
    finally:
        await a.client.close()


async def test_secrets_and_service_account_tokens_only_for_its_pods(api: Api, tmp_path: Path) -> None:
    me = bearer(node_credential(JoinTokens(tmp_path).create(), "m1"))
    assert (await api.call("POST", NODES, node("m1"), headers=me))[0] == 201
    for name in ("used", "other"):
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"k": "v"}}
        assert (await api.call("POST", "/api/v1/namespaces/default/secrets", body, headers=ADMIN))[0] == 201
    for sa in ("runner", "bystander"):
        code, _ = await api.call(
            "POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": sa}}, headers=ADMIN
        )
        assert code == 201
    p = pod("withsecret", node="m1")
    p["spec"]["serviceAccountName"] = "runner"
    p["spec"]["containers"][0]["env"] = [
        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "used", "key": "k"}}}
    ]
    code, created = await api.call("POST", POD_PATH, p, headers=ADMIN)
    assert code == 201
    assert (await api.call("GET", "/api/v1/namespaces/default/secrets/used", headers=me))[0] == 200
    code, body = await api.call("GET", "/api/v1/namespaces/default/secrets/other", headers=me)
    assert code == 403 and body["message"].startswith(
        'secrets "other" is forbidden: User "system:node:m1" cannot get resource "secrets"'
    )
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "withsecret", "uid": created["metadata"]["uid"]}
    tr = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"boundObjectRef": ref}}
    path = "/api/v1/namespaces/default/serviceaccounts/{}/token"
    code, out = await api.call("POST", path.format("runner"), tr, headers=me)
    assert code == 201 and out["status"]["token"]
    code, _ = await api.call("POST", path.format("bystander"), tr, headers=me)
    assert code == 403


async def test_a_podnet_up_node_credential_acts_only_as_its_own_node(api: Api, tmp_path: Path) -> None:
    """The credential `podnet up` gives each of its agents: bound to its node before the agent starts,
    valid for that node name only, under the same node rules and NodeRestriction as a joined node."""
    one = issue_node_credential(tmp_path, "n1")
    two = issue_node_credential(tmp_path, "n2")
    assert one.endswith(":n1") and (tmp_path / "join-nodes.json").stat().st_mode & 0o777 == 0o600
    # the Nodes exist already (made by the admin, as after a restart): the binding made at issue counts
    for name in ("n1", "n2"):
        assert (await api.call("POST", NODES, node(name), headers=ADMIN))[0] == 201
    me = bearer(one)
    status = {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    code, _ = await api.call("PATCH", f"{NODES}/n1/status", status, headers=me,
                             ctype="application/merge-patch+json")
    assert code == 200
    # the token behind n1's credential authenticates as no other node, not even a new one
    token = one.rsplit(":", 1)[0]
    for name in ("n2", "n9"):
        code, body = await api.call("GET", NODES, headers=bearer(node_credential(token, name)))
        assert code == 401 and body["reason"] == "Unauthorized"
    assert (await api.call("POST", NODES, node("n9"), headers=bearer(node_credential(token, "n9"))))[0] == 401
    # another node's pods, its Node and its podCIDR are out of reach
    assert (await api.call("POST", POD_PATH, pod("theirs", node="n2"), headers=ADMIN))[0] == 201
    code, body = await api.call("PATCH", f"{POD_PATH}/theirs/status", {"status": {"podIP": "10.0.0.9"}},
                                headers=me, ctype="application/merge-patch+json")
    assert code == 403 and body["message"] == (
        'pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set '
        "to itself")
    code, body = await api.call("PATCH", f"{NODES}/n2", {"spec": {"podCIDR": "10.244.9.0/24"}}, headers=me,
                                ctype="application/merge-patch+json")
    assert code == 403 and body["message"].endswith("node 'n1' cannot modify node 'n2'")
    code, body = await api.call("PATCH", f"{NODES}/n1", {"spec": {"podCIDR": "10.244.9.0/24"}}, headers=me,
                                ctype="application/merge-patch+json")
    assert code == 403
    # and no arbitrary objects
    code, _ = await api.call("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "x"}},
                             headers=me)
    assert code == 403
    assert (await api.call("POST", SVC_PATH, service("s"), headers=me))[0] == 403
    # n2's own credential still works for n2
    code, _ = await api.call("PATCH", f"{NODES}/n2/status", status, headers=bearer(two),
                             ctype="application/merge-patch+json")
    assert code == 200
    # not join tokens: `podnet token list` leaves them out unless asked
    assert JoinTokens(tmp_path).list() == []
    assert {t.node for t in JoinTokens(tmp_path).list(node_credentials=True)} == {"n1", "n2"}
