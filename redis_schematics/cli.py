"""``redis-schematics``: the admin functions (``redis_schematics.admin``) from a shell.

    redis-schematics [--url URL] COMMAND module[:Model] [options]

Commands: ``check``, ``repair``, ``reindex``, ``purge-expired``, ``stats``,
``export``, ``import``. ``module`` alone means every model defined in that module.
Exit codes: 0 ok, 1 problems found (or lines refused by ``import``), 2 usage error,
3 connection or authentication error. Only the standard library is used (argparse,
and a progress bar drawn on stderr when it is a terminal).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from redis_schematics import admin
from redis_schematics.models import BaseRedisMixin

OK, PROBLEMS, USAGE, CONNECTION = 0, 1, 2, 3
COMMANDS = ("check", "repair", "reindex", "purge-expired", "stats", "export", "import")
#: what changes or deletes data, and so asks for --yes (or a confirmation on a terminal)
DESTRUCTIVE = frozenset({"repair", "reindex", "purge-expired", "import"})


class UsageError(Exception):
    """A bad target or option: exit code 2, the message on stderr."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="Redis URL (default: each model's own __redis_client__)")
    common.add_argument("--cluster", action="store_true", help="the URL is a Redis Cluster node")
    common.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    common.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    common.add_argument("--dry-run", action="store_true", help="say what would be written; write nothing")
    common.add_argument("--yes", action="store_true", help="do not ask before changing or deleting data")
    common.add_argument("--batch-size", type=int, default=500, help="objects per round trip (default 500)")
    common.add_argument("--max-ops-per-sec", type=float, default=None, help="throttle, objects per second")
    parser = argparse.ArgumentParser(
        prog="redis-schematics",
        description="Check, repair, reindex, purge, measure, export and import redis-schematics models.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    helps = {
        "check": "report every inconsistency between objects and indexes",
        "repair": "fix what check finds (guarded; safe while the application writes)",
        "reindex": "build indexes declared after data was stored, mark them complete",
        "purge-expired": "remove expired objects and their index entries",
        "stats": "objects, index cardinalities, memory per object, TTL spread",
        "export": "write every object as a JSON line",
        "import": "read JSON lines back through set_many (validated)",
    }
    for name in COMMANDS:
        p = sub.add_parser(name, help=helps[name], parents=[common])
        p.add_argument("target", metavar="module[:Model]")
        if name == "export":
            p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
        if name == "import":
            p.add_argument("file", help="JSON lines file ('-': stdin)")
    return parser


def resolve(target: str) -> list[type]:
    """The models ``module:Model`` (or every model defined in ``module``) names.

    Raises:
        UsageError: the module cannot be imported, or names no model.
    """
    module_name, _, attr = target.partition(":")
    if not module_name:
        msg = f"target {target!r}: expected module:Model or module (e.g. myapp.models:IceCream)"
        raise UsageError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = f"target {target!r}: cannot import module {module_name!r} ({exc}); expected module:Model"
        raise UsageError(msg) from exc
    if attr:
        found: Any = module
        for part in attr.split("."):
            found = getattr(found, part, None)
        if not (isinstance(found, type) and issubclass(found, BaseRedisMixin)):
            names = ", ".join(m.__name__ for m in _models_of(module)) or "none"
            msg = f"target {target!r}: {module_name} has no redis-schematics model {attr!r} (models: {names})"
            raise UsageError(msg)
        return [found]
    models = _models_of(module)
    if not models:
        msg = f"target {target!r}: {module_name} defines no redis-schematics model (expected module:Model)"
        raise UsageError(msg)
    return models


def _models_of(module: Any) -> list[type]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, BaseRedisMixin)
        and value.__module__ == module.__name__
        and hasattr(value, "_fields")
        and getattr(value, "_fields", None)
    ]


