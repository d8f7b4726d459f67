"""What a write is made of: operations and guards, the vocabulary of ``apply_write.lua``.

Layouts describe how they store a payload as operations and guards; indexes describe how
they add and remove their entries the same way; the write unit of work
(``redis_schematics.write``) packs them into one script call. See the script's header for
each command and guard kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: One write operation: (command, key, args) for ``apply_write.lua``.
Op = tuple[str, str, tuple[Any, ...]]


@dataclass(frozen=True)
class Guard:
    """A condition ``apply_write.lua`` checks before writing anything.

    kind "get"/"hget": the stored payload is still ``expected`` (None = absent);
    kind "hash": the state of the object hash ``key`` is still ``expected``; or, when
    ``field`` lists hash field names (cells), just the cells of those fields;
    kind "cols": the state of a pk in the column hashes ``key`` + ``more_keys`` is still
    ``expected``; ``field`` lists the pk, then the numbers of the columns compared when
    not all of them (states and cells: see ``layouts.hash_per_object``);
    kind "uniq": HASH ``key`` field ``field`` is free or owned by ``expected``;
    kind "dead": pk ``field`` in members ZSET ``key`` is (still) past its deadline.
    """

    kind: str
    key: str
    field: str = ""
    expected: Any = None
    #: further keys the check reads (kind "cols")
    more_keys: tuple[str, ...] = ()


#: every guard kind apply_write.lua knows
GUARD_KINDS = frozenset({"get", "hget", "hash", "cols", "uniq", "dead"})
