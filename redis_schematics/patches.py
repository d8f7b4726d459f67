"""Opt-in patches kept from the original library."""

from __future__ import annotations

import json
from typing import Any


def patch_json() -> None:
    """Make ``json.dumps`` call an object's ``__json__()`` before giving up on it.

    Global and idempotent: patches ``json.JSONEncoder.default`` once. Objects without
    ``__json__`` still raise ``TypeError`` as before. Every redis-schematics model has a
    ``__json__`` (its ``to_primitive()``), so that ``json.dumps(Model.all())`` works as in
    0.3.x. No I/O.
    """
    encoder: Any = json.JSONEncoder
    if getattr(encoder.default, "_redis_schematics_patch", False):
        return
    original = encoder.default

    def default(self: json.JSONEncoder, obj: Any) -> Any:
        method = getattr(type(obj), "__json__", None)
        if method is None:
            return original(self, obj)
        return method(obj)

    default._redis_schematics_patch = True  # type: ignore[attr-defined]
    encoder.default = default