class Bar:
    """A one-line progress bar redrawn on a terminal (``\\r``), finished by :meth:`end`."""

    WIDTH = 30

    def __init__(self, stream: IO[str], label: str, enabled: bool) -> None:
        self.stream = stream
        self.label = label
        self.enabled = enabled
        self.started = self.phase_started = time.monotonic()
        self.drawn = 0.0
        self.phase = ""
        self.done = 0

    def __call__(self, phase: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if phase != self.phase or done < self.done:  # a new phase: its own rate and ETA
            self.phase, self.phase_started = phase, now
        self.done = done
        if now - self.drawn < 0.1 and done < total:
            return
        self.drawn = now
        elapsed = max(now - self.phase_started, 1e-9)
        if total > 0:
            share = min(done / total, 1.0)
            filled = int(share * self.WIDTH)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            line = f"{self.label} {phase:<7} [{bar}] {share:4.0%} {done}/{total}"
            if elapsed >= 0.5 and done:  # a rate measured over less than that is noise
                rate = done / elapsed
                line += f" {rate:,.0f}/s ETA {(total - done) / rate:.0f} s"
        else:
            line = f"{self.label} {phase:<7} {done} done"
        self.stream.write("\r" + line + "\033[K")
        self.stream.flush()

    def end(self, summary: str) -> None:
        if self.enabled:
            self.stream.write(f"\r{self.label}: {summary} in {time.monotonic() - self.started:.1f} s\033[K\n")
            self.stream.flush()


def _summary(report: admin.Report) -> str:
    data = report.to_json()
    if isinstance(report, admin.CheckReport):
        if report.ok:
            return f"ok, {report.objects} objects, no problem"
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items()))
        return f"{len(report.problems)} problems ({kinds})"
    if isinstance(report, admin.RepairReport):
        verb = "would repair" if report.dry_run else "repaired"
        left = f", {len(report.left)} problems left" if report.left else ""
        pending = f", not complete: {', '.join(report.not_complete)}" if report.not_complete else ""
        return f"{verb} {report.repaired} objects, {len(report.removed_keys)} stale keys{pending}{left}"
    if isinstance(report, admin.PurgeReport):
        if report.dry_run:
            return f"{report.expired} expired objects would be purged"
        return f"purged {report.purged} expired objects"
    if isinstance(report, admin.StatsReport):
        per = "?" if report.bytes_per_object is None else f"{report.bytes_per_object:.0f} B"
        return f"{report.objects} objects, {len(report.indexes)} indexes, {per} per object"
    if isinstance(report, admin.ExportReport):
        return f"exported {report.exported} objects"
    if isinstance(report, admin.ImportReport):
        verb = "validated" if report.dry_run else "imported"
        refused = f", {len(report.refused)} lines refused" if report.refused else ""
        return f"{verb} {report.imported} objects{refused}"
    return json.dumps(data)


def _details(report: admin.Report) -> list[str]:
    lines: list[str] = []
    if isinstance(report, admin.CheckReport):
        lines += [f"  {p.kind}: {p.key} {p.member!r} {p.detail}".rstrip() for p in report.problems[:50]]
        if len(report.problems) > 50:
            lines.append(f"  ... and {len(report.problems) - 50} more (--json lists them all)")
    elif isinstance(report, admin.RepairReport):
        lines += [f"  found {n} {k}" for k, n in sorted(report.found.items())]
        lines += [f"  left {p.kind}: {p.key} {p.member!r} {p.detail}".rstrip() for p in report.left[:50]]
    elif isinstance(report, admin.StatsReport):
        for i in report.indexes:
            state = "complete" if i.complete else "NOT complete"
            values = "" if i.values is None else f", {i.values} values"
            top = ", ".join(f"{k} ({n})" for k, n in i.largest)
            lines.append(
                f"  {i.index}: {state}, {i.entries} entries{values}" + (f"; largest: {top}" if top else "")
            )
        if report.ttl_seconds is not None:
            lo, mid, hi = report.ttl_seconds
            lines.append(f"  time left: min {lo:.0f} s, median {mid:.0f} s, max {hi:.0f} s")
    elif isinstance(report, admin.ImportReport):
        lines += [f"  line {n}: {msg}" for n, msg in report.refused[:50]]
    return lines


