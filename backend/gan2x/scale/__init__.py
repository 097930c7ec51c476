"""Many reconstructions on a Ray cluster: ``gan2x batch`` (docs/scale.md).

One concern per module; only ``ray_runner`` imports Ray, and only when a
batch runs (Ray is the optional extra ``gan2x[ray]``):

* ``items``: what to convert: ``BatchItem`` (a generator's seed or an
  image, and the name of its bundle), read from ``--seeds``, ``--images``
  (a folder or a list file) or ``--items`` (JSON lines, a generator each);
* ``outputs``: the output folder shared by every node: whether an item's
  bundle is already there (resume), stale temporary folders of a killed
  write, the log of each item's attempts;
* ``task``: one item in a worker process, no Ray: the cached generator
  loader, torch threads, the fit (``pipeline.reconstruct`` or
  ``reconstruct_image``), transient errors and their retries, the result;
* ``ray_runner``: the connection (local, auto, an address), one Ray task per
  item with its resources and ``max_retries``, a board of started items,
  waiting and cancelling;
* ``summary``: ``summary.json`` and the table printed at the end;
* ``batch``: the driver: skip what is done, submit the rest, the progress
  bar, Ctrl-C, the summary.
"""
