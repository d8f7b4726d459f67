"""Index kinds plug in through hooks; a kind or operation nobody declared is a loud error."""

from __future__ import annotations

from typing import ClassVar

import pytest

from redis_schematics.indexes import (
    BaseIndex,
    Entry,
    EqualityIndex,
    RangeIndex,
    UniqueIndex,
    kind_of_atom,
    kind_of_entry,
)
from redis_schematics.ops import Guard
from redis_schematics.write import Batch, diff

KINDS = (EqualityIndex, RangeIndex, UniqueIndex)
#: hooks every kind must implement itself (the others have a meaningful default)
REQUIRED = (
    "entries",
    "step",
    "add",
    "remove",
    "stored_entries",
    "owns",
    "orphans",
    "count_command",
)


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_every_kind_implements_every_hook(kind: type[BaseIndex]) -> None:
    inherited = [name for name in REQUIRED if getattr(kind, name) is getattr(BaseIndex, name)]
    assert inherited == []
    assert kind_of_entry(kind.entry_kind) is kind
    assert kind_of_atom(kind.atom_kind) is kind


def test_an_unknown_entry_kind_is_a_lookup_error_not_a_default() -> None:
    with pytest.raises(LookupError, match="no index kind writes entries of kind 'bitmap'"):
        diff(frozenset(), frozenset({Entry("bitmap", "k", "pk")}))
    with pytest.raises(LookupError, match="no index kind answers atoms of kind 'B'"):
        kind_of_atom("B")


def test_the_write_script_contract_refuses_unknown_operations_and_guards() -> None:
    batch = Batch()
    with pytest.raises(ValueError, match="no operation 'SETBIT'"):
        batch.op(("SETBIT", "k", (1, 1)))
    with pytest.raises(ValueError, match="no guard kind 'bits'"):
        batch.guard(object(), Guard("bits", "k"))  # type: ignore[arg-type]
    assert batch.keys == []


def test_a_kind_that_forgets_a_hook_fails_loudly() -> None:
    class Halfway(BaseIndex):
        kind: ClassVar[str] = "halfway"
        entry_kind: ClassVar[str] = "halfway"

    with pytest.raises(NotImplementedError):
        Halfway.add(Entry("halfway", "k", "pk"))
    assert kind_of_entry("halfway") is Halfway


def test_two_kinds_cannot_claim_one_entry_kind() -> None:
    with pytest.raises(TypeError, match="'set' is already EqualityIndex's"):

        class Copycat(BaseIndex):
            entry_kind: ClassVar[str] = "set"