def _confirm(args: argparse.Namespace, models: Sequence[type], stdin: IO[str], stderr: IO[str]) -> None:
    if args.command not in DESTRUCTIVE or args.dry_run or args.yes:
        return
    names = ", ".join(m.__name__ for m in models)
    if not stdin.isatty():
        msg = f"{args.command} changes data of {names}: pass --yes (or --dry-run to see what it would do)"
        raise UsageError(msg)
    stderr.write(f"{args.command} will change data of {names}. Proceed? [y/N] ")
    stderr.flush()
    if stdin.readline().strip().lower() not in ("y", "yes"):
        msg = "not confirmed; nothing was done"
        raise UsageError(msg)


def _connect(args: argparse.Namespace, models: Sequence[type]) -> None:
    if not args.url:
        return
    import redis
    from redis.cluster import RedisCluster

    client: Any = RedisCluster.from_url(args.url) if args.cluster else redis.Redis.from_url(args.url)
    for model in models:
        model.__redis_client__ = client  # type: ignore[attr-defined]


def _run_one(
    args: argparse.Namespace, model: type, progress: Callable[[str, int, int], None]
) -> admin.Report:
    command = args.command
    if command == "check":
        return admin.check(model, progress)
    if command in ("repair", "reindex"):
        fn = admin.repair if command == "repair" else admin.reindex
        return fn(model, progress, dry_run=args.dry_run, max_ops_per_sec=args.max_ops_per_sec)
    if command == "purge-expired":
        return admin.purge_expired(model, progress, dry_run=args.dry_run, batch_size=args.batch_size)
    if command == "stats":
        return admin.stats(model, progress)
    if command == "export":
        if args.output == "-":
            return admin.export(model, sys.stdout, progress, batch_size=args.batch_size)
        with open(args.output, "a", encoding="utf-8") as out:
            return admin.export(model, out, progress, batch_size=args.batch_size)
    if args.file == "-":
        return admin.import_(model, sys.stdin, progress, args.batch_size, args.dry_run, args.max_ops_per_sec)
    try:
        with open(args.file, encoding="utf-8") as lines:
            return admin.import_(model, lines, progress, args.batch_size, args.dry_run, args.max_ops_per_sec)
    except FileNotFoundError as exc:
        msg = f"import: no file {args.file!r}"
        raise UsageError(msg) from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the message
        return OK if exc.code == 0 else USAGE
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"redis-schematics: error: a command is expected, one of {', '.join(COMMANDS)}\n")
        return USAGE
    sys.path.insert(0, os.getcwd())  # targets are modules of the current project
    import redis

    try:
        models = resolve(args.target)
        if args.batch_size <= 0:
            msg = f"--batch-size must be a positive number of objects, not {args.batch_size}"
            raise UsageError(msg)
        if args.command == "export" and args.output == "-" and args.json:
            msg = "export writes the objects on stdout: with --json, give a file with -o"
            raise UsageError(msg)
        _confirm(args, models, sys.stdin, sys.stderr)
        _connect(args, models)
        code = OK
        reports = []
        for model in models:
            bar = Bar(
                sys.stderr, f"{args.command} {model.__name__}", sys.stderr.isatty() and not args.no_progress
            )
            report = _run_one(args, model, bar)
            bar.end(_summary(report))
            reports.append(report)
            if not report.ok:
                code = PROBLEMS
            if not args.json:
                out = sys.stderr if args.command == "export" else sys.stdout
                out.write(f"{model.__name__}: {_summary(report)}\n")
                for line in _details(report):
                    out.write(line + "\n")
        if args.json:
            data = [r.to_json() for r in reports]
            sys.stdout.write(json.dumps(data[0] if len(data) == 1 else data, default=str, indent=2) + "\n")
        return code
    except UsageError as exc:
        sys.stderr.write(f"redis-schematics: error: {exc}\n")
        return USAGE
    except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
        sys.stderr.write(f"redis-schematics: cannot reach Redis ({type(exc).__name__}: {exc})\n")
        return CONNECTION
    except redis.ResponseError as exc:
        if "NOAUTH" in str(exc) or "WRONGPASS" in str(exc) or "NOPERM" in str(exc):
            sys.stderr.write(f"redis-schematics: Redis refused the credentials ({exc})\n")
            return CONNECTION
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
