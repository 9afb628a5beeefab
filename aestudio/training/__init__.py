"""Training engine: fit() generator, losses, metrics, run folders."""
