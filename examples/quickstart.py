"""The README's IceCream example, end to end.

Uses the Redis at REDIS_URL when set, else an embedded fakeredis (no server needed).
Run: python examples/quickstart.py
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from schematics import models, types

from redis_schematics import NotFound, RangeIndex, SimpleRedisMixin


def make_client() -> Any:
    url = os.environ.get("REDIS_URL")
    if url:
        import redis

        print(f"using Redis at {url}")
        return redis.Redis.from_url(url)
    import fakeredis

    print("REDIS_URL is not set: using an embedded fakeredis")
    return fakeredis.FakeRedis()


class IceCreamModel(models.Model, SimpleRedisMixin):
    __redis_client__ = make_client()
    __indexes__ = ("flavour", RangeIndex("amount_kg"), "best_before")

    pk = types.StringType()  # Just include a pk
    id = types.StringType()
    flavour = types.StringType()
    amount_kg = types.IntType()
    best_before = types.DateTimeType()


def main() -> None:
    IceCreamModel.delete_all()
    now = datetime.now(timezone.utc)

    vanilla = IceCreamModel(
        dict(id="vanilla", flavour="Sweet Vanilla", amount_kg=42, best_before=now + timedelta(days=2))
    )
    vanilla.set()
    chocolate = IceCreamModel(
        dict(id="chocolate", flavour="Delicious Chocolate", amount_kg=12, best_before=now + timedelta(days=3))
    )
    chocolate.set()
    print("stored:", vanilla.key, chocolate.key)

    print("match on pk:", IceCreamModel.match(id="vanilla").flavour)
    print("match on values:", IceCreamModel.match(flavour="Delicious Chocolate").id)
    print("all:", [ice.id for ice in IceCreamModel.all()])
    print("filter amount_kg__gte=20:", [ice.id for ice in IceCreamModel.filter(amount_kg__gte=20)])
    soon = now + timedelta(days=2, hours=12)
    print("count best_before__lt in 2.5 days:", IceCreamModel.count(best_before__lt=soon))
    print("plan:", IceCreamModel.explain(flavour="Sweet Vanilla", amount_kg__gte=20), sep="\n")
    first = IceCreamModel.query().order_by("-amount_kg").first()
    print("biggest:", first.id if first else None)

    chocolate.amount_kg = 50
    chocolate.set()
    print("after update, amount_kg__gte=20:", [ice.id for ice in IceCreamModel.filter(amount_kg__gte=20)])

    vanilla.delete()
    try:
        IceCreamModel.match_for_pk("vanilla")
    except NotFound as exc:
        print("deleted:", exc)
    print("indexes consistent:", IceCreamModel.check_indexes() == [])
    print("deleted the rest:", IceCreamModel.delete_all())


if __name__ == "__main__":
    main()
