"""`podnet image pull|load|ls|rm|prune`: the machine's image store, shared by every cluster on it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from podnet.cli.output import add_output_flag, emit, err_console

if TYPE_CHECKING:
    from podnet.images.store import ImageStore


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _store() -> ImageStore:
    from podnet.images.store import ImageStore

    return ImageStore()


def cmd_pull(args: argparse.Namespace) -> int:
    from podnet.images.skopeo import PullError, PullOptions, pull

    opts = PullOptions(insecure_registries=args.insecure_registry or (), timeout=args.timeout)
    if args.authfile:
        import json

        try:
            opts.auths = json.loads(Path(args.authfile).read_text()).get("auths") or {}
        except (OSError, ValueError) as e:
            err_console.print(f"error: --authfile {args.authfile}: {e}")
            return 1
    with err_console.status(f"pulling {args.image}"):
        try:
            img = pull(args.image, _store(), opts)
        except PullError as e:
            err_console.print(f'error: failed to pull image "{args.image}": {e.message}')
            return 1
    print(f"{img.name} {img.digest}")
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from podnet.images.skopeo import load
    from podnet.images.store import StoreError

    with err_console.status(f"loading {args.input}"):
        try:
            imgs = load(Path(args.input), _store(), name=args.name or "")
        except StoreError as e:
            err_console.print(f"error: {e}")
            return 1
    for img in imgs:
        print(f"Loaded image: {img.name} {img.digest}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    store = _store()
    imgs = store.images() if store.layout.exists() else []
    data = [{"name": i.name, "digest": i.digest, "size": i.size, "created": i.created} for i in imgs]
    emit(args, data, ["IMAGE", "DIGEST", "SIZE", "CREATED"],
         [[i.name, i.digest[:19], _human(i.size), i.created[:19]] for i in imgs])
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from podnet.images.store import StoreError

    store = _store()
    rc = 0
    for image in args.images:
        try:
            img = store.remove(image)
            print(f"Untagged: {img.name}")
        except StoreError as e:
            err_console.print(f"error: {e}")
            rc = 1
    return rc


def cmd_prune(args: argparse.Namespace) -> int:
    store = _store()
    if not store.layout.exists():
        print("Total reclaimed space: 0 B")
        return 0
    removed, freed = store.prune(all_unused=args.all)
    for name in removed:
        print(f"Deleted: {name}")
    print(f"Total reclaimed space: {_human(freed)}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("image", help="pull, load, list and remove container images (this machine's store)",
                       description="The image store of this machine (under $PODNET_STATE_ROOT/images), "
                       "shared by every cluster: layers are stored once, by digest.")
    isub = p.add_subparsers(dest="image_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 0)[1])

    pp = isub.add_parser("pull", help="pull an image from a registry into the store",
                         description="Pull by tag or digest. localhost/127.0.0.1 registries may use plain "
                         "HTTP; credentials come from --authfile or $PODNET_STATE_ROOT/images/auth.json.")
    pp.add_argument("image", help="e.g. 127.0.0.1:5000/app:1.0, nginx:1.25, repo@sha256:...")
    pp.add_argument("--insecure-registry", action="append", metavar="HOST[:PORT]",
                    help="allow plain HTTP / unverified TLS for this registry (repeatable)")
    pp.add_argument("--authfile", help="a docker config.json with registry credentials (kept private)")
    pp.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds (120)")
    pp.set_defaults(func=cmd_pull)

    pl = isub.add_parser("load", help="load a `docker save` archive or an OCI archive/layout",
                         description="Load every image of a docker-save archive (docker save -o FILE), "
                         "an OCI archive or an OCI image layout directory into the store.")
    pl.add_argument("-i", "--input", required=True, help="archive file or OCI layout directory")
    pl.add_argument("--name", help="REPOSITORY:TAG for an image the archive leaves unnamed")
    pl.set_defaults(func=cmd_load)

    pls = isub.add_parser("ls", help="list the images in the store")
    add_output_flag(pls)
    pls.set_defaults(func=cmd_ls)

    pr = isub.add_parser("rm", help="remove images from the store (their layers go at the next prune)")
    pr.add_argument("images", nargs="+", metavar="IMAGE")
    pr.set_defaults(func=cmd_rm)

    pg = isub.add_parser("prune", help="remove unreferenced layers and unpacked filesystems",
                         description="Remove blobs and unpacked root filesystems no image references; with "
                         "--all also every image no running container uses.")
    pg.add_argument("-a", "--all", action="store_true", help="also remove images no running container uses")
    pg.set_defaults(func=cmd_prune)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(os.EX_USAGE)
