"""Every ```python block of the documentation runs, a page's blocks in order.

See ``tests/docs/blocks.py`` for the preamble (a fake Redis server per page, top-level
``await``, doctest blocks compared) and the ``<!-- not run: reason -->`` marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.blocks import RUN, SHOWN, blocks, pages, ran_page

pytestmark = pytest.mark.fake

#: the most ```python blocks that may carry a ``<!-- not run: ... -->`` marker, all pages together
MAX_NOT_RUN = 2


@pytest.mark.parametrize("page", pages(), ids=str)
def test_page_blocks_run_in_order(page: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with ran_page(page, monkeypatch):
        pass  # each block ran; a failing one raised DocBlockError naming its page and line


def test_every_fence_names_a_known_language() -> None:
    """An unlabelled or misspelt fence would hide a Python block from the runner."""
    unknown = [
        f"{b.where}: {b.lang or '(none)'}" for p in pages() for b in blocks(p) if b.lang not in RUN | SHOWN
    ]
    assert not unknown, f"label these fences with one of {sorted(RUN | SHOWN)}:\n" + "\n".join(unknown)


def test_not_run_markers_are_rare_and_only_on_python_blocks() -> None:
    marked = [b for p in pages() for b in blocks(p) if b.not_run is not None]
    print("\n".join(f"not run: {b.where}: {b.not_run}" for b in marked) or "no block is marked not run")
    misplaced = [b.where for b in marked if b.lang not in RUN]
    assert not misplaced, (
        "a <!-- not run: ... --> marker belongs right before a ```python fence: " + ", ".join(misplaced)
    )
    assert len(marked) <= MAX_NOT_RUN, f"more than {MAX_NOT_RUN} blocks are not run; make them runnable"


def test_the_pages_have_python_blocks() -> None:
    """Guards the parser: if it stopped finding blocks, every page test would pass empty."""
    found = {str(p): sum(b.lang in RUN for b in blocks(p)) for p in pages()}
    assert found["README.md"] >= 2, found
    assert sum(found.values()) >= 19, found
