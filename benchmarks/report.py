"""Result rows, the printed table, ``benchmarks.json`` and the optional ``benchmarks.png``."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """A goal from the project's issues: ``on`` ("ratio" or "value") ``op`` ``bound``."""

    on: str
    op: str
    bound: float

    def check(self, value: float | None, ratio: float | None) -> bool | None:
        actual = ratio if self.on == "ratio" else value
        if actual is None:
            return None
        return _OPS[self.op](actual, self.bound)

    def __str__(self) -> str:
        if self.on == "ratio":
            return f"{self.op} {_ratio_text(self.bound)}"
        return f"{self.op} {self.bound:,.0f}"


@dataclass
class Row:
    """One measured figure and what it is compared with in the same run.

    ``unit``: "s" (seconds per operation; smaller is better), "obj/s" (throughput) or
    "B/obj" (bytes of Redis memory per object). ``ratio`` = value / baseline_value.
    """

    section: str
    case: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    target: Target | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.check(self.value, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = None if self.target is None else str(self.target)
        out["target_spec"] = None if self.target is None else asdict(self.target)
        out["ratio"] = self.ratio
        out["met"] = self.met
        return out


def _ratio_text(ratio: float) -> str:
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"1/{1 / ratio:.0f}" if ratio > 0 else "0x"


def quantity(value: float | None, unit: str) -> str:
    """``value`` in ``unit`` for people: 12.3 us, 45,000 obj/s, 512 B."""
    if value is None:
        return ""
    if unit == "s":
        for scale, name in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if value >= scale:
                return f"{value / scale:.3g} {name}" if value / scale < 100 else f"{value / scale:.0f} {name}"
        return f"{value * 1e9:.0f} ns"
    if unit == "obj/s":
        return f"{value:,.0f}/s"
    if unit == "B/obj":
        return f"{value:,.0f} B"
    return f"{value:.3g} {unit}"


WIDTHS = (54, 10, 40, 10, 7, 9, 3)


def table(rows: Sequence[Row]) -> str:
    """The rows as a plain-text table, one block per section."""
    head = ("case", "ours", "baseline (same run)", "baseline", "ratio", "target", "met")
    lines = [_line(head), _line(tuple("-" * w for w in WIDTHS))]
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            lines.append(f"[{section}]")
        ratio = row.ratio
        met = row.met
        cells = (
            "  " + row.case,
            quantity(row.value, row.unit),
            row.baseline or "",
            quantity(row.baseline_value, row.unit),
            "" if ratio is None else _ratio_text(ratio),
            "" if row.target is None else str(row.target),
            "" if met is None else ("yes" if met else "NO"),
        )
        lines.append(_line(cells))
        if row.note:
            lines.append("      " + row.note)
    return "\n".join(lines)


def _line(cells: Sequence[str]) -> str:
    out = []
    for i, (cell, width) in enumerate(zip(cells, WIDTHS, strict=True)):
        right = i in (1, 3, 4)
        out.append(cell.rjust(width) if right else cell.ljust(width))
    return " ".join(out).rstrip()


def markdown(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table (for docs/benchmarks.md)."""
    lines = [
        "| section | case | ours | baseline (same run) | baseline | ratio | target | met |",
        "|---|---|---:|---|---:|---:|---|---|",
    ]
    for row in rows:
        ratio = row.ratio
        met = row.met
        lines.append(
            "| "
            + " | ".join(
                [
                    row.section,
                    row.case.replace("|", "\\|"),
                    quantity(row.value, row.unit),
                    (row.baseline or "").replace("|", "\\|"),
                    quantity(row.baseline_value, row.unit),
                    "" if ratio is None else _ratio_text(ratio),
                    "" if row.target is None else str(row.target),
                    "" if met is None else ("yes" if met else "**no**"),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def _parse_target(text: str | None) -> dict[str, Any] | None:
    """Inverse of ``str(Target)`` (for files written before ``target_spec`` existed)."""
    if not text:
        return None
    op, bound = text.split(" ", 1)
    if bound.startswith("1/"):
        return {"on": "ratio", "op": op, "bound": 1 / float(bound[2:])}
    if bound.endswith("x"):
        return {"on": "ratio", "op": op, "bound": float(bound[:-1])}
    return {"on": "value", "op": op, "bound": float(bound.replace(",", ""))}


def rows_from_json(path: Path) -> list[Row]:
    """The rows of a ``benchmarks.json`` written by :func:`write_json`."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for item in doc["rows"]:
        spec = item.get("target_spec") or _parse_target(item.get("target"))
        rows.append(
            Row(
                item["section"],
                item["case"],
                item["value"],
                item["unit"],
                item["baseline"],
                item["baseline_value"],
                None if spec is None else Target(**spec),
                item.get("note", ""),
                item.get("extra", {}),
            )
        )
    return rows


def write_json(path: Path, meta: dict[str, Any], rows: Sequence[Row], series: dict[str, Any]) -> None:
    doc = {"meta": meta, "rows": [r.as_dict() for r in rows], "series": series}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")


def _chart_label(row: Row) -> str:
    label = f"{row.section[2:]}: {row.case}"
    if len(label) > 60:
        label = label[:57] + "..."
    label += f"\nvs {row.baseline}"
    if row.target is not None and row.target.on == "value":
        label += f" ({quantity(row.value, row.unit)}; target {row.target})"
    return label


def write_png(path: Path, rows: Sequence[Row], series: dict[str, Any]) -> bool:
    """Draw the ratios and the scale curves; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator
    except ImportError:
        return False

    rated = [r for r in rows if r.ratio is not None]
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(15, max(5.0, 0.45 * len(rated) + 1.5)), gridspec_kw={"width_ratios": [3, 2]}
    )
    labels = [_chart_label(r) for r in rated]
    ratios = [r.ratio or 0.0 for r in rated]
    colours = [{True: "tab:green", False: "tab:red", None: "tab:gray"}[r.met] for r in rated]
    ys = list(range(len(rated)))[::-1]
    left.barh(ys, ratios, color=colours)
    for y, r in zip(ys, rated, strict=True):
        if r.target is not None and r.target.on == "ratio":
            left.plot([r.target.bound], [y], marker="|", color="black", markersize=14)
    left.set_yticks(ys, labels, fontsize=7)
    left.set_xscale("log")
    left.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}x"))
    left.xaxis.set_minor_formatter(FuncFormatter(lambda _x, _pos: ""))
    left.axvline(1.0, color="black", linewidth=0.5)
    left.set_xlabel("ratio to the baseline of the same run (log; | = target)")
    left.set_title("green: target met, red: missed, grey: no target")

    for name, points in series.get("scale", {}).items():
        ns = sorted(int(n) for n in points)
        right.plot(ns, [points[str(n)] * 1e3 for n in ns], marker="o", label=name)
    right.set_xscale("log")
    right.set_yscale("log")
    right.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    right.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    right.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))
    right.yaxis.set_minor_formatter(FuncFormatter(lambda _y, _pos: ""))
    right.set_xlabel("objects stored (N)")
    right.set_ylabel("ms per query")
    right.set_title("range query, fixed result size, growing N")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


if __name__ == "__main__":
    # python -m benchmarks.report docs/benchmarks.json: the Markdown table for docs/benchmarks.md
    import sys

    print(markdown(rows_from_json(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/benchmarks.json"))))
