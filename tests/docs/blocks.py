"""Read the fenced blocks of the documentation pages and run the Python ones.

The pages: ``README.md``, ``ARCHITECTURE.md`` and ``CONTRIBUTING.md`` when they exist, and
every ``docs/*.md``. A new page is picked up without touching the tests.

How a page runs (the *preamble*, stated in ``tests/README.md`` and ``docs/index.md``):

- its ```python blocks run in order, in one namespace shared by the page, so a block may
  use what an earlier block of the same page defined (and nothing from another page);
- while they run, ``redis.Redis`` / ``redis.StrictRedis`` are ``fakeredis.FakeRedis``
  subclasses on one ``FakeServer`` per page, and ``redis.asyncio.Redis`` /
  ``redis.asyncio.StrictRedis`` are ``fakeredis.FakeAsyncRedis`` subclasses on the same
  server; ``from_url(...)`` works too, as do ``redis.from_url`` and
  ``redis.asyncio.from_url`` (any URL: it is the page's fake server);
  ``redis.cluster.RedisCluster`` / ``redis.asyncio.RedisCluster`` (and their
  ``redis.RedisCluster`` spellings) are the slot-checking fakeredis of tests/cluster.py
  on the same server, so a page's cluster examples must be cluster-safe. Nothing else
  is defined for the blocks;
- top-level ``await`` works: a block is compiled with ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``
  and its coroutine runs in one event loop kept for the page;
- a block whose first line starts with ``>>>`` is a doctest: each example runs in the
  page's namespace and what it prints (or the exception it raises) is compared with
  the output shown, ``...`` matching any text (doctest's ELLIPSIS);
- ```bash / ```sh / ```text blocks (and the other languages in ``SHOWN``) are not run;
- a ```python block that cannot run is preceded by ``<!-- not run: reason -->`` (the
  last non-blank line before its fence); ``test_doc_blocks.py`` lists those blocks and
  keeps them rare.
"""

from __future__ import annotations

import ast
import asyncio
import doctest
import inspect
import io
import re
import traceback
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster

from tests.cluster import AsyncSlotChecked, SlotChecked

ROOT = Path(__file__).resolve().parents[2]

#: fence languages whose blocks run
RUN = frozenset({"python", "py", "pycon"})
#: fence languages shown, never run
SHOWN = frozenset({"bash", "sh", "shell", "console", "text", "toml", "ini", "json", "yaml", "lua", "diff"})

NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->$")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


def pages() -> list[Path]:
    """Every documentation page, as a path relative to the repository root."""
    found = [
        Path(name) for name in ("README.md", "ARCHITECTURE.md", "CONTRIBUTING.md") if (ROOT / name).exists()
    ]
    found += sorted(p.relative_to(ROOT) for p in (ROOT / "docs").glob("*.md"))
    return found


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: Path
    #: 1-based line of the opening fence
    line: int
    #: the fence's language, lower-case ("" when none)
    lang: str
    #: the block's text, dedented by the fence's indentation
    code: str
    #: the reason given by a ``<!-- not run: ... -->`` marker right before the fence
    not_run: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.lang in RUN and self.not_run is None

    @property
    def is_doctest(self) -> bool:
        return self.code.lstrip().startswith(">>>")


