"""Keep ``__all__`` honest (as encode/httpx ``tests/test_exported_members.py`` does).

Every public name a package module defines or re-exports is listed in its ``__all__``,
every listed name is importable, and the list is sorted, so a new public name cannot be
forgotten and a removed one cannot linger.
"""

from __future__ import annotations

import importlib
import types
from typing import Any

import pytest

import redis_schematics

#: standard modules whose names a module imports for itself, not to export them
HELPER_MODULES = [
    importlib.import_module(m)
    for m in ("__future__", "typing", "collections.abc", "dataclasses", "functools", "contextlib")
]

MODULES = [
    "redis_schematics",
    "redis_schematics.exceptions",
    "redis_schematics.indexes",
    "redis_schematics.layouts",
]

#: dunder names a package may export on purpose
EXPORTED_DUNDERS = {"__version__"}


def public_names(module: types.ModuleType) -> list[str]:
    """Names a user can see in ``module``: defined in the package, not submodules."""
    out = []
    for name, value in vars(module).items():
        if name.startswith("_") and name not in EXPORTED_DUNDERS:
            continue
        if isinstance(value, types.ModuleType):
            continue
        if any(getattr(helper, name, None) is value for helper in HELPER_MODULES):
            continue  # `annotations`, typing.Any, dataclass... imported for the module's own use
        out.append(name)
    return out


@pytest.mark.parametrize("name", MODULES)
def test_all_lists_every_public_member(name: str) -> None:
    module = importlib.import_module(name)
    assert sorted(public_names(module)) == sorted(module.__all__)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_sorted_without_duplicates(name: str) -> None:
    exported = importlib.import_module(name).__all__
    assert list(exported) == sorted(exported)
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_is_importable(name: str) -> None:
    module = importlib.import_module(name)
    namespace: dict[str, Any] = {}
    exec(f"from {name} import *", namespace)  # what `import *` users get
    for member in module.__all__:
        assert getattr(module, member) is not None
        if not member.startswith("_"):
            assert namespace[member] is getattr(module, member)


def test_original_public_names_are_kept() -> None:
    # names users of redis-schematics 0.2.x/0.3.x already write
    for name in [
        "BaseRedisMixin",
        "SimpleRedisMixin",
        "SimpleRedisModel",
        "HashRedisMixin",
        "HashRedisModel",
        "RedisMixinException",
        "NotFound",
        "MultipleFound",
        "StrictPerformanceException",
    ]:
        assert name in redis_schematics.__all__, name


def test_exceptions_module_names() -> None:
    from redis_schematics import exceptions

    for name in ["RedisMixinException", "NotFound", "MultipleFound", "StrictPerformanceException"]:
        assert name in exceptions.__all__
    assert exceptions.RedisMixinException is exceptions.RedisSchematicsError
    assert issubclass(exceptions.NotFound, KeyError)
    # the top-level package re-exports the very same classes
    for name in redis_schematics.__all__:
        if hasattr(exceptions, name):
            assert getattr(redis_schematics, name) is getattr(exceptions, name)


def test_index_classes_are_exported_where_the_spec_says() -> None:
    from redis_schematics.indexes import EqualityIndex, RangeIndex, UniqueIndex
    from redis_schematics.patches import patch_json

    assert redis_schematics.EqualityIndex is EqualityIndex
    assert redis_schematics.RangeIndex is RangeIndex
    assert redis_schematics.UniqueIndex is UniqueIndex
    assert redis_schematics.patch_json is patch_json


def test_version_is_a_string() -> None:
    assert isinstance(redis_schematics.__version__, str)
    assert redis_schematics.__version__
