"""Reaching below the public API in tests: run an engine flow, read what a layout stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis_schematics.io import Flow, sync_driver


def run(model: Any, flow: Flow[Any]) -> Any:
    """Run ``flow`` with the sync driver of ``model``'s ``__redis_client__``."""
    return model._engine().sync().run(flow)


def stored(model: Any, pks: Sequence[str]) -> list[tuple[Any, bool]]:
    """(payload, alive) of each pk, as the engine reads them."""
    return run(model, model._engine().read(list(pks)))


def layout_read(model: Any, client: Any, pks: Sequence[str]) -> list[Any]:
    """What the model's layout reads for ``pks`` (payloads, None where absent) on ``client``."""
    return sync_driver(client).handle(model._engine().layout.read(list(pks)))
