"""The files and tests the documentation names exist.

``docs/guarantees.md`` names, for each claim, the test that proves it
(``tests/faults/test_restart.py::test_kill9...``, then ``::test_other`` for another test
of the same file, or a bare `` `test_name` ``); other pages name modules and scripts.
A renamed or deleted test or file would leave the claim without its proof.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.docs.blocks import ROOT, pages

pytestmark = pytest.mark.fake

#: `tests/x.py`, `tests/x.py::test_y`, `::test_y`, a bare `test_y`, or a path of the
#: repository in backticks (`redis_schematics/write/commit.py`, `scripts/apply_write.lua`)
REFERENCE = re.compile(
    r"(?P<path>(?:tests|redis_schematics|benchmarks|examples)/[\w/]+\.(?:py|lua)|(?<![\w/])scripts/\w+\.lua)"
    r"(?:::(?P<test>\w+))?"
    r"|`::(?P<same_file>\w+)"
    r"|`(?P<bare>test_\w+)`"
)


@cache
def definitions(path: Path) -> frozenset[str]:
    """The names of the functions and classes defined at the top of a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    )


def every_test() -> frozenset[str]:
    return frozenset(name for path in (ROOT / "tests").rglob("test_*.py") for name in definitions(path))


def resolve(path: str) -> Path:
    return ROOT / "redis_schematics" / path if path.startswith("scripts/") else ROOT / path


@pytest.mark.parametrize("page", pages(), ids=str)
def test_named_files_and_tests_exist(page: Path) -> None:
    missing = []
    last: Path | None = None
    for n, line in enumerate((ROOT / page).read_text(encoding="utf-8").splitlines(), start=1):
        for m in REFERENCE.finditer(line):
            if m["path"]:
                last = resolve(m["path"])
                if not last.is_file():
                    missing.append(f"{page}:{n}: no file {m['path']}")
                elif m["test"] and m["test"] not in definitions(last):
                    missing.append(f"{page}:{n}: {m['path']} has no {m['test']}")
            elif m["same_file"]:
                if last is None or last.suffix != ".py":
                    missing.append(f"{page}:{n}: ::{m['same_file']} follows no test file")
                elif m["same_file"] not in definitions(last):
                    missing.append(f"{page}:{n}: {last.relative_to(ROOT)} has no {m['same_file']}")
            elif m["bare"] not in every_test():
                missing.append(f"{page}:{n}: no test {m['bare']} under tests/")
    assert not missing, "\n".join(missing)


def test_the_references_are_found() -> None:
    """Guards the pattern: guarantees.md names dozens of tests."""
    text = (ROOT / "docs" / "guarantees.md").read_text(encoding="utf-8")
    found = [m for m in REFERENCE.finditer(text) if m["test"] or m["same_file"] or m["bare"]]
    assert len(found) >= 30
