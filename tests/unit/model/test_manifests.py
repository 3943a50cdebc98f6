"""Manifest loading: multi-document YAML/JSON, lists, and errors a beginner can act on."""

from __future__ import annotations

import json
import pathlib

import pytest

from podnet.model import manifests
from podnet.model.manifests import ManifestError, load_manifests

REPO = pathlib.Path(__file__).resolve().parents[3]
BROKEN = REPO / "examples" / "broken" / "misplaced-selector.yaml"

SVC = """apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
"""


def test_multi_document_yaml_with_empty_documents_and_list() -> None:
    text = (
        "---\n"
        + SVC
        + "---\n# only a comment\n---\n"
        + """apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a}
  data: {when: 2024-01-01, flag: "on"}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: d}
"""
    )
    objs = load_manifests("many.yaml", text)
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [
        ("Service", "web"),
        ("ConfigMap", "a"),
        ("Deployment", "d"),
    ]
    assert objs[1]["data"] == {"when": "2024-01-01", "flag": "on"}  # dates stay strings, as in kubectl
    json.dumps(objs)  # plain JSON-able dicts


def test_json_object_and_array(tmp_path: pathlib.Path) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "extra": {"keep": 1}}
    path = tmp_path / f"ns-{id(obj)}.json"
    path.write_text(json.dumps(obj))
    assert load_manifests(path) == [obj]
    assert load_manifests("two.json", json.dumps([obj, obj])) == [obj, obj]


def test_reads_file_and_reports_missing_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text(SVC)
    assert load_manifests(str(path))[0]["spec"]["ports"] == [{"port": 80}]
    with pytest.raises(ManifestError) as info:
        load_manifests(tmp_path / "nope.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'nope.yaml'}: no such file")


def test_misplaced_selector_example_file() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests(BROKEN)
    err = info.value
    lines = BROKEN.read_text().splitlines()
    sel_line = next(i for i, t in enumerate(lines, 1) if t.strip() == "selector:")
    ports_line = next(i for i, t in enumerate(lines, 1) if t.strip() == "ports:")
    assert (err.filename, err.line, err.column) == (str(BROKEN), sel_line, 7)
    assert err.message == f'"selector" is indented under "ports" (line {ports_line}); it belongs under "spec"'
    assert err.snippet == f"{sel_line:>5} |       selector:\n      |       ^"
    text = str(err)
    assert text.startswith(f'{BROKEN}:{sel_line}:7: "selector" is indented under "ports"')
    assert 'lines up with "type"' in text and "column 3" in text


def test_misplaced_selector_that_breaks_yaml() -> None:
    text = """apiVersion: v1
kind: Service
metadata:
  name: myapp-service
spec:
  type: NodePort
  ports:
  - port: 80
    targetPort: 80
   selector:
     app: myapp
"""
    with pytest.raises(ManifestError) as info:
        load_manifests("svc.yaml", text)
    err = info.value
    assert (err.line, err.column) == (10, 4)
    assert err.message == (
        'YAML indentation error: "selector" is indented under "ports" (line 7); it belongs under "spec"'
    )
    assert "   10 |    selector:\n      |    ^" in str(err)


