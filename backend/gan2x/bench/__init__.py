"""Quality metrics and benchmarks: against ground truth (``evaluate``) and without it (``consistency``)."""
