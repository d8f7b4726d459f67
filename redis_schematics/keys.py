"""The only module that builds Redis key names.

Object keys keep the format of redis-schematics 0.3.x so that old data reads as it is:

* Simple layout: a string key ``Prefix:pk`` per object;
* Hash layout: one hash ``Prefix`` whose fields are ``Prefix:pk`` (or the hash a 0.3.x
  ``__set_key__`` names, such as ``Prefix:SubKey``, with the same fields).

The Distributed layout keeps the object key: a hash ``Prefix:pk`` per object (one hash
field per model field). The DistributedHash (column) layout has no object key: one hash
``Prefix#col:field`` per model field maps each pk to that field's value.

Everything the library adds (membership, indexes, temporary keys) lives under
``Prefix#...``. ``#`` is reserved: a prefix may not contain it, so these keys can never
be an object key (those continue ``Prefix:``) nor a key of another model, even one whose
prefix starts the same way (``Mix#...`` vs ``MixTwo#...``).

Redis Cluster (see ``docs/cluster.md``): with ``tagged`` every key starts with a hash tag,
so that all keys of the model hash to one slot: ``{Prefix}`` (``__hash_tag__ = True``) or
``{group}Prefix`` (``__hash_tag__ = "group"``: several models in one slot). A shard of a
sharded model (``__shards__``) puts its spelling in the tag: ``{Prefix.7}``,
``{group.7}Prefix``. :func:`shard_spellings` chooses the spellings; they are a storage
format, pinned by tests.
"""

from __future__ import annotations

from binascii import crc_hqx
from dataclasses import dataclass, field

from redis_schematics.exceptions import ConfigurationError

#: Separates the prefix from a primary key in object keys (0.3.x format).
SEP = ":"
#: Starts every key the library adds next to the objects.
META = "#"
#: hash slots of a Redis Cluster
SLOTS = 16384
#: the most shards a model may have
MAX_SHARDS = 1024


def slot_of(key: str | bytes) -> int:
    """The Redis Cluster hash slot of ``key`` (CRC16 of its hash tag, or of the key)."""
    raw = key.encode() if isinstance(key, str) else key
    start = raw.find(b"{")
    if start >= 0:
        end = raw.find(b"}", start + 1)
        if end > start + 1:
            raw = raw[start + 1 : end]
    return crc_hqx(raw, 0) % SLOTS


def shard_spellings(tag: str, n: int) -> tuple[str, ...]:
    """The hash tag suffixes of ``n`` shards of tag ``tag``: shard ``i`` is spelled with the
    smallest integer ``j`` such that the slot of ``{tag.j}`` lies in the ``i``-th of ``n``
    equal ranges of the slot range. So the shards fall on distinct slots spread over the
    whole range: on a cluster whose nodes hold contiguous ranges of slots (what
    ``redis-cli --cluster create`` makes) they spread over the nodes, and each shard is
    one slot that resharding can move on its own. O(n) CRC16s on average."""
    found: list[str] = []
    for i in range(n):
        lo, hi = i * SLOTS // n, (i + 1) * SLOTS // n
        j = 0
        while not lo <= slot_of(f"{{{tag}.{j}}}") < hi:
            j += 1  # ends: CRC16 of "tag.j" reaches every range within ~n*10 tries
        found.append(str(j))
    return tuple(found)


def _check_name(setting: str, name: str) -> None:
    if not name:
        msg = f"{setting} must be a non-empty string"
        raise ConfigurationError(msg)
    bad = [c for c in (META, "{", "}") if c in name]
    if bad:
        msg = (
            f"{setting} {name!r} contains {bad[0]!r}; redis-schematics reserves "
            "'#' for its own keys and '{', '}' for cluster hash tags. Choose another "
            + setting.strip("_").replace("hash_tag", "group name")
            + "."
        )
        raise ConfigurationError(msg)


