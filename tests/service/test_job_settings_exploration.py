"""A job's ``settings.exploration``: validated by the schema, passed to the fit."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from gan2x.service.schemas import JobSettings
from gan2x.service.worker import _reconstruction_request


def _request(settings: JobSettings):
    job = SimpleNamespace(settings=settings.model_dump(), source={"kind": "sample", "seed": 1})
    return _reconstruction_request(job, "cpu", "synthetic:faces")


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
