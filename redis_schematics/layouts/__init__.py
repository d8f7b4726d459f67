"""Storage layouts: how a model's payloads are laid out in Redis."""

from __future__ import annotations

from redis_schematics.layouts.base import Guard, Layout, Op
from redis_schematics.layouts.hash_per_model import HashPerModelLayout
from redis_schematics.layouts.key_per_object import KeyPerObjectLayout

__all__ = ["Guard", "HashPerModelLayout", "KeyPerObjectLayout", "Layout", "Op"]