def escape_glob(text: str) -> str:
    """Escape ``text`` for a Redis MATCH pattern, so that it matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class KeySpace:
    """Names every key of one model."""

    prefix: str
    #: every key starts with a hash tag (one slot per key space)
    tagged: bool = False
    #: the slot group shared with other models (``__hash_tag__ = "group"``), if any
    group: str | None = None
    #: the spelling of this shard in the tag (``__shards__``), if sharded
    shard: str | None = None
    #: the name of the Hash layout's one hash when a 0.3.x ``__set_key__`` chose it
    #: (None: the prefix, ``Prefix``); never tagged, so only for untagged key spaces
    hash_key: str | None = None

    def __post_init__(self) -> None:
        _check_name("__prefix__", self.prefix)
        if self.group is not None:
            _check_name("__hash_tag__", self.group)
        if self.hash_key is not None:
            _check_name("__set_key__", self.hash_key)
            if self.tagged:
                msg = "__set_key__ cannot name the hash of a model with __hash_tag__ or __shards__"
                raise ConfigurationError(msg)
        object.__setattr__(self, "base", self._base())

    def _base(self) -> str:
        if not self.tagged:
            return self.prefix
        tag = self.group if self.group is not None else self.prefix
        if self.shard is not None:
            tag = f"{tag}.{self.shard}"
        return "{" + tag + "}" + (self.prefix if self.group is not None else "")

    #: the model's namespace as it appears at the start of every key
    base: str = field(init=False, repr=False, compare=False, default="")

    def sharded(self, spelling: str) -> KeySpace:
        """The key space of one shard of this model."""
        return KeySpace(self.prefix, True, self.group, spelling)

    def slot(self) -> int | None:
        """The hash slot of every key of a tagged key space (None: untagged)."""
        return slot_of(self.base) if self.tagged else None

    # -- objects ------------------------------------------------------------------
    def object(self, pk: str) -> str:
        """``Prefix:pk``: the string key of an object (Simple layout), its hash field (Hash
        layout) or its own hash (Distributed layout)."""
        return f"{self.base}{SEP}{pk}"

    def pk_from_object(self, key: str) -> str:
        """Inverse of :meth:`object`."""
        return key[len(self.base) + len(SEP) :]

    def model_hash(self) -> str:
        """``Prefix``: the one hash holding every object (Hash layout); the name a 0.3.x
        ``__set_key__`` gave it (``hash_key``), if any. Its fields stay ``Prefix:pk``."""
        return self.base if self.hash_key is None else self.hash_key

    def object_pattern(self) -> str:
        """A SCAN pattern matching exactly this model's ``Prefix:*`` object keys."""
        return escape_glob(self.base + SEP) + "*"

    # -- what the library adds -------------------------------------------------------
    def _meta(self, *parts: str) -> str:
        return self.base + META + SEP.join(parts)

    def members(self) -> str:
        """Set (or sorted set by deadline, for expiring models) of every stored pk."""
        return self._meta("members")

    def schema(self) -> str:
        """``Prefix#meta``: hash of what Redis holds complete for this model (the
        members set, each index), see ``redis_schematics/schema.py``."""
        return self._meta("meta")

    def equality(self, field: str, token: str | None) -> str:
        """Set of the pks whose ``field`` has the value encoded as ``token``.

        ``None`` has its own key (``...#none``), which no value token can produce.
        """
        if token is None:
            return self._meta("eq", field) + META + "none"
        return self._meta("eq", field, token)

    def equality_pattern(self, field: str) -> str:
        """A SCAN pattern for every equality key of ``field``."""
        return escape_glob(self._meta("eq", field)) + "[:#]*"

    def range(self, field: str) -> str:
        """Sorted set of pks scored by ``field``."""
        return self._meta("range", field)

    def unique(self, field: str) -> str:
        """Hash mapping each value token of ``field`` to the pk that owns it."""
        return self._meta("unique", field)

    def column(self, field: str) -> str:
        """``Prefix#col:field``: hash of pk -> value of one field (DistributedHash layout)."""
        return self._meta("col", field)

    def once(self, token: str) -> str:
        """A marker (10 s) that the write carrying ``token`` was applied: every write
        sends one (``write/commit.py``) so that redis-py resending it after a lost reply
        is not taken for a concurrent change (which would make ``delete()`` report False
        for what it deleted, or ``update()`` run the user's function twice)."""
        return self._meta("once", token)

    def probe(self) -> str:
        """``Prefix#probe``: a key that never exists; a write that deletes before it grows
        memory starts with a no-op ``SETRANGE`` of it, so that Redis checks maxmemory
        (``apply_write.lua``: PROBE)."""
        return self._meta("probe")

    def once_pattern(self) -> str:
        """A SCAN pattern for the idempotency markers."""
        return escape_glob(self._meta("once", "")) + "*"

    def meta_pattern(self) -> str:
        """A SCAN pattern for every key the library adds for this model."""
        return escape_glob(self.base + META) + "*"
