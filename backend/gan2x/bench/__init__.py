"""Quality metrics and benchmarks against ground truth."""
