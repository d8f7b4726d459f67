"""The ``redis-schematics`` command line, run as a user runs it: a subprocess (exit
codes, ``--json`` parsed, messages on stderr) and, for the progress bar, a terminal in
tmux (what the user sees, captured with ``capture-pane``). Against the real server: a
subprocess cannot share fakeredis."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.conftest import real_client

MODULE = textwrap.dedent(
    """
    import os

    import redis
    from schematics import types

    from redis_schematics import HashRedisModel, RangeIndex, SimpleRedisModel

    client = redis.Redis.from_url(os.environ["SHOP_URL"])
    NEW_INDEX = os.environ.get("SHOP_NEW_INDEX") == "1"


    class IceCream(SimpleRedisModel):
        __redis_client__ = client
        __indexes__ = ("flavour", RangeIndex("kg")) + (("shop",) if NEW_INDEX else ())
        flavour = types.StringType()
        shop = types.StringType()
        kg = types.IntType()


    class Cone(HashRedisModel):
        __redis_client__ = client
        __expire__ = 3600
        __indexes__ = ("size",)
        size = types.StringType()
    """
)


@pytest.fixture
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str, Any]:
    client = real_client(request.config)
    (tmp_path / "shop.py").write_text(MODULE)
    url = request.config.getoption("--redis-url")
    return tmp_path, url, client


def run(
    where: tuple[Path, str, Any], *args: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    path, url, _client = where
    environment = {**os.environ, "SHOP_URL": url, **env}
    return subprocess.run(
        [sys.executable, "-m", "redis_schematics", *args],
        cwd=path,
        env=environment,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fill(where: tuple[Path, str, Any], n: int, new_index: bool = False) -> None:
    path, url, _client = where
    code = (
        "import shop\n"
        f"shop.IceCream.set_many([shop.IceCream({{'pk': f'p{{i}}', 'flavour': 'ab'[i % 2], "
        f"'shop': f's{{i % 3}}', 'kg': i}}) for i in range({n})])\n"
        "shop.Cone.set_many([shop.Cone({'pk': f'c{i}', 'size': 'sm'[i % 2]}) for i in range(5)])\n"
    )
    env = {**os.environ, "SHOP_URL": url, "SHOP_NEW_INDEX": "1" if new_index else "0"}
    subprocess.run([sys.executable, "-c", code], cwd=path, env=env, check=True, timeout=120)


def test_check_ok_then_problems_with_json(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 50)
    ok = run(shop, "check", "shop:IceCream")
    assert ok.returncode == 0, ok.stderr
    assert "IceCream: ok, 50 objects, no problem" in ok.stdout
    shop[2].srem("IceCream#eq:flavour:a", "p0")
    bad = run(shop, "check", "shop:IceCream", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert report["counts"] == {"missing entry": 1}
    assert report["problems"][0]["member"] == "p0"


def test_a_module_means_every_model_in_it(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 10)
    out = run(shop, "stats", "shop", "--json")
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert [(r["model"], r["objects"]) for r in reports] == [("IceCream", 10), ("Cone", 5)]
    assert reports[1]["ttl_seconds"] is not None
    assert reports[0]["bytes_per_object"] > 0


def test_usage_errors_exit_2_and_say_what_was_expected(shop: tuple[Path, str, Any]) -> None:
    cases = {
        ("check", "nosuchmodule:X"): "cannot import module 'nosuchmodule'",
        ("check", "shop:Nope"): "no redis-schematics model 'Nope' (models: IceCream, Cone)",
        ("check", "json"): "defines no redis-schematics model",
        ("frobnicate", "shop"): "invalid choice: 'frobnicate'",
        ("stats", "shop", "--batch-size", "0"): "--batch-size must be a positive number",
        ("import", "shop:IceCream", "missing.jsonl", "--yes"): "no file 'missing.jsonl'",
    }
    for args, message in cases.items():
        out = run(shop, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert message in out.stderr, (args, out.stderr)
    assert run(shop).returncode == 2
    assert "a command is expected" in run(shop).stderr


def test_connection_errors_exit_3(shop: tuple[Path, str, Any]) -> None:
    out = run(shop, "check", "shop:IceCream", "--url", "redis://127.0.0.1:1/0")
    assert out.returncode == 3
    assert "cannot reach Redis" in out.stderr


def test_what_changes_data_asks_for_yes(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 20)
    shop[2].srem("IceCream#eq:flavour:a", "p0")
    refused = run(shop, "repair", "shop:IceCream")
    assert refused.returncode == 2
    assert "pass --yes" in refused.stderr
    assert not shop[2].sismember("IceCream#eq:flavour:a", "p0")
    dry = run(shop, "repair", "shop:IceCream", "--dry-run", "--json")
    assert dry.returncode == 1
    assert json.loads(dry.stdout)["repaired"] == 1
    assert not shop[2].sismember("IceCream#eq:flavour:a", "p0")
    done = run(shop, "repair", "shop:IceCream", "--yes")
    assert done.returncode == 0, done.stderr
    assert "repaired 1 objects" in done.stdout
    assert shop[2].sismember("IceCream#eq:flavour:a", "p0")


def test_export_and_import(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 30)
    exported = run(shop, "export", "shop:IceCream")
    assert exported.returncode == 0, exported.stderr
    lines = exported.stdout.splitlines()
    assert len(lines) == 30
    assert json.loads(lines[0])["flavour"] in ("a", "b")
    assert "exported 30 objects" in exported.stderr  # stdout holds only the objects
    (shop[0] / "dump.jsonl").write_text(exported.stdout + '{"pk": "bad", "kg": "x"}\n')
    shop[2].flushdb()
    imported = run(shop, "import", "shop:IceCream", "dump.jsonl", "--yes", "--json")
    assert imported.returncode == 1  # a line was refused
    report = json.loads(imported.stdout)
    assert report["imported"] == 30
    assert report["refused"][0][0] == 31
    assert shop[2].scard("IceCream#members") == 30
    assert not shop[2].exists("IceCream:bad")


def test_purge_expired_dry_run(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 5)
    out = run(shop, "purge-expired", "shop:Cone", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "0 expired objects would be purged" in out.stdout


def test_the_new_index_deploy_with_reindex(shop: tuple[Path, str, Any]) -> None:
    fill(shop, 300)
    new = {"SHOP_NEW_INDEX": "1"}
    before = run(shop, "check", "shop:IceCream", "--json", **new)
    assert before.returncode == 1
    kinds = json.loads(before.stdout)["counts"]
    assert kinds == {"index not complete": 1, "missing entry": 300}
    done = run(shop, "reindex", "shop:IceCream", "--yes", "--json", **new)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["repaired"] == 300
    assert "EqualityIndex('shop')" in report["complete"]
    assert run(shop, "check", "shop:IceCream", **new).returncode == 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_progress_bar_as_a_user_sees_it(shop: tuple[Path, str, Any]) -> None:
    """A long reindex in a real terminal: the bar is drawn (and redrawn in place) while
    it runs, and its last line says what was done."""
    path, url, _client = shop
    fill(shop, 20_000)
    session = f"rs-cli-{os.getpid()}"
    log = path / "done.txt"
    command = (
        f"cd {path} && SHOP_URL={url} SHOP_NEW_INDEX=1 {sys.executable} -m redis_schematics "
        f"reindex shop:IceCream --yes --max-ops-per-sec 15000; echo EXIT=$? > {log}"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "150", "-y", "20"], check=True)
    try:
        subprocess.run(["tmux", "send-keys", "-t", session, command, "Enter"], check=True)
        seen_bar = ""
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not log.exists():
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
            ).stdout
            if "reindex IceCream" in screen and "[#" in screen and "ETA" in screen:
                seen_bar = screen
            time.sleep(0.1)
        assert log.exists(), "the reindex did not finish in 90 s"
        assert log.read_text().strip() == "EXIT=0"
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
        ).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert seen_bar, "no progress bar was drawn while the reindex ran"
    bar_line = next(line for line in seen_bar.splitlines() if "[#" in line)
    assert "/20000" in bar_line or "/40000" in bar_line or "%" in bar_line
    final = [line for line in screen.splitlines() if line.startswith("reindex IceCream: ")]
    assert final, screen
    assert "repaired 20000 objects" in final[-1]
    assert final[-1].rstrip().endswith(" s")
    assert "IceCream: repaired 20000 objects" in screen  # the summary on stdout
    assert redis.Redis.from_url(url).scard("IceCream#members") == 20000
