"""One picture of a whole Redis database, to prove that a call wrote nothing."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> Any:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def db_state(client: Any) -> dict[str, Any]:
    """Every key of the database: (type, content, whether it expires)."""
    state: dict[str, Any] = {}
    for raw in client.scan_iter(count=1000):
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
