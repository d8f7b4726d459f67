"""Random write sequences on every layout, indexed and not, agree with an oracle.

Runs on fakeredis and on the real server (``backend`` fixture: skipped when no server
answers, a failure with REDIS_REQUIRED=1). Sizes follow the hypothesis profile
(``HYPOTHESIS_PROFILE=dev|ci|deep``, see tests/README.md); ``pytest -s`` prints what
each run covered.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.property.machine import LAYOUTS, STATS, ExpiringLayoutsAgree, LayoutsAgree, make_subjects

#: (examples, steps per example) of one machine on one backend, per profile, for two
#: layouts. A step costs ~25-40 ms with two layouts (a write, then ~20 reads and an
#: index check per model, 2 models per layout); with more layouts the examples shrink
#: in proportion so that the ci run keeps its time budget.
#: ci was (40, 30) until 2026-12-02, when the machines' real-async runs took most of CI's
#: 45 minutes on a slower VM; a deep run (HYPOTHESIS_PROFILE=deep) is the thorough one.
MACHINE_SIZES = {"quick": (6, 15), "dev": (10, 20), "ci": (16, 30), "deep": (400, 60)}


def machine_settings() -> settings:
    examples, steps = MACHINE_SIZES.get(settings.get_current_profile_name(), MACHINE_SIZES["dev"])
    examples = max(5, examples * 2 // len(LAYOUTS))
    return settings(
        settings.default,
        max_examples=int(os.environ.get("MACHINE_EXAMPLES", examples)),
        stateful_step_count=int(os.environ.get("MACHINE_STEPS", steps)),
        # Every step draws a query, the fields of a partial read and an order of the
        # checks for each of the 8 models: even the smallest step is many draws.
        suppress_health_check=[*settings.default.suppress_health_check, HealthCheck.large_base_example],
    )


def cluster_machine_settings() -> settings:
    """A quarter of the examples (at least 3): the cluster machines run on 4 client kinds
    x 2 modes, and a sharded step costs three times a plain one (CI's time budget)."""
    base = machine_settings()
    return settings(
        base, max_examples=int(os.environ.get("MACHINE_EXAMPLES", max(3, base.max_examples // 4)))
    )


def _report(name: str) -> None:
    rules = ", ".join(f"{k[5:]} {v}" for k, v in sorted(STATS.items()) if k.startswith("rule "))
    others = {k: v for k, v in sorted(STATS.items()) if not k.startswith("rule ")}
    print(f"\n{name}: {STATS['examples']} examples, {STATS['steps']} steps; rules: {rules}; {others}")


def test_layouts_agree_with_oracle(backend: Any) -> None:
    subjects = make_subjects(backend)
    STATS.clear()
    run_state_machine_as_test(lambda: LayoutsAgree(backend, subjects), settings=machine_settings())
    _report("LayoutsAgree")


def test_expiring_layouts_agree_with_oracle(backend: Any) -> None:
    subjects = make_subjects(backend, expire=3600)
    STATS.clear()
    run_state_machine_as_test(lambda: ExpiringLayoutsAgree(backend, subjects), settings=machine_settings())
    _report("ExpiringLayoutsAgree")


@pytest.mark.parametrize("mode", ["tagged", "sharded"])
def test_cluster_models_agree_with_oracle(sync_cluster: Any, mode: str) -> None:
    """The same machine on models for a Redis Cluster: one slot (``__hash_tag__``) or
    three shards (``__shards__``), on the slot-checking fakeredis and the real cluster
    (sync API; the async twins on a cluster are covered by tests/integration/test_cluster.py)."""
    cluster = sync_cluster
    subjects = make_subjects(cluster, cluster=mode)
    STATS.clear()
    run_state_machine_as_test(lambda: LayoutsAgree(cluster, subjects), settings=cluster_machine_settings())
    _report(f"LayoutsAgree ({mode})")


@pytest.mark.parametrize("mode", ["tagged", "sharded"])
def test_expiring_cluster_models_agree_with_oracle(sync_cluster: Any, mode: str) -> None:
    cluster = sync_cluster
    subjects = make_subjects(cluster, expire=3600, cluster=mode)
    STATS.clear()
    run_state_machine_as_test(
        lambda: ExpiringLayoutsAgree(cluster, subjects), settings=cluster_machine_settings()
    )
    _report(f"ExpiringLayoutsAgree ({mode})")
