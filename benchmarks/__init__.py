"""Benchmarks of redis-schematics, as ratios measured in one run.

Run ``python -m benchmarks --help`` (or see ``benchmarks/__main__.py`` and
``docs/benchmarks.md``). Every figure is compared with a baseline timed in the same run
(hand-written redis-py doing the same work, ``json.loads``, the scan path, N=1k), so the
ratios mean something on any machine even when absolute times do not.

Modules:

* ``server``   -- a throwaway ``redis-server`` on a free loopback port (or ``--url``);
* ``workload`` -- the seeded data set, the model factory and the ``LAYOUTS`` list;
* ``timing``   -- interleaved sampling, medians;
* ``cases``    -- the six sections (hydration, writes, reads by pk, filters, scale, memory);
* ``asyncbench`` -- section 7, the asyncio API against its sync twin;
* ``clusterbench`` -- section 8 (``--cluster``): sharded and hash-tagged models on a Redis
  Cluster against the same model on the single Redis;
* ``report``   -- the table, ``benchmarks.json`` and the optional ``benchmarks.png``.
"""
