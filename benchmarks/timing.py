"""Timing helpers: interleaved samples and medians.

The machine may be busy with other work, so the cases being compared are sampled
round-robin (A, B, A, B, ...): a burst of load then hits each case alike, and the median
of the samples drops the outliers it causes.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

#: A batch of work: runs some operations and returns how many it ran.
Batch = Callable[[], int]


@dataclass(frozen=True)
class Settings:
    """How hard to sample."""

    repeat: int  # samples per case
    min_time: float  # seconds a sample should last at least (calibrated batches)


def calibrate(batch: Batch, min_time: float, cap: int = 100_000) -> int:
    """How many calls of ``batch`` make one sample last ``min_time`` (after a warm-up)."""
    batch()  # warm-up: imports, script loading, caches
    start = time.perf_counter()
    batch()
    per_call = max(time.perf_counter() - start, 1e-9)
    return max(1, min(cap, math.ceil(min_time / per_call)))


def compare(
    cases: dict[str, Batch], settings: Settings, calls: dict[str, int] | None = None
) -> dict[str, float]:
    """Median seconds per operation of each case, sampled round-robin.

    ``calls`` fixes the calls of ``batch`` per sample (for batches that consume fresh
    input); otherwise each case is calibrated to last ``settings.min_time`` a sample.
    """
    if calls is None:
        calls = {name: calibrate(batch, settings.min_time) for name, batch in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(settings.repeat):
        for name, batch in cases.items():
            gc.collect()
            ops = 0
            start = time.perf_counter()
            for _call in range(calls[name]):
                ops += batch()
            elapsed = time.perf_counter() - start
            samples[name].append(elapsed / max(ops, 1))
    return {name: statistics.median(values) for name, values in samples.items()}


def once(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (for work too slow to repeat, like a full scan)."""
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
