"""Model factories shared by the tests."""

from __future__ import annotations

from typing import Any

from schematics import types

from redis_schematics import UniqueIndex

INDEXES = ("flavour", "amount_kg", "best_before", "vegan", UniqueIndex("code"))


def ice_cream(base: type, client: Any, indexed: bool = True, **settings: Any) -> Any:
    """An IceCream model on ``base``'s layout, with the 4 usual indexes (or none)."""
    attrs: dict[str, Any] = {
        "__redis_client__": client,
        "__indexes__": INDEXES if indexed else None,
        "__prefix__": settings.pop("prefix", "IceCream"),
        "id": types.StringType(),
        "flavour": types.StringType(),
        "amount_kg": types.IntType(),
        "price": types.FloatType(),
        "best_before": types.DateTimeType(),
        "vegan": types.BooleanType(),
        "code": types.StringType(),
    }
    attrs.update({f"__{k}__": v for k, v in settings.items()})
    return type(base)("IceCream", (base,), attrs)
