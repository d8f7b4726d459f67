"""The only module that builds Redis key names.

Object keys keep the format of redis-schematics 0.3.x so that old data reads as it is:

* Simple layout: a string key ``Prefix:pk`` per object;
* Hash layout: one hash ``Prefix`` whose fields are ``Prefix:pk``.

The Distributed layout keeps the object key: a hash ``Prefix:pk`` per object (one hash
field per model field). The DistributedHash (column) layout has no object key: one hash
``Prefix#col:field`` per model field maps each pk to that field's value.

Everything the library adds (membership, indexes, temporary keys) lives under
``Prefix#...``. ``#`` is reserved: a prefix may not contain it, so these keys can never
be an object key (those continue ``Prefix:``) nor a key of another model, even one whose
prefix starts the same way (``Mix#...`` vs ``MixTwo#...``).

With ``hash_tag=True`` (for Redis Cluster) the prefix is written ``{Prefix}`` so that every
key of the model hashes to one slot; ``shard=n`` makes it ``{Prefix.n}`` so a model can
be spread over several slots later without touching the layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis_schematics.exceptions import ConfigurationError

#: Separates the prefix from a primary key in object keys (0.3.x format).
SEP = ":"
#: Starts every key the library adds next to the objects.
META = "#"


def escape_glob(text: str) -> str:
    """Escape ``text`` for a Redis MATCH pattern, so that it matches only itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@dataclass(frozen=True)
class KeySpace:
    """Names every key of one model."""

    prefix: str
    hash_tag: bool = False
    shard: int | None = None

    def __post_init__(self) -> None:
        if not self.prefix:
            msg = "__prefix__ must be a non-empty string"
            raise ConfigurationError(msg)
        bad = [c for c in (META, "{", "}") if c in self.prefix]
        if bad:
            msg = (
                f"__prefix__ {self.prefix!r} contains {bad[0]!r}; redis-schematics reserves "
                "'#' for its own keys and '{', '}' for cluster hash tags. Choose another prefix."
            )
            raise ConfigurationError(msg)

    @property
    def base(self) -> str:
        """The model's namespace as it appears at the start of every key."""
        name = self.prefix if self.shard is None else f"{self.prefix}.{self.shard}"
        return "{" + name + "}" if self.hash_tag else name

    # -- objects ------------------------------------------------------------------
    def object(self, pk: str) -> str:
        """``Prefix:pk``: the string key of an object (Simple layout), its hash field (Hash
        layout) or its own hash (Distributed layout)."""
        return f"{self.base}{SEP}{pk}"

    def pk_from_object(self, key: str) -> str:
        """Inverse of :meth:`object`."""
        return key[len(self.base) + len(SEP) :]

    def model_hash(self) -> str:
        """``Prefix``: the one hash holding every object (Hash layout)."""
        return self.base

    def object_pattern(self) -> str:
        """A SCAN pattern matching exactly this model's ``Prefix:*`` object keys."""
        return escape_glob(self.base + SEP) + "*"

    # -- what the library adds -------------------------------------------------------
    def _meta(self, *parts: str) -> str:
        return self.base + META + SEP.join(parts)

    def members(self) -> str:
        """Set (or sorted set by deadline, for expiring models) of every stored pk."""
        return self._meta("members")

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
        """A marker (10 s) that the write carrying ``token`` was applied: ``update()`` sends
        one so that redis-py resending the write after a lost reply is not taken for a
        concurrent change (which would run the user's function twice)."""
        return self._meta("once", token)

    def once_pattern(self) -> str:
        """A SCAN pattern for the idempotency markers."""
        return escape_glob(self._meta("once", "")) + "*"

    def meta_pattern(self) -> str:
        """A SCAN pattern for every key the library adds for this model."""
        return escape_glob(self.base + META) + "*"
