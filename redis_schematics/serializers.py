"""Model <-> stored primitive (JSON), and native value -> index token or score.

Comparison rules live here too, so that the index side and the Python side of a query
agree: naive datetimes are UTC, and every value has one canonical token.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from types import FrameType
from typing import Any

orjson: Any
try:  # optional accelerator: pip install "redis-schematics[fast]"
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None

UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)


def dumps(primitive: Any) -> str:
    """Default ``__serializer__``: compact JSON (0.3.x wrote spaced JSON; both read back)."""
    return json.dumps(primitive, separators=(",", ":"), ensure_ascii=False)


def loads(payload: bytes | str) -> Any:
    """Default ``__deserializer__``: JSON text -> data, exactly as ``json.loads`` gives it.

    With orjson installed (and ``REDIS_SCHEMATICS_JSON`` not set to ``json``) this is
    :func:`orjson_loads`, otherwise ``json.loads``. Either way the result (or the error)
    is ``json.loads``'s. Pure CPU, no Redis call.
    """
    return LOADS(payload)


#: ``bytes.translate`` table: every digit becomes "0", "[" and "{" become "[", every other
#: byte a space; one pass then answers both questions ``orjson_loads`` asks
_DIGITS_AND_OPENERS = bytes(0x30 if 0x30 <= c <= 0x39 else 0x5B if c in b"[{" else 0x20 for c in range(256))
#: 19 digits in a row: maybe an integer orjson would hold as a float (beyond 64 bits)
_LONG_DIGIT_RUN = b"0" * 19
#: before 3.12, json's C scanner counts each nesting level against the Python recursion
#: limit (with the caller's frames): it raises RecursionError at depths orjson (limit
#: 1024) still reads, ~994 at top level and less when called deep in a stack
_SHARED_RECURSION_LIMIT = sys.version_info < (3, 12)
#: below this many "[" / "{" bytes, nesting cannot matter (unless the caller is itself
#: within this many frames of the recursion limit)
_SHALLOW = 32


def orjson_loads(payload: bytes | str) -> Any:
    """``json.loads(payload)``, computed by orjson where that gives the same result.

    orjson differs from ``json`` in three ways: it turns an integer beyond 64 bits into
    a float (silently), it refuses some documents ``json`` reads (``NaN``,
    ``Infinity``, 1e400, lone surrogates, ...), and before Python 3.12 it reads nesting
    deeper than ``json`` can (``json`` raises RecursionError). A payload holding 19 or
    more digits in a row (the only way to write such an integer), one orjson refuses,
    and one whose brackets could come near the recursion limit go to ``json.loads``,
    which then gives its own result or error. ``tests/unit/test_serializers.py`` checks
    the equivalence on generated documents.
    Cost: one pass over the payload's bytes plus orjson's parse, ~1 us for the 150
    bytes that json.loads reads in ~2.7 us. Pure CPU, no Redis call.
    """
    if isinstance(payload, str | bytes):
        try:
            data = payload.encode() if isinstance(payload, str) else payload
            shape = data.translate(_DIGITS_AND_OPENERS)
            if _LONG_DIGIT_RUN not in shape and not (
                _SHARED_RECURSION_LIMIT and _maybe_too_deep(shape.count(b"["))
            ):
                return orjson.loads(payload)
        except (UnicodeEncodeError, orjson.JSONDecodeError):
            pass
    return json.loads(payload)


def _maybe_too_deep(opens: int) -> bool:
    """Might ``json.loads`` run out of recursion on a document with ``opens`` "[" / "{"
    bytes, called here? (Conservative: every bracket, even inside a string, counts as a
    level; True only means "ask json".)"""
    if opens < _SHALLOW:
        return False
    depth = 0
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        depth += 1
        frame = frame.f_back
    return opens + depth + _SHALLOW >= sys.getrecursionlimit()


def _pick_loads() -> Callable[[bytes | str], Any]:
    if orjson is None or os.environ.get("REDIS_SCHEMATICS_JSON", "").lower() == "json":
        return json.loads
    return orjson_loads


#: what :func:`loads` calls, chosen once at import
LOADS = _pick_loads()


def lone_surrogate(value: str) -> int | None:
    """Where ``value`` holds a lone surrogate (U+D800-U+DFFF, which has no UTF-8 form and
    so cannot be sent to Redis), or None when it has none. Pure CPU: ``isascii`` first."""
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def normalize(value: Any) -> Any:
    """The value used for comparisons: datetimes become aware UTC; everything else as is."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


def token(value: Any) -> str:
    """Canonical text of a native value, used in equality and unique index keys.

    Equal values (after :func:`normalize`) give equal tokens; different values of one
    field type give different tokens.
    """
    value = normalize(value)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value + 0.0)  # -0.0 and 0.0 are equal values: one token
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date | uuid.UUID):
        return str(value)
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def _micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def score(value: Any) -> float:
    """Sorted-set score of a native value: monotone (a <= b implies score(a) <= score(b)).

    Datetimes are microseconds since the epoch in UTC (exact for years 1685-2255),
    dates are days since the epoch. Values a double cannot hold exactly round to the
    nearest double, which keeps the order; queries re-check candidates with exact values.
    """
    value = normalize(value)
    if isinstance(value, dt.datetime):
        return float(_micros(value))
    if isinstance(value, dt.date):
        return float((value - _EPOCH_DATE).days)
    try:
        result = float(value)
    except OverflowError:
        result = math.inf if value > 0 else -math.inf
    return result


def score_is_exact(value: Any) -> bool:
    """True when no other value of its type has the same :func:`score` as ``value``.

    Only then may an index treat "score == score(value)" as "value == value" (and a
    strict bound as strict): an int beyond 2**53 rounds onto its neighbours, and so does
    2**53 itself (2**53 + 1 rounds down to it); any Decimal shares its double with
    Decimals that differ in a far digit.
    """
    value = normalize(value)
    if isinstance(value, dt.datetime):
        return abs(_micros(value)) < 2**53
    if isinstance(value, dt.date):
        return True
    if isinstance(value, float):
        return not math.isnan(value)
    if isinstance(value, int):
        return abs(value) < 2**53
    return False


def format_score(value: float) -> str:
    """A score as Redis reads it in ZRANGE/ZCOUNT bounds."""
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return repr(value)
