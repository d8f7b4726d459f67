"""The model methods that combine several engine steps, each written once as a flow.

``models.py`` (sync) and ``asyncapi.py`` (async twins) both call these and differ only in
how they run the flow: ``engine.sync().run(flow)`` or ``await engine.aio().run(flow)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schematics.models import Model

from redis_schematics import execute
from redis_schematics.engine import Engine
from redis_schematics.exceptions import MultipleFound, NotFound
from redis_schematics.io import Flow
from redis_schematics.lookups import Exact, parse_filters
from redis_schematics.query import Query
from redis_schematics.records import LOADED


def describe(model: str, method: str, kwargs: dict[str, Any]) -> str:
    """``Model.method(k=v, ...)`` for messages."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{model}.{method}({args})"


def match_for_pk(engine: Engine, pk: Any, only: Iterable[str] | None = None) -> Flow[Any]:
    """The object stored under ``pk`` (see ``BaseRedisMixin.match_for_pk``)."""
    records = engine.records
    key = records.check_pk(pk)
    projection = None if only is None else records.projection(only, method="match_for_pk(only=...)")
    rows = yield from engine.load([key], projection)
    if not rows:
        msg = f"{engine.name}: no object with pk {key!r} ({engine.object_key(key)!r})."
        raise NotFound(msg)
    return rows[0][2]


def match_for_pks(engine: Engine, pks: Iterable[Any], only: Iterable[str] | None = None) -> Flow[list[Any]]:
    """Objects by pk, aligned with ``pks``, None where nothing is stored."""
    records = engine.records
    keys = [records.check_pk(pk) for pk in pks]
    projection = None if only is None else records.projection(only, method="match_for_pks(only=...)")
    found = {pk: obj for pk, _payload, obj in (yield from engine.load(keys, projection))}
    return [found.get(pk) for pk in keys]


def match_for_values(engine: Engine, kwargs: dict[str, Any]) -> Flow[Any]:
    """The one object matching the filters (at most two are loaded)."""
    rows = yield from execute.objects(Query(engine).filter(**kwargs).limit(2))
    if not rows:
        msg = f"{describe(engine.name, 'match', kwargs)} found nothing."
        raise NotFound(msg)
    if len(rows) > 1:
        msg = (
            f"{describe(engine.name, 'match', kwargs)} found more than one object; "
            f"use {engine.name}.filter(...) to get all of them."
        )
        raise MultipleFound(msg)
    return rows[0]


def match(engine: Engine, kwargs: dict[str, Any]) -> Flow[Any]:
    """By pk when the equality filters determine it (then the others are checked on the
    object), else :func:`match_for_values`."""
    conditions = parse_filters(engine.name, engine.fields, kwargs)
    eq = {c.field: c.value for c in conditions if c.lookup is Exact}
    pk = engine.records.pk_from_conditions(eq)
    if pk is None:
        return (yield from match_for_values(engine, kwargs))
    try:
        obj = yield from match_for_pk(engine, pk)
    except NotFound:
        obj = None
    if obj is None or not all(c.test(obj) for c in conditions):
        msg = f"{describe(engine.name, 'match', kwargs)} found nothing."
        raise NotFound(msg)
    return obj


def refresh(engine: Engine, obj: Any) -> Flow[Any]:
    """Reload ``obj``'s fields in place (whole again after an ``only=`` read)."""
    fresh = yield from match_for_pk(engine, engine.records.pk_of_stored(obj))
    obj.import_data(fresh.to_primitive())
    obj.__dict__.pop(LOADED, None)
    return obj


def delete_many(engine: Engine, objs_or_pks: Iterable[Any], pipeline: Any = None) -> Flow[int]:
    """Delete objects given as instances or pks; how many were stored."""
    records = engine.records
    pks = [records.pk_of_stored(x) if isinstance(x, Model) else records.check_pk(x) for x in objs_or_pks]
    return (yield from engine.writes.delete_pks(pks, pipeline))
