"""The drivers below the engine: scripts are loaded again when the server forgot them
(SCRIPT FLUSH, a restart, a failover), for single calls and inside pipelines."""

from __future__ import annotations

from typing import Any

from tests.models import ice_cream
from tests.recorder import Recorder


def test_every_path_survives_a_script_flush(layout: type, client: Any) -> None:
    model = ice_cream(layout, client, expire=600)  # expiring: reads are pipelines (+ TIME)
    model.set_many([model({"id": f"v{i}", "flavour": "vanilla", "amount_kg": i}) for i in range(5)])
    model.filter(flavour="vanilla", amount_kg__gte=1)
    recorder = Recorder(client)
    for step in range(4):
        client.script_flush()
        recorder.reset()
        if step == 0:
            model({"id": "v9", "flavour": "mint", "amount_kg": 9}).set()  # apply_write
        elif step == 1:
            assert model.match_for_pk("v9").flavour == "mint"  # read (read_fields in a pipeline)
        elif step == 2:
            assert model.count(flavour="vanilla", amount_kg__gte=1) == 4  # run_query
        else:
            assert [o.id for o in model.query(flavour="vanilla").order_by("-amount_kg").limit(2)] == [
                "v4",
                "v3",
            ]
        scripted = step != 1 or model._engine().layout.writes_fields  # Simple/Hash read with MGET/HMGET
        if scripted:
            assert "SCRIPT LOAD" in recorder.names  # the driver loaded what the server had forgotten
    assert model.check_indexes() == []
