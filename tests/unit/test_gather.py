"""``io.gather``: several flows side by side, their reads of each round in one pipeline.

Run with a recording stand-in for a driver (no Redis): each request the gathered flow
yields is recorded and answered from a table, so the tests see exactly what would be
sent and in how many round trips.
"""

from __future__ import annotations

from typing import Any

import pytest

from redis_schematics.io import Command, Flow, Pipeline, RunScript, Sleep, gather


class Boom(Exception):
    pass


def drive(flow: Flow[Any], answer: Any) -> tuple[Any, list[Any]]:
    """Run ``flow``; ``answer(command_args)`` replies to each command (an Exception
    instance is an error reply). Returns (result, the requests yielded)."""
    sent: list[Any] = []
    reply: Any = None
    while True:
        try:
            request = flow.send(reply)
        except StopIteration as stop:
            return stop.value, sent
        sent.append(request)
        if isinstance(request, Pipeline):
            replies = [
                answer(part.args if isinstance(part, Command) else part.name) for part in request.requests
            ]
            if not request.errors:
                assert not any(isinstance(r, Exception) for r in replies)
            reply = replies
        elif isinstance(request, Command):
            reply = answer(request.args)
        else:
            reply = None


def two_gets(key: str) -> Flow[list[Any]]:
    first = yield Command(("GET", key))
    second = yield Command(("GET", key + "!"))
    return [first, second]


def echo(args: Any) -> Any:
    return args[-1] if isinstance(args, tuple) else args


def test_reads_of_one_round_share_one_pipeline() -> None:
    result, sent = drive(gather([two_gets("a"), two_gets("b"), two_gets("c")]), echo)
    assert result == [["a", "a!"], ["b", "b!"], ["c", "c!"]]
    assert [type(r) for r in sent] == [Pipeline, Pipeline]  # two rounds, whatever the flows
    assert [p.args for p in sent[0].requests] == [("GET", "a"), ("GET", "b"), ("GET", "c")]
    assert all(p.errors for p in sent)


def test_flows_of_different_lengths_finish_at_their_pace() -> None:
    def one(key: str) -> Flow[Any]:
        return (yield Command(("GET", key)))

    def none() -> Flow[str]:
        return "done"
        yield  # pragma: no cover

    result, sent = drive(gather([one("x"), two_gets("y"), none()]), echo)
    assert result == ["x", ["y", "y!"], "done"]
    assert type(sent[0]) is Pipeline
    assert len(sent[0].requests) == 2
    assert type(sent[1]) is Command  # one flow left: sent alone


def test_an_error_reply_goes_to_the_flow_that_asked() -> None:
    def careful(key: str) -> Flow[str]:
        try:
            yield Command(("GET", key))
        except Boom:
            return "caught"
        return "fine"

    def answer(args: Any) -> Any:
        return Boom() if args[1] == "bad" else "ok"

    result, _sent = drive(gather([careful("good"), careful("bad"), careful("good")]), answer)
    assert result == ["fine", "caught", "fine"]


def test_an_uncaught_error_reply_propagates() -> None:
    with pytest.raises(Boom):
        drive(gather([two_gets("a"), two_gets("bad")]), lambda args: Boom() if "bad" in args[1] else "ok")


def test_writes_and_sleeps_are_never_pipelined() -> None:
    def writes(key: str) -> Flow[Any]:
        yield RunScript("apply_write", [key], [])
        yield Sleep(0)
        return key

    result, sent = drive(gather([writes("a"), writes("b")]), echo)
    assert result == ["a", "b"]
    assert [type(r) for r in sent] == [RunScript, Sleep, RunScript, Sleep]  # one by one


def test_read_scripts_and_pipelines_are_merged_and_split_back() -> None:
    def mixed(key: str) -> Flow[Any]:
        return (yield Pipeline((Command(("GET", key)), RunScript("run_query", [key], []))))

    result, sent = drive(gather([mixed("a"), mixed("b")]), echo)
    assert result == [["a", "run_query"], ["b", "run_query"]]
    assert len(sent) == 1
    assert len(sent[0].requests) == 4
