"""`podnet apply -f FILE|DIR [...]`: kubectl apply, with podnet's located manifest errors first.

Before anything is sent, every manifest is read with `podnet.model.manifests.load_manifests`
(a YAML mistake or a field under the wrong parent is shown with file, line, column, the line
itself and a hint) and every object is defaulted and validated as the API server would
(`The Service "x" is invalid: ...`). Only when all of them pass does the installed kubectl
apply them to the cluster. Reading and validating needs no cluster.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
from pathlib import Path

from podnet.cli.common import add_name_flag, kubeconfig_path, load_config
from podnet.cli.main import CLIError
from podnet.model import fieldcheck, kinds
from podnet.model.defaults import apply_defaults
from podnet.model.errors import FieldError
from podnet.model.kinds import Obj
from podnet.model.manifest_text import snippet
from podnet.model.manifests import ManifestError, load_manifests, read_manifest_text
from podnet.model.validation import validate

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

DESCRIPTION = """\
kubectl apply, with podnet's located errors first.

Every manifest given with -f is read and checked on this machine before anything is
sent: YAML mistakes, fields indented under the wrong parent (a Service `selector:`
under `ports:`) and fields the kind does not have are reported with file, line and
column, the offending line and a hint; each object is then validated as the API server
would (`The Service "x" is invalid: ...`). Unknown fields follow kubectl's --validate:
errors by default (strict), warnings with --validate=warn, nothing with --validate=false.
If any check fails nothing is applied and the exit status is 1. Otherwise the installed
kubectl runs `kubectl apply -f ...` against the cluster, with any further arguments
passed through (e.g. --server-side, --dry-run=server, -n NAMESPACE, --prune -l app=x).
A directory given to -f applies its *.yaml, *.yml and *.json files (-R: recursively)."""


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "apply",
        help="kubectl apply, after checking the manifests locally (located errors)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        usage="podnet apply [--name CLUSTER] -f FILE|DIR [-f ...] [-R] [kubectl apply flags ...]",
    )
    p.__class__ = _PassThroughParser  # keeps the flags it does not know, for kubectl
    add_name_flag(p)
    p.add_argument("-f", "--filename", action="append", required=True, metavar="FILE|DIR",
                   help="manifest file or directory (repeatable)")
    p.add_argument("-R", "--recursive", action="store_true", help="look for manifests in subdirectories too")
    p.set_defaults(func=run, kubectl_args=[])


class _PassThroughParser(argparse.ArgumentParser):
    """A sub-command parser that hands the arguments it does not know to kubectl (in order)
    instead of failing with `unrecognized arguments`."""

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        ns.kubectl_args = [*getattr(ns, "kubectl_args", []), *extras]
        return ns, []


def manifest_files(paths: list[str], recursive: bool = False) -> list[Path]:
    """The files `-f` names: files as given, directories expanded (sorted), as kubectl does."""
    out: list[Path] = []
    for raw in paths:
        if raw == "-":
            raise CLIError("podnet apply reads manifests from files; `-f -` (stdin) is not supported")
        p = Path(raw)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
            if not found:
                raise CLIError(f'error reading "{raw}": no manifest files (*.yaml, *.yml, *.json) in it')
            out.extend(found)
        else:
            out.append(p)  # a missing file is reported by load_manifests, located
    return out


def namespace_flag(kubectl_args: list[str]) -> str:
    """The namespace kubectl will use for objects without one (-n / --namespace), else `default`."""
    for i, a in enumerate(kubectl_args):
        if a in ("-n", "--namespace") and i + 1 < len(kubectl_args):
            return kubectl_args[i + 1]
        for prefix in ("--namespace=", "-n="):
            if a.startswith(prefix):
                return a[len(prefix):]
        if a.startswith("-n") and len(a) > 2 and not a.startswith("--"):
            return a[2:]
    return "default"


def invalid_message(obj: Obj, errs: list[FieldError]) -> str:
    """What kubectl prints for a 422 Invalid: one cause inline, several as a `*` list."""
    rt = kinds.for_object(obj)
    kind = rt.kind if rt is not None else str(obj.get("kind"))
    raw_meta = obj.get("metadata")
    meta: dict[str, object] = raw_meta if isinstance(raw_meta, dict) else {}
    name = str(meta.get("name") or meta.get("generateName") or "")
    lines: list[str] = []
    for e in errs:
        text = e.error()
        if text not in lines:
            lines.append(text)
    head = f'The {kind} "{name}" is invalid:'
    if len(lines) == 1:
        return f"{head} {lines[0]}"
    return head + " \n" + "\n".join(f"* {t}" for t in lines)


def check_object(obj: Obj, namespace: str) -> list[FieldError]:
    """Default and validate a copy of `obj` as the API server would on create."""
    rt = kinds.for_object(obj)
    if rt is None:
        return []  # a kind podnet does not serve: kubectl reports it
    work = copy.deepcopy(obj)
    meta = work.setdefault("metadata", {})
    if rt.namespaced and not meta.get("namespace"):
        meta["namespace"] = namespace
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = f"{meta['generateName']}x"  # stands in for the server's random suffix
    apply_defaults(work)
    return validate(work)


def validate_mode(kubectl_args: list[str]) -> str:
    """kubectl's `--validate`: strict (the default, also `true`), warn, or ignore (`false`)."""
    mode = "strict"
    for a in kubectl_args:
        if a == "--validate":
            mode = "strict"
        elif a.startswith("--validate="):
            mode = a.split("=", 1)[1].lower()
    return {"true": "strict", "false": "ignore"}.get(mode, mode)


