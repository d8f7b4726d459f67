"""One picture of a whole Redis database, to prove that a call wrote nothing."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


#: in the name of a delete's idempotency marker (``Prefix#once:<token>``, gone after 10 s;
#: write/commit.py: token_key): tests of "what is stored" leave them out
MARKER = "#once:"


def is_marker(key: Any) -> bool:
    """Is ``key`` (bytes or str) an idempotency marker?"""
    return MARKER in _text(key)


def key_names(client: Any) -> set[str]:
    """Every key name of the database, idempotency markers left out."""
    return {_text(k) for k in client.scan_iter(count=1000) if not is_marker(k)}


def db_state(client: Any, markers: bool = False) -> dict[str, Any]:
    """Every key of the database: (type, content, whether it expires); idempotency
    markers only with ``markers=True`` (a write that deletes leaves one for 10 s)."""
    state: dict[str, Any] = {}
    for raw in client.scan_iter(count=1000):
        if not markers and is_marker(raw):
            continue
        kind = _text(client.type(raw))
        if kind == "string":
            value: Any = _text(client.get(raw))
        elif kind == "hash":
            value = {_text(k): _text(v) for k, v in client.hgetall(raw).items()}
        elif kind == "set":
            value = sorted(_text(m) for m in client.smembers(raw))
        elif kind == "zset":
            value = {_text(m): s for m, s in client.zrange(raw, 0, -1, withscores=True)}
        else:
            value = None  # another type: its name is compared
        state[_text(raw)] = (kind, value, client.pttl(raw) >= 0)
    return state
