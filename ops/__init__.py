"""Running Farmacy: settings, stores, logging, the composition root, benchmarks."""