def test_misplaced_pod_spec_field_in_deployment() -> None:
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        volumes: []
"""
    with pytest.raises(ManifestError) as info:
        load_manifests("dep.yaml", text)
    assert info.value.message == (
        '"volumes" is indented under "containers" (line 10); it belongs under "spec.template.spec"'
    )
    assert 'lines up with "containers" (line 10)' in str(info.value)


def test_yaml_syntax_error_has_location_caret_and_hint() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n   labels: {a: b}\n"
    with pytest.raises(ManifestError) as info:
        load_manifests("bad.yaml", text)
    err = info.value
    assert (err.line, err.column) == (5, 10)
    assert str(err).splitlines() == [
        "bad.yaml:5:10: YAML syntax error: mapping values are not allowed here",
        "    5 |    labels: {a: b}",
        "      |          ^",
        'hint: a "key: value" line is indented deeper than the line above allows, or an unquoted '
        "value contains "
        '": ". Line this key up with its siblings, or quote the value.',
    ]


def test_tab_indentation() -> None:
    with pytest.raises(ManifestError, match="tab characters") as info:
        load_manifests("tab.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n")
    assert info.value.line == 4


def test_duplicate_key() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests("dup.yaml", SVC + "  type: NodePort\n  type: ClusterIP\n")
    assert info.value.line == 11
    assert info.value.message == 'key "type" already set in this map (first set on line 10)'


def test_json_syntax_error() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests("x.json", '{"apiVersion": "v1",\n "kind": "Pod" "metadata": {}}')
    assert (info.value.line, info.value.column) == (2, 16)
    assert info.value.message.startswith("JSON syntax error: Expecting ',' delimiter")


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("kind: Service\nmetadata: {name: a}\n", "document 1 (Service) has no apiVersion", 1),
        ("apiVersion: v1\nmetadata: {name: a}\n", "document 1 (object) has no kind", 1),
        (
            "apiVersion: v1\nkind: Pod\nmetadata:\n  labels: {a: b}\n",
            "document 1 (Pod) has no metadata.name",
            3,
        ),
        ("apiVersion: v1\nkind: Pod\n", "document 1 (Pod) has no metadata.name", 1),
        ("- a\n- b\n", "document 1 is a list, not an object", 1),
        (SVC + "---\napiVersion: v1\nkind: Pod\nmetadata: {}\n", "document 2 (Pod) has no metadata.name", 13),
    ],
)
def test_required_fields_are_located(text: str, message: str, line: int) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifests("m.yaml", text)
    assert info.value.message.startswith(message)
    assert info.value.line == line


def test_generate_name_is_enough() -> None:
    objs = load_manifests("g.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n")
    assert objs[0]["metadata"] == {"generateName": "web-"}


def test_valid_nested_names_are_not_flagged() -> None:
    text = """apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: c
    image: nginx
    ports:
    - name: http
      containerPort: 80
    resources: {}
"""
    assert load_manifests("p.yaml", text)[0]["spec"]["containers"][0]["ports"][0]["name"] == "http"


def test_field_written_too_far_left() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n"
    text += "selector:\n  app: web\n"
    with pytest.raises(ManifestError) as info:
        load_manifests("svc.yaml", text)
    assert (info.value.line, info.value.column) == (7, 1)
    assert info.value.message == '"selector" is at the top level (line 7); it belongs under "spec"'
    assert 'lines up with "type" (line 6)' in str(info.value)


def test_missing_template_spec_level() -> None:
    text = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    containers:
    - name: web
      image: nginx
"""
    with pytest.raises(ManifestError) as info:
        load_manifests("dep.yaml", text)
    assert (
        info.value.message
        == '"containers" is directly under "template" (line 9); it belongs under "spec.template.spec"'
    )
    assert 'there is no "spec" under "template" yet' in str(info.value)


def test_shipped_examples_load_and_validate() -> None:
    from podnet.model.defaults import apply_defaults
    from podnet.model.validation import validate

    files = sorted(p for p in (REPO / "examples").rglob("*.y*ml") if "broken" not in p.parts)
    assert files
    for path in files:
        for obj in load_manifests(path):
            obj = apply_defaults(obj)
            if obj["kind"] not in ("Namespace", "Node"):
                obj["metadata"].setdefault("namespace", "default")
            if obj["kind"] == "Service" and obj["spec"].get("type") != "ExternalName":
                obj["spec"].setdefault("clusterIP", "10.96.0.50")
            assert validate(obj) == [], (path, [e.error() for e in validate(obj)])


def test_a_nul_byte_is_a_located_error(tmp_path: pathlib.Path) -> None:
    f = tmp_path / "nul.yaml"
    f.write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\x00b\n")
    with pytest.raises(ManifestError) as e:
        load_manifests(f)
    assert (e.value.line, e.value.column) == (4, 10)
    assert str(e.value).startswith(f"{f}:4:10: a NUL byte (U+0000) is not allowed in YAML or JSON")


def test_an_endless_file_is_refused_after_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifests, "MAX_MANIFEST_BYTES", 1024 * 1024)
    with pytest.raises(ManifestError) as e:
        load_manifests("/dev/zero")
    assert str(e.value) == ("/dev/zero: is larger than 1 MiB; a manifest file is text, and the API server "
                            "takes at most 3 MiB per object")
