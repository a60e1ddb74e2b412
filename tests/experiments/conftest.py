"""A shared server for the experiment tests that only answer and read."""
from __future__ import annotations

import pytest

from experiment_project import ADMIN_KEY, make_rules
from helpers import BACKENDS, ServiceProcess, store_env


@pytest.fixture(scope="session", params=BACKENDS)
def experiments_to_read(request, tmp_path_factory):
    """One server per backend (one worker, an admin key) on the experiment
    project of `experiment_project.make_rules` as written: `split` (50/50 on
    channel 21), `holdout-test` (channel 22) running, `canary` a draft.

    Its tests, in several modules, are one
    `pytest.mark.xdist_group("experiments-to-read")`: a parallel run hands
    them all to one worker, which starts it once per backend.
    They may only ask for answers (a party's arm is a pure function of its id,
    so no earlier answer changes a later one), add reactions and leads to
    their own answers, explain and read listings. They never change its rules
    folder or experiments file (no start, stop, weights, promote), and never
    read what counts every answer stored (an experiment's report, metric
    totals): those tests start a server of their own (`make_server`)."""
    root = tmp_path_factory.mktemp("experiments-to-read")
    data_dir = root / "data"
    service = ServiceProcess(data_dir, rules_dir=make_rules(root / "project"),
                             env=store_env(request, {"RECO_ADMIN_KEYS": ADMIN_KEY})).start()
    yield service
    service.stop()
