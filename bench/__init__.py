"""Side-by-side benchmarks for aestudio; ``python -m bench`` writes docs/BENCHMARKS.md.

Each benchmark is one module in :mod:`bench.benchmarks` exposing ``TITLE``,
``ABOUT`` (markdown: what is measured, how, and the target) and
``run(ctx) -> list[Row]``. The runner (:mod:`bench.runner`) discovers them,
runs them, prints a table and rewrites the report. Nothing here is imported by
the package or by its tests: speed belongs here, not in timed assertions.
"""
