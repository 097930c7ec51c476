"""Evaluation of a finished fit that needs the fit's own machinery (above
``fit``): the metrics without ground truth in ``consistency`` (projection
reach, novel-view GAN consistency), which project renders back into the
generator."""