def unknown_field_report(path: Path, text: str, obj: Obj, field: str) -> str:
    """A located report of one field the kind does not have."""
    kind = str(obj.get("kind"))
    name = str((obj.get("metadata") or {}).get("name") or "")
    pos = fieldcheck.field_position(text, obj, field)
    where = f"{path}:{pos[0]}:{pos[1]}" if pos else str(path)
    out = (f'{where}: {fieldcheck.unknown_field_message(field)} in {kind} "{name}": '
           f"a {kind} has no such field there")
    if pos:
        out += "\n" + snippet(text.splitlines(), pos[0], pos[1])
    return out + ("\nhint: check its spelling and indentation; Kubernetes refuses the object with "
                  "kubectl's default --validate=strict, and drops the field with --validate=warn or =false.")


def check_manifests(files: list[Path], namespace: str,
                    mode: str = "strict") -> tuple[int, list[str], list[str]]:
    """(objects checked, errors, warnings): every file is read, every object validated."""
    problems: list[str] = []
    warnings: list[str] = []
    count = 0
    for f in files:
        try:
            objs = load_manifests(f)
        except ManifestError as e:
            problems.append(str(e))
            continue
        text = read_manifest_text(f)
        for obj in objs:
            count += 1
            for field in fieldcheck.unknown_fields(obj):
                report = unknown_field_report(f, text, obj, field)
                if mode == "strict":
                    problems.append(report)
                elif mode == "warn":
                    warnings.append(report)
            errs = check_object(obj, namespace)
            if errs:
                problems.append(f"{f}: {invalid_message(obj, errs)}")
    return count, problems, warnings


def run(args: argparse.Namespace) -> int:
    kargs = list(args.kubectl_args)
    if kargs and kargs[0] == "--":
        kargs = kargs[1:]
    files = manifest_files(list(args.filename), bool(args.recursive))
    count, problems, warnings = check_manifests(files, namespace_flag(kargs), validate_mode(kargs))
    for text in warnings:
        print(f"warning: {text}", file=sys.stderr)
    if problems:
        for text in problems:
            print(text, file=sys.stderr)
        print(f"error: nothing applied: {len(problems)} problem(s) in the manifests above", file=sys.stderr)
        return 1
    if count == 0:
        raise CLIError("no objects passed to apply")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CLIError("kubectl is not installed; install it to apply manifests")
    env = dict(os.environ)
    if not any(a == "--kubeconfig" or a.startswith("--kubeconfig=") for a in kargs):
        env["KUBECONFIG"] = kubeconfig_path(load_config(args.name))
    cmd = [kubectl, "apply"]
    for f in files:
        cmd += ["-f", str(f)]
    sys.stdout.flush()
    os.execve(kubectl, [*cmd, *kargs], env)
    return 0  # not reached
