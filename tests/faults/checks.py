"""Independent checks of what a model left in Redis, shared by the fault tests.

These rebuild, from the stored objects alone, every key the library should hold for
them, and read those keys with plain commands, using the key formats pinned in
tests/unit/test_keys.py (``Prefix:pk``; ``Prefix#members``, ``Prefix#eq:field:token``,
``Prefix#eq:field#none``, ``Prefix#range:field``, ``Prefix#unique:field``). They do not
call the library's own ``check_indexes``, so the two checks can catch each other out.
"""

from __future__ import annotations

import json
from typing import Any

from redis_schematics.indexes import EqualityIndex, RangeIndex, UniqueIndex
from redis_schematics.serializers import score, token
from tests.engine import layout_read, run


def text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def canonical(data: dict[str, Any] | None) -> str | None:
    """One string per object state (None = absent); None-valued fields left out."""
    if data is None:
        return None
    return json.dumps({k: v for k, v in data.items() if v is not None}, sort_keys=True)


def stored_objects(model: Any) -> dict[str, dict[str, Any]]:
    """pk -> stored primitive dict of every object physically stored.

    Found without the members set (the layout's SCAN/HSCAN of object keys) and decoded
    with the layout's codec: what is checked here is the bookkeeping around payloads
    (members, indexes), not the payload format.
    """
    store = model._engine()
    client = store.settings.sync_client()
    pks = sorted(set(run(model, store.layout.stored_pks(1000))))
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(pks), 500):
        chunk = pks[start : start + 500]
        for pk, payload in zip(chunk, layout_read(model, client, chunk), strict=True):
            if payload is not None:
                out[pk] = store.layout.decode(payload)
    return out


def expected_meta(model: Any, objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every ``Prefix#...`` index key (with its content) the library should hold for ``objects``.

    Key names are spelled out here literally; values go through the field type and the
    library's token/score functions (how a value is written is not what is checked).
    """
    store = model._engine()
    prefix = store.keys.prefix
    wanted: dict[str, Any] = {}
    if objects:
        wanted[f"{prefix}#members"] = ("set", sorted(objects))
        # what Redis holds complete (schema.py): everything, for a model written from empty
        complete = [("members", "1"), ("v", "1"), *((f"index:{i.describe()}", "1") for i in store.indexes)]
        wanted[f"{prefix}#meta"] = ("hash", sorted(complete))
    eq: dict[str, list[str]] = {}
    ranged: dict[str, list[tuple[str, float]]] = {}
    unique: dict[str, list[tuple[str, str]]] = {}
    for pk, data in objects.items():
        for index in store.indexes:
            name = index.field
            raw = data.get(store.settings.primitive_names[name])
            value = None if raw is None else store.fields[name].to_native(raw)
            if isinstance(index, EqualityIndex):
                key = f"{prefix}#eq:{name}#none" if value is None else f"{prefix}#eq:{name}:{token(value)}"
                eq.setdefault(key, []).append(pk)
            elif isinstance(index, RangeIndex) and value is not None:
                ranged.setdefault(f"{prefix}#range:{name}", []).append((pk, score(value)))
            elif isinstance(index, UniqueIndex) and value is not None:
                unique.setdefault(f"{prefix}#unique:{name}", []).append((token(value), pk))
    wanted.update({key: ("set", sorted(pks)) for key, pks in eq.items()})
    wanted.update({key: ("zset", sorted(pairs)) for key, pairs in ranged.items()})
    wanted.update({key: ("hash", sorted(pairs)) for key, pairs in unique.items()})
    return wanted


def actual_meta(client: Any, prefix: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every ``Prefix#...`` key in Redis but ``skip``, with its content (as expected_meta)."""
    keys: dict[str, Any] = {}
    for raw in client.scan_iter(match=f"{prefix}#*", count=1000):
        key = text(raw)
        if key in skip or key.startswith(f"{prefix}#once:"):
            continue  # update()'s idempotency markers (10 s), not index data
        kind = text(client.type(raw))
        if kind == "set":
            keys[key] = ("set", sorted(text(m) for m in client.smembers(raw)))
        elif kind == "zset":
            pairs = client.zrange(raw, 0, -1, withscores=True)
            keys[key] = ("zset", sorted((text(m), float(s)) for m, s in pairs))
        elif kind == "hash":
            keys[key] = ("hash", sorted((text(k), text(v)) for k, v in client.hgetall(raw).items()))
        else:
            keys[key] = (kind, None)
    return keys


def index_differences(model: Any) -> list[str]:
    """Differences between the index keys in Redis and those the stored objects imply."""
    store = model._engine()
    prefix = store.keys.prefix
    objects = stored_objects(model)
    want = expected_meta(model, objects)
    layout_keys = store.layout.meta_keys()
    have = actual_meta(store.settings.sync_client(), prefix, skip=layout_keys)
    out = []
    for key in sorted(set(want) | set(have)):
        if want.get(key) != have.get(key):
            out.append(f"{key}: expected {want.get(key)!r}, found {have.get(key)!r}")
    return out
