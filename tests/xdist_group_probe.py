"""Run only by tests/test_xdist_groups.py (its name is not test_*.py, so a
run of the suite does not collect it): four tests of one xdist_group, each
writing the worker it ran on to a file in XDIST_PROBE_DIR."""
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.xdist_group("probe")


@pytest.mark.parametrize("name", ["0", "1", "@2", "3"])      # a parameter may hold an "@"
def test_where_it_ran(name):
    Path(os.environ["XDIST_PROBE_DIR"], name).write_text(os.environ["PYTEST_XDIST_WORKER"])
