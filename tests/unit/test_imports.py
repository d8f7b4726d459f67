"""Imports flow one way, and no module reaches into another's private names.

Every ``import`` of the package is read with ``ast`` (also those inside functions and
under ``TYPE_CHECKING``, where a cycle would otherwise hide) and checked against the
layers below: a module may import its own layer and the layers under it, never one
above. Nothing imports a ``_private`` name of another module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "redis_schematics"

#: bottom to top; a module's layer is that of its longest listed prefix
LAYERS: list[tuple[str, ...]] = [
    # vocabulary and pure helpers: no model, no Redis
    ("exceptions", "util", "keys", "serializers", "hydration", "validation", "lookups", "ops", "io"),
    # how one field value / one payload sits in Redis
    ("indexes", "layouts"),
    # one model's settings and records (instances <-> payloads), no I/O
    ("settings", "records", "schema"),
    # the write unit of work
    ("write",),
    # the engine (reads, expiry) behind every model method
    ("engine",),
    # sharded models: the engine of each shard behind one routing engine
    ("sharding",),
    # planning, executing queries, upkeep
    ("planner", "execute", "upkeep"),
    ("query",),
    ("operations", "transaction"),
    # the public API
    ("asyncapi", "models", "patches"),
    # operations tools: the admin functions, the command line over them
    ("admin",),
    ("cli",),
    ("__init__", "__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def layer_of(name: str) -> int:
    for level, names in enumerate(LAYERS):
        if name.split(".")[0] in names:
            return level
    msg = f"redis_schematics.{name} is in no layer of tests/unit/test_imports.py: add it"
    raise AssertionError(msg)


def imports(path: Path, here: str | None = None) -> list[tuple[str, list[str], int]]:
    """(imported module relative to the package, names taken from it, line) of the
    module ``here`` (default: the module at ``path``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path) if here is None else here
    package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("redis_schematics."):
                    found.append((alias.name.removeprefix("redis_schematics."), [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and (
                node.module == "redis_schematics" or node.module.startswith("redis_schematics.")
            ):
                target = node.module.removeprefix("redis_schematics").removeprefix(".")
            else:
                continue
            names = [a.name for a in node.names]
            if not target:  # from redis_schematics import x: x is a module or a public name
                for name in names:
                    found.append((name, [], node.lineno))
                continue
            found.append((target, names, node.lineno))
    return found


def upward(path: Path, here: str) -> list[str]:
    """The imports of ``here`` (at ``path``) from a higher layer."""
    mine = layer_of(here if here else "__init__")
    return [
        f"line {line}: imports redis_schematics.{target} (layer {layer_of(target)} > {mine})"
        for target, _names, line in imports(path, here)
        if layer_of(target) > mine
    ]


def private(path: Path, here: str) -> list[str]:
    """The ``_private`` names ``here`` (at ``path``) imports from other modules."""
    return [
        f"line {line}: from redis_schematics.{target} import {name}"
        for target, names, line in imports(path, here)
        if target != here
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p) or "__init__")
def test_imports_go_down_the_layers(path: Path) -> None:
    wrong = upward(path, module_name(path))
    assert not wrong, f"redis_schematics.{module_name(path)} imports a higher layer:\n" + "\n".join(wrong)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p) or "__init__")
def test_no_private_names_of_other_modules(path: Path) -> None:
    wrong = private(path, module_name(path))
    assert not wrong, f"redis_schematics.{module_name(path)} imports private names:\n" + "\n".join(wrong)


def test_the_checks_see_violations(tmp_path: Path) -> None:
    """A layout importing the write package and the query module (also lazily, in a
    function, relatively) and
    a private name of the write package is reported; its legal imports are not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from redis_schematics.keys import KeySpace\n"
        "from redis_schematics.write.batch import _MERGEABLE\n"
        "def later():\n"
        "    from ..query import Query\n"
        "    import redis_schematics.engine\n"
    )
    assert [w.split(":")[0] for w in upward(bad, "layouts.bad")] == ["line 2", "line 4", "line 5"]
    assert private(bad, "layouts.bad") == ["line 2: from redis_schematics.write.batch import _MERGEABLE"]
