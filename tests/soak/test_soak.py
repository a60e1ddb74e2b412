"""The soak test (tests/soak/soak.py) under pytest, on demand only:

    RECO_SOAK_MINUTES=10 .venv/bin/python -m pytest tests/soak -s

Skipped in the default run (it takes minutes by design)."""
from __future__ import annotations

import json
import os

import pytest

from soak import soak

MINUTES = os.environ.get("RECO_SOAK_MINUTES")


@pytest.mark.skipif(not MINUTES, reason="on demand: set RECO_SOAK_MINUTES (docs/operations.md, Soak test)")
def test_soak():
    ok, report = soak(float(MINUTES), workers=int(os.environ.get("RECO_SOAK_WORKERS", "3")),
                      max_growth_mb=float(os.environ.get("RECO_SOAK_MAX_GROWTH_MB", "50")),
                      reload_every=30.0)
    print(json.dumps(report, indent=2))
    assert ok, report["problems"]
