"""The doc-block runner itself (tests/docs/blocks.py), on small pages written here."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis
import redis.asyncio

from tests.docs.blocks import DocBlockError, Page, blocks, fake_redis

pytestmark = pytest.mark.fake

PAGE = Path("docs/example.md")


def run(text: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    runner = Page(PAGE)
    try:
        with fake_redis(monkeypatch):
            for block in blocks(PAGE, text):
                if block.runs:
                    runner.run(block)
        return runner.namespace
    finally:
        runner.close()


ASYNC_PAGE = """# Async

```python
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from schematics import types

from redis_schematics import SimpleRedisModel


class IceCream(SimpleRedisModel):
    __redis_client__ = Redis()
    __redis_async_client__ = AsyncRedis()
    __indexes__ = ("flavour",)
    flavour = types.StringType()


await IceCream(dict(pk="v1", flavour="vanilla")).aset()
```

Some prose, then the next block sees what the first defined:

```python
>>> [ice.pk for ice in await IceCream.afilter(flavour="vanilla")]
['v1']
>>> IceCream.match_for_pk("v1").flavour  # the sync client sees the same fake server
'vanilla'
>>> await IceCream.acount()
1
```
"""


def test_top_level_await_and_one_fake_server_per_page(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = run(ASYNC_PAGE, monkeypatch)
    assert "IceCream" in namespace


def test_every_page_gets_its_own_server(monkeypatch: pytest.MonkeyPatch) -> None:
    run(ASYNC_PAGE, monkeypatch)
    run(ASYNC_PAGE, monkeypatch)  # stores v1 again, on a new server
    page = "```python\nfrom redis import Redis\n\nassert Redis().dbsize() == 0\n```\n"
    run(page, monkeypatch)


def test_a_failing_block_names_the_page_and_line(monkeypatch: pytest.MonkeyPatch) -> None:
    page = "# Page\n\n```python\nx = 1\n```\n\ntext\n\n```python\ny = x + undefined\n```\n"
    with pytest.raises(DocBlockError, match=r"^docs/example\.md:9: the python block raised NameError"):
        run(page, monkeypatch)


def test_a_doctest_compares_the_output_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    page = "# Page\n\n```python\n>>> 1 + 1\n2\n>>> print('a\\nb')\na\nc\n```\n"
    with pytest.raises(DocBlockError, match=r"^docs/example\.md:6: ") as info:
        run(page, monkeypatch)
    assert "Expected:" in str(info.value)
    assert "Got:" in str(info.value)


def test_a_doctest_compares_an_exception_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    page = (
        "```python\n>>> from redis_schematics import NotFound\n"
        ">>> raise NotFound('IceCream: gone')\nTraceback (most recent call last):\n...\n"
        "NotFound: IceCream: gone\n```\n"
    )
    run(page, monkeypatch)
    with pytest.raises(DocBlockError, match="the example raised"):
        run(page.replace("NotFound: IceCream: gone", "NotFound: IceCream: here"), monkeypatch)


def test_ellipsis_matches_any_text(monkeypatch: pytest.MonkeyPatch) -> None:
    run("```python\n>>> print('a long line')\na ... line\n```\n", monkeypatch)


def test_shell_text_and_marked_blocks_are_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    page = (
        "```bash\nexit 1\n```\n\n```text\nnot python\n```\n\n"
        "<!-- not run: needs a cluster -->\n\n```python\nraise SystemExit\n```\n"
    )
    found = blocks(PAGE, page)
    assert [(b.lang, b.runs, b.not_run) for b in found] == [
        ("bash", False, None),
        ("text", False, None),
        ("python", False, "needs a cluster"),
    ]
    run(page, monkeypatch)


def test_indented_blocks_are_dedented_and_keep_their_line(monkeypatch: pytest.MonkeyPatch) -> None:
    page = "- a list item:\n\n    ```python\n    x = 1\n    y = x + 1\n    ```\n"
    (block,) = blocks(PAGE, page)
    assert (block.line, block.code) == (3, "x = 1\ny = x + 1\n")
    assert run(page, monkeypatch)["y"] == 2


def test_from_url_gives_the_page_server_whatever_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    page = """```python
import redis
import redis.asyncio

redis.Redis.from_url("rediss://user:secret@db.example:6380/0", socket_timeout=5).set("k", "1")
assert redis.from_url("redis://localhost/0").get("k") == b"1"
assert redis.StrictRedis(host="elsewhere").get("k") == b"1"
assert await redis.asyncio.from_url("redis://localhost/0").get("k") == b"1"
assert await redis.asyncio.Redis().get("k") == b"1"
```
"""
    run(page, monkeypatch)


def test_redis_is_restored_after_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    before = (redis.Redis, redis.StrictRedis, redis.asyncio.Redis, redis.from_url, redis.asyncio.from_url)
    run(ASYNC_PAGE, monkeypatch)
    assert (
        redis.Redis,
        redis.StrictRedis,
        redis.asyncio.Redis,
        redis.from_url,
        redis.asyncio.from_url,
    ) == before
