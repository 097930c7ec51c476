"""A job's ``settings.exploration``: validated by the schema, passed to the fit."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from gan2x.service.schemas import JobSettings
from gan2x.pipeline import build_request


def _request(settings: JobSettings):
    # as the worker does (service.worker.job_request): the stored source and settings, merged
    return build_request({"kind": "sample", "seed": 1, **settings.model_dump(), "generator": "synthetic:faces",
                          "device": "cpu"})


def test_exploration_is_validated_and_reaches_the_fit_overrides():
    assert JobSettings().exploration is None
    assert "exploration" not in _request(JobSettings()).fit_overrides          # the preset's
    for value in ("projection", "style_mixing", "mixed"):
        assert _request(JobSettings(exploration=value)).fit_overrides == {"exploration": value}
    with pytest.raises(ValidationError, match="exploration"):
        JobSettings(exploration="sideways")
    # a job stored before the field existed still reads
    stored = JobSettings().model_dump()
    del stored["exploration"]
    assert JobSettings(**stored).exploration is None
