"""Serializers: index tokens, sorted-set scores and the default JSON (no Redis)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from redis_schematics import serializers
from redis_schematics.serializers import (
    dumps,
    format_score,
    loads,
    normalize,
    orjson_loads,
    score,
    score_is_exact,
    token,
)

UTC = dt.timezone.utc
PLUS2 = dt.timezone(dt.timedelta(hours=2))
MINUS5 = dt.timezone(dt.timedelta(hours=-5))

# -- normalize ---------------------------------------------------------------------------------


def test_normalize_naive_datetime_is_utc() -> None:
    assert normalize(dt.datetime(2026, 1, 1, 12)) == dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert normalize(dt.datetime(2026, 1, 1, 12)).tzinfo is UTC


def test_normalize_aware_datetime_moves_to_utc() -> None:
    value = normalize(dt.datetime(2026, 1, 1, 14, tzinfo=PLUS2))
    assert value.tzinfo is UTC
    assert value.hour == 12


@pytest.mark.parametrize("value", [None, 1, 1.5, "x", Decimal("1.5"), dt.date(2026, 1, 1), True])
def test_normalize_leaves_other_values(value: Any) -> None:
    assert normalize(value) is value


# -- tokens --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("vanilla", "vanilla"),
        ("", ""),
        ("a:b#c", "a:b#c"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (42, "42"),
        (-7, "-7"),
        (2**70, "1180591620717411303424"),
        (1.5, "1.5"),
        (-0.0, "0.0"),
        (0.0, "0.0"),
        (Decimal("1.50"), "1.5"),
        (Decimal("100"), "100"),
        (Decimal("1E+2"), "100"),
        (Decimal("-0.000"), "-0"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (dt.datetime(2026, 1, 1, 12), "2026-01-01T12:00:00.000000+00:00"),
        (dt.datetime(2026, 1, 1, 14, tzinfo=PLUS2), "2026-01-01T12:00:00.000000+00:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    ],
)
def test_token_literals(value: Any, expected: str) -> None:
    assert token(value) == expected


def test_equal_values_have_one_token() -> None:
    assert token(-0.0) == token(0.0)
    assert token(Decimal("1.5")) == token(Decimal("1.50")) == token(Decimal("15E-1"))
    naive = dt.datetime(2026, 1, 1, 12)
    assert (
        token(naive) == token(naive.replace(tzinfo=UTC)) == token(dt.datetime(2026, 1, 1, 7, tzinfo=MINUS5))
    )


def test_different_values_have_different_tokens() -> None:
    values: list[Any] = [0, 1, -1, 10, 2**53, 2**53 + 1, 2**64]
    assert len({token(v) for v in values}) == len(values)
    floats = [0.1, 0.2, 0.30000000000000004, 0.3, 1e300, -1e-300]
    assert len({token(v) for v in floats}) == len(floats)
    times = [dt.datetime(2026, 1, 1, 0, 0, 0, us) for us in (0, 1, 999999)]
    assert len({token(v) for v in times}) == 3


def test_token_of_other_values_is_canonical_json() -> None:
    assert token({"b": 1, "a": [1, 2]}) == '{"a":[1,2],"b":1}'


# -- scores ---------------------------------------------------------------------------------------


def test_score_literals() -> None:
    assert score(0) == 0.0
    assert score(-3) == -3.0
    assert score(2.5) == 2.5
    assert score(Decimal("1.25")) == 1.25
    assert score(True) == 1.0
    assert score(dt.date(1970, 1, 1)) == 0.0
    assert score(dt.date(2026, 1, 1)) == 20454.0
    assert score(dt.datetime(1970, 1, 1)) == 0.0
    assert score(dt.datetime(1970, 1, 1, 0, 0, 1)) == 1_000_000.0
    assert score(dt.datetime(2026, 1, 1)) == 1767225600000000.0
    assert score(dt.datetime(2026, 1, 1, 2, tzinfo=PLUS2)) == 1767225600000000.0
    assert score(dt.datetime(1969, 12, 31, 23, 59, 59, 999999)) == -1.0


def ascending(values: list[Any]) -> None:
    scores = [score(v) for v in values]
    for (a, sa), (b, sb) in itertools.pairwise(zip(values, scores, strict=True)):
        assert a <= b, "test data must be sorted"
        assert sa <= sb, f"score({a!r}) = {sa!r} > score({b!r}) = {sb!r}"
        if a < b and score_is_exact(a) and score_is_exact(b):
            assert sa < sb


def test_score_is_monotone_for_ints_around_2_53() -> None:
    base = 2**53
    ints = [-(2**64), -base - 2, -base - 1, -base, -1, 0, 1, base - 1, base, base + 1, base + 2, base + 3]
    ints += [2**63 - 1, 2**63, 2**64, 10**30]
    ascending(sorted(ints))


def test_score_is_monotone_for_big_decimals_and_huge_ints() -> None:
    values: list[Any] = [
        -(10**400),
        Decimal("-1e400"),
        Decimal("-1e300"),
        Decimal("-0.1"),
        Decimal("0"),
        Decimal("0.1"),
        Decimal("0.10000000000000000001"),
        Decimal("9007199254740993"),
        Decimal("1e300"),
        Decimal("1e400"),
        10**400,
        Decimal("1e500"),
    ]
    ascending(sorted(values))
    assert score(10**400) == math.inf
    assert score(-(10**400)) == -math.inf
    assert score(Decimal("1e400")) == math.inf


def test_score_is_monotone_for_datetimes() -> None:
    times = sorted(
        normalize(t)
        for t in [
            dt.datetime(1, 1, 1),
            dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
            dt.datetime(1970, 1, 1),
            dt.datetime(2026, 1, 1, 11, 59, 59, 999999),
            dt.datetime(2026, 1, 1, 14, tzinfo=PLUS2),
            dt.datetime(2026, 1, 1, 12, 0, 0, 1),
            dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        ]
    )
    ascending(times)


def test_score_is_exact() -> None:
    # "exact": no other value of the same type has the same score
    assert score_is_exact(0)
    assert score_is_exact(2**53 - 1)
    assert score_is_exact(-(2**53) + 1)
    assert not score_is_exact(2**53)  # 2**53 + 1 rounds down onto it
    assert not score_is_exact(2**53 + 1)
    assert not score_is_exact(2**53 + 2)
    assert not score_is_exact(-(2**53))
    assert not score_is_exact(10**400)
    assert score_is_exact(1.5)
    assert score_is_exact(math.inf)
    assert not score_is_exact(math.nan)
    # any Decimal shares its double with Decimals differing in a far digit
    assert not score_is_exact(Decimal("0.5"))
    assert not score_is_exact(Decimal("0.1"))
    assert not score_is_exact(Decimal("1e400"))
    assert score_is_exact(dt.date(2026, 1, 1))
    assert score_is_exact(dt.datetime(2026, 1, 1, 12, 0, 0, 1))
    # microseconds since 1970 go past 2**53 around the year 2255
    assert not score_is_exact(dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
    assert score_is_exact(dt.datetime(2255, 1, 1))


@pytest.mark.parametrize("v", [0, 1, -5, 2**52, 2**53 - 2, 2**53 - 1, 2**53, 2**53 + 1, 2**60, -(2**53)])
def test_exact_int_score_is_shared_by_no_neighbour(v: int) -> None:
    alone = score(v - 1) < score(v) < score(v + 1)
    assert score_is_exact(v) is alone


def test_inexact_decimal_really_shares_its_score() -> None:
    a, b = Decimal("0.5"), Decimal("0.50000000000000000001")
    assert a != b
    assert score(a) == score(b)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.0, "1.0"), (-2.5, "-2.5"), (math.inf, "+inf"), (-math.inf, "-inf"), (2.0**53, "9007199254740992.0")],
)
def test_format_score(value: float, expected: str) -> None:
    assert format_score(value) == expected


def test_format_score_round_trips() -> None:
    for v in [0.1, 1 / 3, 1e-300, 1767225600000000.0, 2.0**60]:
        assert float(format_score(v)) == v


# -- JSON ------------------------------------------------------------------------------------------


def test_dumps_is_compact_and_unicode() -> None:
    assert dumps({"a": 1, "b": [1, 2], "c": "ç"}) == '{"a":1,"b":[1,2],"c":"ç"}'


def test_loads_reads_both_compact_and_0_3_x_spaced_json() -> None:
    data = {"id": "1", "n": 2, "tags": ["a"], "none": None}
    assert loads(dumps(data)) == data
    assert loads(json.dumps(data)) == data  # what 0.3.x wrote
    assert loads(json.dumps(data).encode()) == data  # bytes replies


# -- orjson_loads: json.loads's result, faster ----------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, floats bit for bit (-0.0, nan), dict keys in order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return repr(a) == repr(b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def outcome(fn: Any, payload: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(payload)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return type(exc).__name__, str(exc)


def assert_same_as_json(payload: bytes | str) -> None:
    ours, theirs = outcome(orjson_loads, payload), outcome(json.loads, payload)
    assert ours[0] == theirs[0], (payload, ours, theirs)
    if ours[0] == "ok":
        assert same(ours[1], theirs[1]), (payload, ours, theirs)
    else:
        assert ours == theirs


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@given(json_values, st.booleans(), st.booleans())
def test_orjson_loads_reads_every_document_as_json_loads_does(
    value: Any, ascii_only: bool, compact: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, separators=(",", ":") if compact else None)
    assert_same_as_json(text)
    assert_same_as_json(text.encode("utf-8", "surrogatepass"))


JSONISH = st.text(alphabet='0123456789-+.eE[]{}",: \t\n\\/ubnfrtalsNIiy\x00\x1f\u00e9\ud800', max_size=30)


@given(
    st.one_of(
        JSONISH,
        st.text(max_size=30),
        JSONISH.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=30),
    )
)
def test_orjson_loads_fails_or_succeeds_as_json_loads_does(payload: bytes | str) -> None:
    assert_same_as_json(payload)


@given(
    st.integers(min_value=0, max_value=10**18 - 1),
    st.integers(min_value=1, max_value=18),
    st.integers(min_value=-330, max_value=330),
)
def test_orjson_loads_rounds_decimal_literals_as_json_loads_does(
    digits: int, point: int, exponent: int
) -> None:
    mantissa = str(digits).rjust(point + 1, "0")
    assert_same_as_json(f"{mantissa[:-point]}.{mantissa[-point:]}e{exponent}")
    assert_same_as_json(f"[{mantissa}, -{mantissa}.5]")


@pytest.mark.parametrize(
    "payload",
    [
        str(2**63 - 1),
        str(2**63),
        str(2**64 - 1),
        str(2**64),  # orjson alone: a float
        str(-(2**63)),
        str(-(2**63) - 1),  # orjson alone: a float
        str(10**30),
        '{"n": 123456789012345678901234567890}',
        '"123456789012345678901234567890"',
        "NaN",
        "-Infinity",
        "[1e400]",
        '"\\ud800"',
        '{"a": 1, "a": 2}',
        "\ufeff{}",
        "01",
        "[1,]",
        '"tab\there"',
    ],
)
def test_orjson_loads_edge_cases(payload: str) -> None:
    assert_same_as_json(payload)
    assert_same_as_json(payload.encode("utf-8", "surrogatepass"))


def test_loads_uses_orjson_unless_told_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_SCHEMATICS_JSON", raising=False)
    assert serializers._pick_loads() is orjson_loads
    monkeypatch.setenv("REDIS_SCHEMATICS_JSON", "json")
    assert serializers._pick_loads() is json.loads
    monkeypatch.setattr(serializers, "orjson", None)
    monkeypatch.delenv("REDIS_SCHEMATICS_JSON")
    assert serializers._pick_loads() is json.loads


@pytest.mark.parametrize("depth", [1000, 1010, 1024])
def test_orjson_loads_nesting_as_deep_as_json_loads_can(depth: int) -> None:
    """Before 3.12 json.loads raises RecursionError from ~994 levels (fewer when called
    deep in a stack); orjson reads up to 1024."""
    payload = "[" * depth + "]" * depth

    def kind(fn: Any) -> str:
        try:
            fn(payload)
        except RecursionError:
            return "RecursionError"
        return "ok"

    assert kind(orjson_loads) == kind(json.loads)


@pytest.mark.parametrize(("stack", "depth"), [(0, 200), (600, 200), (700, 200), (750, 300)])
def test_orjson_loads_nesting_when_called_deep_in_a_stack(stack: int, depth: int) -> None:
    payload = "[" * depth + "]" * depth

    def kind(fn: Any, frames: int) -> str:
        if frames:
            return kind(fn, frames - 1)
        try:
            fn(payload)
        except RecursionError:
            return "RecursionError"
        return "ok"

    assert kind(orjson_loads, stack) == kind(json.loads, stack)


@pytest.mark.parametrize(
    ("value", "at"),
    [("", None), ("plain", None), ("ü🍦\x00e\u0301", None), ("x\ud800", 1), ("\udfffy", 0), ("🍦\udc00", 1)],
)
def test_lone_surrogate_says_where(value: str, at: int | None) -> None:
    assert serializers.lone_surrogate(value) == at
    if at is None:
        value.encode("utf-8")  # what redis-py does with it
    else:
        with pytest.raises(UnicodeEncodeError):
            value.encode("utf-8")


@given(st.text())
def test_lone_surrogate_is_none_exactly_when_utf8_can_encode(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        assert serializers.lone_surrogate(value) is not None
    else:
        assert serializers.lone_surrogate(value) is None


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(1, 1, 1),
        dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
        dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.timezone(dt.timedelta(hours=14))),
    ],
)
def test_extreme_years_score_in_order(value: dt.datetime) -> None:
    """Scores of the calendar's ends keep their order around the epoch (inexact there)."""
    epoch = dt.datetime(1970, 1, 1)
    assert (score(value) < score(epoch)) == (normalize(value) < normalize(epoch))
    assert not score_is_exact(value)
