"""Render benchmark results: a plain-text table for the terminal, markdown for docs/BENCHMARKS.md.

The report keeps one marked section per benchmark. A run with ``--only`` replaces
just the sections it ran and keeps the others as they were (each section states
when it was measured), so a partial run never erases earlier figures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from aestudio import _fs
from bench.harness import Figure, Row, Status

_SECTION = re.compile(r"<!-- bench:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n?", re.S)


@dataclass
class SectionResult:
    name: str
    title: str
    about: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    measured: str = ""  # when and how (date, quick or full)


def _fmt(value: Figure) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 1:
            return f"{value:.2f}"
        return f"{value:.4f}"
    return str(value)


def _columns(rows: list[Row]) -> list[str]:
    cols: list[str] = []
    for row in rows:
        cols += [k for k in row.figures if k not in cols]
    return cols


def _table(rows: list[Row]) -> tuple[list[str], list[list[str]]]:
    cols = _columns(rows)
    header = ["case", *cols, "target", "result"]
    body = []
    for r in rows:
        result = r.status.value + (f" ({r.note})" if r.note else "")
        body.append([r.case, *(_fmt(r.figures.get(c)) for c in cols), r.target or "–", result])
    return header, body


def console_table(section: SectionResult) -> str:
    header, body = _table(section.rows)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    out = [f"== {section.name}: {section.title} ({section.seconds:.0f} s)", line, "-" * len(line)]
    out += ["  ".join(c.ljust(w) for c, w in zip(b, widths, strict=True)) for b in body]
    return "\n".join(out)


def markdown_section(section: SectionResult) -> str:
    header, body = _table(section.rows)
    esc = [[c.replace("|", "\\|") for c in row] for row in body]
    parts = [
        f"## {section.title} (`{section.name}`)",
        "",
        section.about.strip(),
        "",
        f"*Measured {section.measured}; took {section.seconds:.0f} s.*",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in esc),
    ]
    for note in section.notes:
        parts += ["", note]
    return "\n".join(parts) + "\n"


def _header(machine: dict[str, str], command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench` (see `bench/`); do not edit by hand. Each section says",
        "what is measured, how, and the target, then the figures and a pass/fail verdict.",
        "Ratios are measured side by side in one run, interleaved, so background load hits",
        "both sides alike. Sections not re-run by the latest command keep their earlier",
        "figures and their own date.",
        "",
        f"Latest command: `{command}`",
        "",
        "| machine | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in machine.items()),
        "",
    ]
    return "\n".join(lines)


def _summary(sections: dict[str, str]) -> str:
    lines = ["| benchmark | pass | fail | other |", "|---|---|---|---|"]
    for name, body in sections.items():
        results = re.findall(r"\| (pass|FAIL|info|skip|ERROR)(?: \([^|]*\))? \|$", body, re.M)
        passed = results.count(Status.PASS.value)
        failed = results.count(Status.FAIL.value) + results.count(Status.ERROR.value)
        lines.append(f"| [{name}](#{name}) | {passed} | {failed} | {len(results) - passed - failed} |")
    return "\n".join(lines) + "\n"


def write_markdown(path: Path, machine: dict[str, str], command: str, new: list[SectionResult], order: list[str]) -> None:
    """Rewrite ``path``: fresh header, fresh sections for ``new``, earlier ones kept."""
    old: dict[str, str] = {}
    if path.exists():
        current = path.read_text(encoding="utf-8")
        old = {m["name"]: m["body"] for m in _SECTION.finditer(current)}
        # A section whose end marker a hand edit lost would be dropped whole by the rewrite: refuse instead.
        unclosed = sorted(set(re.findall(r"<!-- bench:([\w-]+) -->", current)) - set(old))
        if unclosed:
            raise ValueError(f"{path}: section(s) {', '.join(unclosed)} lack their '<!-- /bench:NAME -->' end marker; "
                             "add it after the section's last line, then run again (nothing was written)")
    fresh = {s.name: f'<a id="{s.name}"></a>\n\n' + markdown_section(s) for s in new}
    merged = {name: fresh.get(name, old.get(name)) for name in order + sorted(set(old) - set(order))}
    sections = {k: v for k, v in merged.items() if v}
    text = _header(machine, command) + "\n" + _summary(sections) + "\n"
    text += "\n".join(f"<!-- bench:{name} -->\n{body}<!-- /bench:{name} -->\n" for name, body in sections.items())
    atomic_write_text(path, text)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` atomically (aestudio's shared writer); readable by all, as docs are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _fs.atomic_write_text(path, text, mode=0o644)
