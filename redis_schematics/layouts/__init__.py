"""Storage layouts: how a model's payloads are laid out in Redis."""

from __future__ import annotations

from redis_schematics.layouts.base import DocumentLayout, Fields, Layout
from redis_schematics.layouts.hash_per_field import HashPerFieldLayout
from redis_schematics.layouts.hash_per_model import HashPerModelLayout
from redis_schematics.layouts.hash_per_object import HashPerObjectLayout
from redis_schematics.layouts.key_per_object import KeyPerObjectLayout

__all__ = [
    "DocumentLayout",
    "Fields",
    "HashPerFieldLayout",
    "HashPerModelLayout",
    "HashPerObjectLayout",
    "KeyPerObjectLayout",
    "Layout",
]
