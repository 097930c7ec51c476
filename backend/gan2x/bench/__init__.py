"""The benchmark runner (``gan2x bench``: ``run``, ``figure``), on top of
the product's own metrics (``gan2x.measure``, ``gan2x.evaluation``)."""
