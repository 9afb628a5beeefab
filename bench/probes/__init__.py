"""Scripts the benchmarks run in a subprocess (``python -m bench.probes.NAME``), printing one JSON line."""