def blocks(page: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of ``page`` (or of ``text``, as if it were that page) in order;
    nested fences are not supported."""
    if text is None:
        text = (ROOT / page).read_text(encoding="utf-8")
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        info = opening["info"].strip()
        lang = info.split()[0].strip("{}.").lower() if info else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            closing = FENCE.match(lines[i])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        else:
            msg = f"{page}:{start + 1}: the fence opened here is never closed"
            raise ValueError(msg)
        i += 1
        before = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        marker = NOT_RUN.match(before)
        found.append(
            Block(page, start + 1, lang, "\n".join(body) + "\n", marker["reason"] if marker else None)
        )
    return found


# -- the preamble -------------------------------------------------------------------------------


def _on_server(base: type, server: fakeredis.FakeServer, name: str) -> Any:
    """A subclass of ``base`` (a fakeredis client class) whose clients all use ``server``:
    what ``redis.Redis`` / ``redis.asyncio.Redis`` resolve to on a page."""

    class OnServer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["server"] = server
            super().__init__(*args, **kwargs)

        @classmethod
        def from_url(cls, url: str, **kwargs: Any) -> Any:
            kwargs["server"] = server
            return super().from_url(url, **kwargs)

    OnServer.__name__ = OnServer.__qualname__ = name
    OnServer.__doc__ = f"``{name}`` of this page: a {base.__name__} on the page's server."
    return OnServer


@contextmanager
def fake_redis(monkeypatch: pytest.MonkeyPatch) -> Iterator[fakeredis.FakeServer]:
    """``redis.Redis`` & co. resolve to fakeredis clients of one new ``FakeServer`` while
    the context lasts (module attributes patched, so ``from redis import Redis`` inside
    a block gets the fake)."""
    server = fakeredis.FakeServer()

    Redis = _on_server(fakeredis.FakeRedis, server, "Redis")
    AsyncRedis = _on_server(fakeredis.FakeAsyncRedis, server, "AsyncRedis")
    RedisCluster = _on_server(SlotChecked, server, "RedisCluster")
    AsyncRedisCluster = _on_server(AsyncSlotChecked, server, "RedisCluster")

    with monkeypatch.context() as patch:
        patch.setattr(redis, "Redis", Redis)
        patch.setattr(redis, "StrictRedis", Redis)
        patch.setattr(redis.asyncio, "Redis", AsyncRedis)
        patch.setattr(redis.asyncio, "StrictRedis", AsyncRedis)
        patch.setattr(redis, "from_url", Redis.from_url)
        patch.setattr(redis.asyncio, "from_url", AsyncRedis.from_url)
        for module in (redis, redis.cluster):
            patch.setattr(module, "RedisCluster", RedisCluster)
        for module in (redis.asyncio, redis.asyncio.cluster):
            patch.setattr(module, "RedisCluster", AsyncRedisCluster)
        yield server


# -- running ------------------------------------------------------------------------------------


class DocBlockError(AssertionError):
    """A block of a page failed; the message names the page and the line."""


def _traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the page's own frames on (the runner's are left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


class Page:
    """Runs the blocks of one page in order, in one namespace and one event loop."""

    def __init__(self, page: Path) -> None:
        self.page = page
        self.path = str(ROOT / page)
        self.namespace: dict[str, Any] = {"__name__": f"docs.{page.stem}"}
        self.loop = asyncio.new_event_loop()

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def _compile(self, source: str, line: int, mode: str) -> Any:
        # Padded so that tracebacks give the line numbers of the Markdown file (and
        # linecache shows its lines).
        return compile("\n" * (line - 1) + source, self.path, mode, flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)

    def _exec(self, source: str, line: int, mode: str) -> None:
        code = self._compile(source, line, mode)
        result = eval(code, self.namespace)
        if code.co_flags & inspect.CO_COROUTINE:
            self.loop.run_until_complete(result)

    def run(self, block: Block) -> None:
        """Run one block (a doctest compares its outputs).

        Raises:
            DocBlockError: naming ``page:line`` of the block (and of the example).
        """
        if block.is_doctest:
            self._doctest(block)
            return
        try:
            self._exec(block.code, block.line + 1, "exec")
        except Exception as exc:
            msg = f"{block.where}: the python block raised {type(exc).__name__}: {exc}\n{_traceback(exc)}"
            raise DocBlockError(msg) from exc

    def _doctest(self, block: Block) -> None:
        checker = doctest.OutputChecker()
        flags = doctest.ELLIPSIS
        for example in doctest.DocTestParser().get_examples(block.code):
            line = block.line + 1 + example.lineno
            out = io.StringIO()
            try:
                with redirect_stdout(out):
                    self._exec(example.source, line, "single")
            except Exception as exc:
                if example.exc_msg is None:
                    msg = f"{self.page}:{line}: the example raised {type(exc).__name__}: {exc}\n"
                    raise DocBlockError(msg + _traceback(exc)) from exc
                # "NotFound: ..." as well as "redis_schematics.exceptions.NotFound: ..."
                got = traceback.format_exception_only(type(exc), exc)[-1]
                short = f"{type(exc).__name__}: {exc}\n"
                if not any(checker.check_output(example.exc_msg, g, flags) for g in (got, short)):
                    msg = (
                        f"{self.page}:{line}: the example raised\n{got}but the page shows\n{example.exc_msg}"
                    )
                    raise DocBlockError(msg) from exc
                continue
            if example.exc_msg is not None:
                msg = f"{self.page}:{line}: the page shows an exception, but the example printed\n"
                raise DocBlockError(msg + out.getvalue())
            if not checker.check_output(example.want, out.getvalue(), flags):
                msg = f"{self.page}:{line}: " + checker.output_difference(example, out.getvalue(), flags)
                raise DocBlockError(msg)


@contextmanager
def ran_page(page: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Run every block of ``page`` in order on the page's fake server (the preamble);
    the namespace they left, while the block lasts (the server stays up)."""
    runner = Page(page)
    try:
        with fake_redis(monkeypatch):
            for block in blocks(page):
                if block.runs:
                    runner.run(block)
            yield runner.namespace
    finally:
        runner.close()
