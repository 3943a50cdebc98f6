"""Shared CLI output: Rich tables for people, `-o json` for programs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def make_console(*, stderr: bool = False) -> Console:
    """A Rich console; when the output is piped, 160 columns rather than a guessed 80, so addresses and
    pod names are never cropped or folded for the program or file that reads them."""
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=160)


console = make_console()
err_console = make_console(stderr=True)


def add_output_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("table", "json"), default="table",
                   help="table for people (default), json for programs")


def emit(args: argparse.Namespace, data: Any, columns: Sequence[str], rows: Sequence[Sequence[Any]],
         title: str | None = None) -> None:
    """Print `data` as JSON with `-o json`, else `rows` as a table with `columns`."""
    if getattr(args, "output", "table") == "json":
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    table = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)
