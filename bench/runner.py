"""Discover the benchmark modules, run them, print a table, rewrite docs/BENCHMARKS.md.

Usage::

    python -m bench                         # everything, full sizes, rewrites the report
    python -m bench --only ort_vs_torch     # one benchmark (others keep their figures)
    python -m bench --quick --only digits_pca --no-write   # smoke test of the harness

A benchmark whose dependency is missing is reported as ``skip`` with the reason;
one that raises is reported as ``ERROR`` and the others still run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import shlex
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

import bench.benchmarks
from bench.harness import Context, Row, SkipBenchmark, Status
from bench.machine import machine_info
from bench.report import SectionResult, atomic_write_text, console_table, write_markdown

log = logging.getLogger("bench")

REPO = Path(__file__).resolve().parent.parent
REPORT = REPO / "docs" / "BENCHMARKS.md"


def discover() -> dict[str, ModuleType]:
    """Every module in :mod:`bench.benchmarks`, in ``ORDER`` then name order."""
    mods = []
    for info in pkgutil.iter_modules(bench.benchmarks.__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"bench.benchmarks.{info.name}")
        if callable(getattr(mod, "run", None)):
            mods.append(mod)
    mods.sort(key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
    return {m.__name__.rsplit(".", 1)[1]: m for m in mods}


def run_one(name: str, mod: ModuleType, ctx: Context) -> SectionResult:
    ctx.notes = []
    t0 = time.perf_counter()
    try:
        rows = list(mod.run(ctx))
    except SkipBenchmark as exc:
        rows = [Row("(all)", status=Status.SKIP, note=str(exc))]
    except ImportError as exc:
        # A dependency (another part of aestudio) has not landed: not a failure of the benchmark.
        rows = [Row("(all)", status=Status.SKIP, note=f"missing dependency: {exc}")]
    except Exception as exc:  # noqa: BLE001 - one broken benchmark must not stop the others
        log.error("benchmark %s raised:\n%s", name, traceback.format_exc())
        rows = [Row("(all)", status=Status.ERROR, note=f"{type(exc).__name__}: {exc}".splitlines()[0][:200])]
    seconds = time.perf_counter() - t0
    findings = getattr(mod, "FINDINGS", "").strip()
    if findings and not ctx.quick:
        # Analysis written by a person from earlier full runs: kept beside the fresh figures.
        ctx.note("**Findings** (analysis of the full runs; re-check against the table above):\n\n" + findings)
    mode = "with --quick (tiny sizes: not a measurement)" if ctx.quick else "at full size"
    return SectionResult(
        name=name,
        title=getattr(mod, "TITLE", name),
        about=getattr(mod, "ABOUT", ""),
        rows=rows,
        notes=list(ctx.notes),
        seconds=seconds,
        measured=f"{time.strftime('%Y-%m-%d %H:%M')} {mode}",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Run aestudio's benchmarks.")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test, not a measurement")
    w = p.add_mutually_exclusive_group()
    w.add_argument("--write", dest="write", action="store_true", default=None,
                   help="rewrite docs/BENCHMARKS.md and docs/figures (default unless --quick)")
    w.add_argument("--no-write", dest="write", action="store_false", help="leave docs/ untouched")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON here")
    p.add_argument("--keep-work", type=Path, metavar="DIR", help="keep runs and bundles in DIR (default: a temp dir, deleted)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.verbose == 0:
        logging.getLogger("bench").setLevel(logging.INFO)
    modules = discover()
    if args.list:
        for name, mod in modules.items():
            print(f"{name:18} {getattr(mod, 'TITLE', '')}")
        return 0
    selected = args.only or list(modules)
    unknown = [n for n in selected if n not in modules]
    if unknown:
        print(f"bench: unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(modules)}", file=sys.stderr)
        return 2
    write = (not args.quick) if args.write is None else args.write

    machine = machine_info()
    work = args.keep_work or Path(tempfile.mkdtemp(prefix="aestudio-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    figures = REPO / "docs" / "figures" if write else work / "figures"
    ctx = Context(quick=args.quick, repo=REPO, work_dir=work, figures_dir=figures, write_figures=write)
    results: list[SectionResult] = []
    try:
        for name in selected:
            log.info("running %s%s", name, " (quick)" if args.quick else "")
            section = run_one(name, modules[name], ctx)
            results.append(section)
            print(console_table(section), flush=True)
            print(flush=True)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)

    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    if write:
        write_markdown(REPORT, machine, command.strip(), results, list(modules))
        log.info("wrote %s", os.path.relpath(REPORT))
    if args.json:
        payload = {
            "machine": machine,
            "quick": args.quick,
            "benchmarks": {
                s.name: {"seconds": s.seconds, "rows": [
                    {"case": r.case, "figures": r.figures, "target": r.target, "status": r.status.value, "note": r.note}
                    for r in s.rows
                ]} for s in results
            },
        }
        atomic_write_text(args.json, json.dumps(payload, indent=2))
    bad = [s.name for s in results if any(r.status in (Status.ERROR,) for r in s.rows)]
    return 1 if bad else 0
