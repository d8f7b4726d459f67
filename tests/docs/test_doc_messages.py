# ruff: noqa: E501 - quoted messages stay on one line, as on the pages
"""Every error message the documentation quotes is produced by the library, word for word.

A page quotes a message as a line ``ExceptionName: message`` (or
``module.ExceptionName: message``) in a fenced block that is not run (```text), the way
Python prints an uncaught exception; ``...`` in it stands for any text. ``MESSAGES``
maps each quoted line to a call of the public API that raises it, run in the namespace
of ``docs/errors.md`` (its model ``IceCream``, with ``v1`` and ``v2`` stored, and
``Stock``), on a fake Redis server of its own. Then:

- every registered message is raised by its call, with that exception class and that
  text (``test_quoted_message_is_what_the_library_raises``);
- every line a page quotes is registered (``test_every_quoted_message_is_registered``),
  so a newly quoted message cannot go untested, and every registered one is still
  quoted somewhere (``test_every_registered_message_is_still_quoted``);
- a block that quotes messages holds nothing else, so a message written without its
  exception name next to them is noticed (``test_message_blocks_hold_only_messages``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import fakeredis
import pytest
import redis.cluster
from redis.asyncio.client import Redis as AsyncioRedis  # the real class, not the preamble's
from schematics import models, types

from redis_schematics import (
    BaseRedisMixin,
    EqualityIndex,
    RangeIndex,
    SimpleRedisModel,
    UniqueIndex,
    transaction,
)
from tests.docs.blocks import ROOT, RUN, blocks, pages, ran_page
from tests.races import racing

pytestmark = pytest.mark.fake

#: what a quoted message looks like in a block that is not run: "[module.]Name: message".
#: The name only has to look like a class name: "IceCream: no object ..." (a message
#: quoted without its exception) is caught too, and then is not registered.
QUOTED = re.compile(r"^(?P<name>(?:[a-z_][a-z0-9_]*\.)*[A-Z][A-Za-z0-9]+): (?P<message>\S.*)$")
#: the same in prose and in comments of Python blocks, where the name must end like one
#: of the library's (or Python's) exceptions, so that "Costs: ..." is not a message
QUOTED_IN_PROSE = re.compile(
    r"^(?:[-*>]\s+|#\s*)?`?(?P<name>(?:[a-z_][a-z0-9_]*\.)*[A-Z][A-Za-z0-9]*"
    r"(?:Error|Exception|Found|Violation|Payload|Loaded|Conflict|Modification|Key|Field|Lookup|Value|Model))"
    r": (?P<message>\S.*?)`?$"
)

Namespace = dict[str, Any]


@dataclass(frozen=True)
class Quote:
    page: Path
    line: int
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def quotes() -> list[Quote]:
    """Every quoted message of every page: (page, line, "Name: message")."""
    found = []
    for page in pages():
        fenced: set[int] = set()
        for block in blocks(page):
            body = block.code.splitlines()
            fenced.update(range(block.line, block.line + len(body) + 2))
            for n, line in enumerate(body, start=block.line + 1):
                if block.lang in RUN:
                    comment = line.partition("#")[2].strip()
                    if comment and QUOTED_IN_PROSE.match("# " + comment):
                        found.append(Quote(page, n, comment))
                elif (QUOTED_IN_PROSE if block.lang == "console" else QUOTED).match(line.strip()):
                    # a terminal session (```console) also prints "Model: summary" lines:
                    # there only a name like an exception's is a quoted message
                    found.append(Quote(page, n, line.strip()))
        text = (ROOT / page).read_text(encoding="utf-8").splitlines()
        for n, line in enumerate(text, start=1):
            m = QUOTED_IN_PROSE.match(line.strip())
            if n not in fenced and m:
                found.append(Quote(page, n, f"{m['name']}: {m['message']}"))
    return found


def pattern(message: str) -> re.Pattern[str]:
    """The quoted message as a pattern: exact, except that ``...`` matches any text."""
    return re.compile(".*?".join(re.escape(part) for part in message.split("...")), re.DOTALL)


# -- the calls that raise each message ---------------------------------------------------------
# Each takes the namespace of docs/errors.md and must raise. A quoted line is written here
# exactly as on the page (one line, so that it can be searched for). Models that cannot be
# created are declared inside the call (creating the class is what raises).

Call = Callable[[Namespace], Any]
MESSAGES: dict[str, Call] = {}


def quoted(*lines: str) -> Callable[[Call], Call]:
    """Register ``call`` as what raises each of the quoted ``lines``."""

    def register(call: Call) -> Call:
        for line in lines:
            assert line not in MESSAGES, f"registered twice: {line}"
            MESSAGES[line] = call
        return call

    return register


def _model(ns: Namespace, name: str = "IceCream", **attrs: Any) -> type:
    body: dict[str, Any] = {
        "__redis_client__": ns["client"],
        "id": types.StringType(),
        "flavour": types.StringType(),
        "amount_kg": types.IntType(),
        "tags": types.ListType(types.StringType()),
        **attrs,
    }
    return type(SimpleRedisModel)(name, (SimpleRedisModel,), body)


# CrossSlot


@quoted(
    'CrossSlot: this transaction writes to 2 Redis Cluster hash slots (slot 3088: Shop ({retail}Shop); slot 8518: Ice ({Ice})); one atomic write can only touch one slot. Put the models in one slot group (the same `__hash_tag__ = "group"`), or write them in separate transactions. Nothing was written.'
)
def _transaction_across_slots(ns: Namespace) -> None:
    cluster = redis.cluster.RedisCluster(host="127.0.0.1", port=7000)
    ice = _model(ns, "Ice", __redis_client__=cluster, __prefix__="Ice", __hash_tag__=True)
    shop = _model(ns, "Shop", __redis_client__=cluster, __prefix__="Shop", __hash_tag__="retail")
    with transaction() as tx:
        ice({"id": "1"}).set(pipeline=tx)
        shop({"id": "1"}).set(pipeline=tx)


@quoted(
    "CrossSlot: Stall 's1' is stored in shard {Stall.2} and this write would put it in another (its flavour changed): an object cannot move between shards atomically. Delete it, then set it again; nothing was written."
)
def _shard_move(ns: Namespace) -> None:
    stall = _model(ns, "Stall", __prefix__="Stall", __shards__=3, __shard_by__="flavour")
    stall({"id": "s1", "flavour": "vanilla"}).set()
    stall({"id": "s1", "flavour": "lemon"}).set()


# ConfigurationError


@quoted("ConfigurationError: IceCream.__indexes__ names 'flavor', which is not a field of IceCream.")
def _index_of_no_field(ns: Namespace) -> None:
    _model(ns, __indexes__=("flavor",))


@quoted(
    "ConfigurationError: IceCream.__indexes__: RangeIndex cannot serve flavour (StringType); it needs a number, date or datetime field. Use EqualityIndex."
)
def _range_of_a_string(ns: Namespace) -> None:
    _model(ns, __indexes__=(RangeIndex("flavour"),))


@quoted("ConfigurationError: IceCream.tags is a ListType; list, dict and model fields cannot be indexed.")
def _index_of_a_list(ns: Namespace) -> None:
    _model(ns, __indexes__=("tags",))


@quoted("ConfigurationError: IceCream.__indexes__ declares EqualityIndex('flavour') twice.")
def _index_twice(ns: Namespace) -> None:
    _model(ns, __indexes__=("flavour", EqualityIndex("flavour")))


@quoted(
    "ConfigurationError: IceCream.__indexes__ holds 3; use field names or EqualityIndex/RangeIndex/UniqueIndex objects."
)
def _index_of_a_number(ns: Namespace) -> None:
    _model(ns, __indexes__=("flavour", 3))


@quoted("ConfigurationError: IceCream.__expire__ must be a positive number of seconds or None, not -1.")
def _negative_expire(ns: Namespace) -> None:
    _model(ns, __expire__=-1)


@quoted("ConfigurationError: IceCream.__unique_together__ names 'flavor', which is not a field.")
def _unique_together_of_no_field(ns: Namespace) -> None:
    _model(ns, __unique_together__=("flavor",))


@quoted(
    "ConfigurationError: IceCream: __prefix__ 'Ice#Cream' contains '#'; redis-schematics reserves '#' for its own keys and '{', '}' for cluster hash tags. Choose another prefix."
)
def _prefix_with_hash(ns: Namespace) -> None:
    _model(ns, __prefix__="Ice#Cream")


@quoted(
    "ConfigurationError: IceCream.__redis_client__ is a Redis Cluster client (RedisCluster) but IceCream has neither __hash_tag__ nor __shards__, so its keys would fall in many slots. Add `__hash_tag__ = True` to IceCream (all its keys in one slot) or `__shards__ = N` (spread over N slots); see docs/cluster.md."
)
def _untagged_on_a_cluster(ns: Namespace) -> None:
    cluster = redis.cluster.RedisCluster(host="127.0.0.1", port=7000)  # the page's slot checker
    _model(ns, __redis_client__=cluster, __prefix__="OnCluster").count()


@quoted(
    "ConfigurationError: IceCream.__indexes__: UniqueIndex('flavour') on a sharded model must be on its __shard_by__ field (uniqueness is atomic only inside one shard); set IceCream.__shard_by__ = 'flavour', or use an EqualityIndex."
)
def _unique_off_the_shard_key(ns: Namespace) -> None:
    _model(ns, __prefix__="Sharded", __shards__=3, __indexes__=(UniqueIndex("flavour"),))


@quoted(
    "ConfigurationError: IceCream.__redis_client__ is not set; assign a redis.Redis (or fakeredis) client to it."
)
def _no_client(ns: Namespace) -> None:
    _model(ns, __redis_client__=None).all()


@quoted(
    "ConfigurationError: IceCream has only an async client (__redis_async_client__): sync methods need a redis.Redis in IceCream.__redis_client__; or call the async twin (aset, afilter, amatch_for_pk, ...).",
)
def _sync_call_with_only_an_async_client(ns: Namespace) -> None:
    _model(ns, __redis_client__=None, __redis_async_client__=fakeredis.FakeAsyncRedis()).count()


@quoted(
    "ConfigurationError: Gelato has only an async client (__redis_async_client__): sync methods need a redis.Redis in Gelato.__redis_client__; or call the async twin (aset, afilter, amatch_for_pk, ...).",
)
def _sync_call_on_gelato(ns: Namespace) -> None:
    _model(ns, "Gelato", __redis_client__=None, __redis_async_client__=fakeredis.FakeAsyncRedis()).count()


@quoted(
    "ConfigurationError: IceCream.__redis_client__ is an asyncio client (Redis), which sync methods cannot use: call the async twin (aset, afilter, amatch_for_pk, ...), or put a redis.Redis in IceCream.__redis_client__ and the asyncio client in IceCream.__redis_async_client__."
)
def _sync_call_with_an_async_client(ns: Namespace) -> None:
    _model(ns, __redis_client__=AsyncioRedis()).count()


@quoted(
    "ConfigurationError: IceCream.__redis_async_client__ is not set and IceCream.__redis_client__ is a sync client (Redis): async methods need a redis.asyncio.Redis (or fakeredis.FakeAsyncRedis) in IceCream.__redis_async_client__, or a zero-argument callable returning one."
)
def _async_call_with_a_sync_client(ns: Namespace) -> None:
    asyncio.run(_model(ns).acount())


@quoted(
    "ConfigurationError: Abs has no storage layout; inherit from SimpleRedisMixin, HashRedisMixin or another layout mixin."
)
def _abstract(ns: Namespace) -> None:
    class Abs(models.Model, BaseRedisMixin):
        x = types.StringType()

    Abs.all()


# InvalidModel, InvalidPrimaryKey


@quoted(
    """InvalidModel: IceCream 'v3' is not valid, nothing was written: {'amount_kg': ["Value 'lots' is not int."]}"""
)
def _invalid_amount(ns: Namespace) -> None:
    obj = ns["IceCream"](dict(id="v3", flavour="mint"))
    obj.amount_kg = "lots"
    obj.set()


@quoted(
    "InvalidModel: IceCream 'v3' is not valid, nothing was written: {'email': ['Not a well-formed email address.']}"
)
def _invalid_email(ns: Namespace) -> None:
    ns["IceCream"](dict(id="v3", email="not an address")).set()


@quoted(
    "InvalidModel: IceCream 'v3': sugar is NaN, which a RangeIndex cannot order; nothing was written. Store None or a number."
)
def _nan(ns: Namespace) -> None:
    ns["IceCream"](dict(id="v3", sugar=math.nan)).set()


@quoted(
    "InvalidModel: IceCream 'v3': best_before = '1960-06-01T00:00:00.000000-004430' cannot be stored: its UTC offset -00:44:30 has seconds, which schematics writes but cannot read back; nothing was written. Store a naive datetime or one whose UTC offset is whole minutes (e.g. value.astimezone(timezone.utc))."
)
def _odd_offset(ns: Namespace) -> None:
    monrovia = dt.datetime(1960, 6, 1, tzinfo=ZoneInfo("Africa/Monrovia"))  # -00:44:30
    ns["IceCream"](dict(id="v3", best_before=monrovia)).set()


@quoted(
    r"InvalidModel: IceCream 'v3': flavour = 'mint\udc00' holds a lone surrogate ('\udc00' at position 4), which cannot be stored (Redis gets UTF-8); nothing was written. Store text of whole Unicode characters."
)
def _surrogate_value(ns: Namespace) -> None:
    ns["IceCream"](dict(id="v3", flavour="mint\udc00")).set()


@quoted("InvalidPrimaryKey: IceCream: the primary key is empty; give pk, id or __unique_together__ values.")
def _empty_pk(ns: Namespace) -> None:
    ns["IceCream"].match_for_pk("")


@quoted(
    r"InvalidPrimaryKey: IceCream: the primary key 'v\ud800' holds a lone surrogate ('\ud800' at position 1), which a Redis key cannot hold (keys are UTF-8); use text of whole Unicode characters."
)
def _surrogate_pk(ns: Namespace) -> None:
    ns["IceCream"].match_for_pk("v\ud800")


@quoted(
    r"InvalidFilterValue: IceCream.flavour: 'mint\udc00' holds a lone surrogate ('\udc00' at position 4), which no stored value can hold; filter with text of whole Unicode characters."
)
def _surrogate_filter(ns: Namespace) -> None:
    ns["IceCream"].filter(flavour="mint\udc00")


# QueryError and its subclasses


@quoted(
    "QueryError: IceCream filter 'tags__gt': ListType values have no order; use eq, not, in or exclude on this field."
)
def _range_on_a_list(ns: Namespace) -> None:
    ns["IceCream"].filter(tags__gt=["a"])


@quoted("QueryError: IceCream query: limit must be a non-negative int or None, not -1.")
def _negative_limit(ns: Namespace) -> None:
    ns["IceCream"].query().limit(-1)


@quoted("QueryError: IceCream query: offset must be a non-negative int, not 'a'.")
def _text_offset(ns: Namespace) -> None:
    ns["IceCream"].query().offset("a")


@quoted(
    "UnknownField: IceCream has no field 'flavor' (in filter 'flavor'); did you mean 'flavour'? Fields: pk, id, code, flavour, amount_kg, best_before, price, sugar, vegan, tags, email."
)
def _filter_on_no_field(ns: Namespace) -> None:
    ns["IceCream"].filter(flavor="mint")


@quoted(
    "UnknownField: IceCream.order_by('-amount'): no field 'amount'; did you mean 'amount_kg'? Fields: pk, id, code, flavour, amount_kg, best_before, price, sugar, vegan, tags, email."
)
def _order_by_no_field(ns: Namespace) -> None:
    ns["IceCream"].query().order_by("-amount")


@quoted(
    "UnknownLookup: Unknown lookup 'gtee' in IceCream filter 'best_before__gtee'; did you mean 'gte'? Supported: eq, not, gt, gte, lt, lte, in, exclude."
)
def _unknown_lookup(ns: Namespace) -> None:
    ns["IceCream"].filter(best_before__gtee="2026-01-01T00:00:00")


@quoted(
    "InvalidFilterValue: IceCream.amount_kg: 'lots' is not a valid IntType value (Value 'lots' is not int.)"
)
def _text_for_an_int(ns: Namespace) -> None:
    ns["IceCream"].filter(amount_kg="lots")


@quoted(
    "InvalidFilterValue: IceCream.best_before: 'tomorrow' is not a valid DateTimeType value (Could not parse tomorrow. Should be ISO 8601 or timestamp.)"
)
def _text_for_a_datetime(ns: Namespace) -> None:
    ns["IceCream"].filter(best_before="tomorrow")


@quoted(
    "InvalidFilterValue: IceCream filter 'flavour__in' needs a list of values, got 'vanilla'; write flavour__in=[...]."
)
def _in_without_a_list(ns: Namespace) -> None:
    ns["IceCream"].filter(flavour__in="vanilla")


# NotFound, MultipleFound


@quoted("NotFound: IceCream: no object with pk 'nope' ('IceCream:nope').")
def _no_such_pk(ns: Namespace) -> None:
    ns["IceCream"].match_for_pk("nope")


@quoted("NotFound: IceCream.match(flavour='mint') found nothing.")
def _no_match(ns: Namespace) -> None:
    ns["IceCream"].match(flavour="mint")


@quoted("NotFound: IceCream.match(id='v1', flavour='mint') found nothing.")
def _pk_match_fails_another_filter(ns: Namespace) -> None:
    ns["IceCream"].match(id="v1", flavour="mint")


@quoted(
    "MultipleFound: IceCream.match(flavour='vanilla') found more than one object; use IceCream.filter(...) to get all of them."
)
def _two_matches(ns: Namespace) -> None:
    ns["IceCream"].match(flavour="vanilla")


# StrictPerformanceException (IceCream sets __strict_performance__)


@quoted(
    "StrictPerformanceException: IceCream.filter(price__gt=3.0) would read every object: price__gt needs a RangeIndex on IceCream.price; declare one in __indexes__ or turn off __strict_performance__.",
    "StrictPerformanceException: IceCream.filter(price__gt=3.0) would read every object: price__gt needs a RangeIndex on IceCream.price; ...",
)
def _strict_range(ns: Namespace) -> None:
    ns["IceCream"].filter(price__gt=3)


@quoted(
    "StrictPerformanceException: IceCream.filter(price=3.0) would read every object: price__eq needs an index on IceCream.price; declare one in __indexes__ or turn off __strict_performance__."
)
def _strict_equality(ns: Namespace) -> None:
    ns["IceCream"].filter(price=3)


@quoted(
    "IndexNotReady: IceCream: RangeIndex('price') is not complete yet (objects were stored before it was declared, or by redis-schematics 0.3.x), so this query would read every object, which __strict_performance__ refuses. Build it with `redis-schematics reindex ...:IceCream` or IceCream.rebuild_indexes(); until it is complete nothing is answered from it."
)
def _index_not_ready(ns: Namespace) -> None:
    old = ns["IceCream"]  # v1 and v2 are stored: a deploy adds an index on price
    deployed = type(old)("IceCream", (old,), {"__indexes__": (*old.__indexes__, "price")})
    deployed.filter(price=3)


# UniqueViolation, CorruptPayload, PartiallyLoaded


@quoted(
    "UniqueViolation: IceCream.code = 'X1' already belongs to IceCream 'v1'; 'v2' was not written. Values of a UniqueIndex field must differ between objects.",
    "UniqueViolation: IceCream.code = 'X1' already belongs to IceCream 'v1'; 'v2' was not written. ...",
)
def _taken_value(ns: Namespace) -> None:
    ns["IceCream"](dict(id="v2", code="X1")).set()


def _corrupt(ns: Namespace, payload: str) -> None:
    ns["client"].set("IceCream:bad", payload)  # written behind the library's back
    ns["IceCream"].match_for_pk("bad")


@quoted(
    "CorruptPayload: IceCream object 'bad' ('IceCream:bad'): the stored payload cannot be read (Expecting property name enclosed in double quotes: line 1 column 2 (char 1)); rewrite or delete it."
)
def _not_json(ns: Namespace) -> None:
    _corrupt(ns, "{bad")


@quoted(
    "CorruptPayload: IceCream object 'bad' ('IceCream:bad'): the stored payload is a list, not an object; rewrite or delete it."
)
def _a_list(ns: Namespace) -> None:
    _corrupt(ns, "[]")


@quoted(
    """CorruptPayload: IceCream object 'bad' ('IceCream:bad'): the stored payload does not fit the model ({"amount_kg": ["Value 'lots' is not int."]}); rewrite or delete it."""
)
def _wrong_shape(ns: Namespace) -> None:
    _corrupt(ns, '{"pk":"bad","amount_kg":"lots"}')


@quoted(
    "PartiallyLoaded: IceCream object 'v1' was read with only=[amount_kg, id, pk]; set() would store code, flavour, best_before, price, sugar, vegan, tags, email without having loaded them, over the stored values. Write just the loaded fields (set(only=[...])), or refresh() the object first."
)
def _partial(ns: Namespace) -> None:
    obj = ns["IceCream"].match_for_pk("v1", only=["amount_kg"])
    obj.amount_kg += 1
    obj.set()


@quoted(
    "PartiallyLoaded: IceCream object 'v1' was read with only=[amount_kg, id, pk] and is no longer stored (deleted or expired since), so set(only=['amount_kg']) would store code, flavour, best_before, price, sugar, vegan, tags, email without having loaded them; nothing was written. Write a whole object instead."
)
def _partial_gone(ns: Namespace) -> None:
    obj = ns["IceCream"].match_for_pk("v1", only=["amount_kg"])
    ns["IceCream"].delete_many(["v1"])
    obj.set(only=["amount_kg"])


# WriteConflict, ConcurrentModification


@quoted(
    "WriteConflict: IceCream: gave up writing ['v2'] after 50 attempt(s); other clients kept changing them."
)
def _contended(ns: Namespace) -> None:
    def rewrite(client: Any, n: int) -> None:  # another client wins every race
        client.set("IceCream:v2", f'{{"pk":"v2","id":"v2","code":"X2","flavour":"vanilla","amount_kg":{n}}}')

    with racing(ns["client"], rewrite):  # (backoff waits are not slept)
        ns["IceCream"](dict(id="v2", code="X2", flavour="fig")).set()


@quoted(
    "ConcurrentModification: Stock.update('s'): the object changed under every one of 3 attempts; retry later or raise retries."
)
def _update_contended(ns: Namespace) -> None:
    stock = ns["Stock"]

    def take(obj: Any) -> None:
        stock(dict(pk="s", amount=obj.amount + 100)).set()  # another writer, every time
        obj.amount -= 3

    stock.update("s", take, retries=2)


# a write queued on a redis-py pipeline whose guard fails when the pipeline runs


@quoted(
    "redis.exceptions.ResponseError: Command # 1 (EVAL ...) of pipeline caused error: RSGUARD get IceCream:v2 : the stored data changed since it was read; nothing was written, retry the write"
)
def _changed_in_a_pipeline(ns: Namespace) -> None:
    pipe = ns["client"].pipeline()
    ns["IceCream"](dict(id="v2", flavour="mint")).set(pipeline=pipe)
    ns["IceCream"](dict(id="v2", flavour="fig")).set()  # another client changes v2 meanwhile
    pipe.execute()


@quoted(
    "redis.exceptions.ResponseError: Command # 1 (EVAL ...) of pipeline caused error: RSUNIQUE IceCream#unique:code A already belongs to v4, not v3: nothing was written"
)
def _taken_in_a_pipeline(ns: Namespace) -> None:
    pipe = ns["client"].pipeline()
    ns["IceCream"](dict(id="v3", code="A")).set(pipeline=pipe)
    ns["IceCream"](dict(id="v4", code="A")).set()  # another client takes the value meanwhile
    pipe.execute()


@pytest.fixture
def errors_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Namespace]:
    """The namespace of docs/errors.md after its blocks ran, on a fake server of its own."""
    with ran_page(Path("docs/errors.md"), monkeypatch) as namespace:
        yield namespace


@pytest.mark.parametrize("quoted", list(MESSAGES))
def test_quoted_message_is_what_the_library_raises(quoted: str, errors_page: Namespace) -> None:
    m = QUOTED.match(quoted)
    assert m, f"not a quoted message: {quoted!r}"
    with pytest.raises(Exception) as info:  # noqa: PT011 - any exception; compared below
        MESSAGES[quoted](errors_page)
    exc = info.value
    module, _, name = m["name"].rpartition(".")
    raised = f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
    same = type(exc).__name__ == name and module in ("", type(exc).__module__)
    same = same and pattern(m["message"]).fullmatch(str(exc)) is not None
    assert same, f"the page quotes\n{quoted}\nthe library raised\n{raised}"


def test_every_quoted_message_is_registered() -> None:
    missing = [f"{q.where}: {q.text}" for q in quotes() if q.text not in MESSAGES]
    assert not missing, (
        "quoted, but with no call in MESSAGES (tests/docs/test_doc_messages.py):\n" + "\n".join(missing)
    )


def test_every_registered_message_is_still_quoted() -> None:
    quoted = {q.text for q in quotes()}
    stale = [m for m in MESSAGES if m not in quoted]
    assert not stale, "in MESSAGES, but no page quotes them any more:\n" + "\n".join(stale)


def test_message_blocks_hold_only_messages() -> None:
    mixed = []
    for page in pages():
        for block in blocks(page):
            if block.lang in RUN:
                continue
            lines = [line.strip() for line in block.code.splitlines() if line.strip()]
            rule = QUOTED_IN_PROSE if block.lang == "console" else QUOTED  # as in quotes()
            quoted = [line for line in lines if rule.match(line)]
            if quoted and len(quoted) != len(lines):
                mixed += [f"{block.where}: {line}" for line in lines if not rule.match(line)]
    assert not mixed, (
        "a block of quoted messages holds other lines (a message without its exception name?):\n"
        + ("\n".join(mixed))
    )


def test_the_pages_quote_messages() -> None:
    """Guards the scanner: if it stopped finding quotes, the tests above would pass empty."""
    found = quotes()
    assert len(found) >= 40, [q.where for q in found]
    assert {q.page for q in found} >= {Path("README.md"), Path("docs/errors.md")}
