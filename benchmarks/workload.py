"""The benchmark's data set and models.

An object has 5 fields and serializes to about 150 bytes of JSON::

    {"id":"<32 hex>","flavour":"pistachio","amount_kg":1234,
     "best_before":"2026-05-17T08:31:02.000000+0000","vegan":false}

* ``id``: 128 random bits as hex (the pk);
* ``flavour``: one of 50 values, 49 of them ~2.04 % each and ``RARE_FLAVOUR`` 0.05 %,
  so that one equality index answers both the 2 % and the 0.05 % queries;
* ``amount_kg``: uniform int in [0, 2000);
* ``best_before``: uniform whole second within 2026 (UTC);
* ``vegan``: True for ~30 %.

Indexed fields (``INDEXES``): flavour and vegan (EqualityIndex), amount_kg and best_before
(RangeIndex). Records come from ``random.Random(seed)`` one after the other, so the first
n records of a bigger set are the same as a set of n: the scale section grows one data
set from 1k to 100k objects.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from typing import Any

from schematics import models, types

import redis_schematics

SEED = 20260101
#: a second stream, for objects written during timings (never collides with SEED's pks)
WRITE_SEED = SEED + 1

#: Layouts measured in the memory section, as (label, mixin name exported by
#: redis_schematics). A name the package does not export (yet) is skipped with a note,
#: so a new layout is measured as soon as it is exported; add new ones here.
LAYOUTS: tuple[tuple[str, str], ...] = (
    ("Simple", "SimpleRedisMixin"),
    ("Hash", "HashRedisMixin"),
    ("Distributed", "DistributedRedisMixin"),
    ("DistributedHash", "DistributedHashRedisMixin"),
)

INDEXES = ("flavour", "vegan", "amount_kg", "best_before")

COMMON_FLAVOURS = (
    "almond", "apple", "apricot", "banana", "blackberry", "blueberry", "butter pecan",
    "caramel", "cherry", "chocolate", "chocolate chip", "cinnamon", "coconut", "coffee",
    "cookie dough", "cookies and cream", "cotton candy", "dulce de leche", "fig", "ginger",
    "green tea", "hazelnut", "honey", "lavender", "lemon", "lime", "malt", "mango",
    "maple walnut", "mint", "mint chocolate chip", "neapolitan", "orange", "passion fruit",
    "peach", "peanut butter", "pear", "pineapple", "pistachio", "plum", "pumpkin",
    "raspberry", "rocky road", "rum raisin", "salted caramel", "sesame", "strawberry",
    "toffee", "vanilla",
)  # fmt: skip
RARE_FLAVOUR = "durian"
RARE_SHARE = 0.0005
FLAVOURS = (*COMMON_FLAVOURS, RARE_FLAVOUR)
#: the flavour the ~2 % queries ask for
COMMON_FLAVOUR = "vanilla"

AMOUNT_MAX = 2000
YEAR_START = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
YEAR_SECONDS = 365 * 86400


def records(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """The first ``n`` records of the data set ``seed``, as native values."""
    rng = random.Random(seed)
    n_common = len(COMMON_FLAVOURS)
    for _ in range(n):
        pk = f"{rng.getrandbits(128):032x}"
        r = rng.random()
        flavour = (
            RARE_FLAVOUR
            if r < RARE_SHARE
            else COMMON_FLAVOURS[min(n_common - 1, int((r - RARE_SHARE) / (1 - RARE_SHARE) * n_common))]
        )
        amount = rng.randrange(AMOUNT_MAX)
        best_before = YEAR_START + dt.timedelta(seconds=rng.randrange(YEAR_SECONDS))
        vegan = rng.random() < 0.3
        yield {"id": pk, "flavour": flavour, "amount_kg": amount, "best_before": best_before, "vegan": vegan}


def with_int_pks(recs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``recs`` with the 32-hex ``id`` replaced by 1, 2, 3, ... (for ``make_model(int_pk=True)``)."""
    for number, rec in enumerate(recs, 1):
        yield {**rec, "id": number}


def make_model(
    mixin_name: str,
    client: Any,
    *,
    indexed: bool,
    prefix: str,
    int_pk: bool = False,
    settings: dict[str, Any] | None = None,
) -> Any:
    """The benchmark model on the layout ``mixin_name``, with the 4 indexes or none.

    ``int_pk``: the pk is an IntType (records from :func:`with_int_pks`) instead of the
    32-hex string. ``settings``: more class attributes (``__shards__``, ``__hash_tag__``).
    """
    mixin = getattr(redis_schematics, mixin_name)
    attrs: dict[str, Any] = {
        "__module__": __name__,
        "__redis_client__": client,
        "__prefix__": prefix,
        "__indexes__": INDEXES if indexed else None,
        "id": types.IntType() if int_pk else types.StringType(),
        "flavour": types.StringType(),
        "amount_kg": types.IntType(),
        "best_before": types.DateTimeType(),
        "vegan": types.BooleanType(),
        **(settings or {}),
    }
    return type(mixin)(prefix, (models.Model, mixin), attrs)


def layout_available(mixin_name: str) -> bool:
    return hasattr(redis_schematics, mixin_name)


# -- what the hand-written redis-py baselines compute themselves -----------------------------
def hand_payload(rec: dict[str, Any]) -> str:
    """The JSON a hand-written application would store for ``rec``."""
    doc = dict(rec)
    doc["best_before"] = rec["best_before"].isoformat()
    return json.dumps(doc, separators=(",", ":"))


def micros(value: dt.datetime) -> int:
    """A datetime as integer microseconds since the epoch (the library's RangeIndex score)."""
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
