"""A shared server with recorded traffic for the decision-log tests that
only read it."""
from __future__ import annotations

import pytest

from helpers import BACKENDS, Client, ServiceProcess, store_env
from test_impact_recorded import recorded_traffic, rules_with_new_version


@pytest.fixture(scope="session", params=BACKENDS)
def traffic(request, tmp_path_factory):
    """One server per backend on the rules of `rules_with_new_version` (the
    demo at 1.0.0 and a 1.1.0 whose R3 no longer answers channel 21), with
    the five answers of `recorded_traffic` (3 instant on channel 21, 1 on
    22, 1 stored query on 21); `.rules` is its rules folder.

    Its tests, in several modules, are one
    `pytest.mark.xdist_group("recorded-traffic")`, so a parallel run starts
    it once per backend. They only read what was recorded or send what
    must be refused: `rules diff`, `decisions export`, POST
    /admin/rules/impact, the conversion report. None of them records an
    answer, a reaction or a lead or changes the rules, so each one counts
    exactly those five answers, whichever ran before it."""
    root = tmp_path_factory.mktemp("recorded-traffic")
    rules = rules_with_new_version(root)
    server = ServiceProcess(root / "data", rules_dir=rules, env=store_env(request)).start()
    try:
        recorded_traffic(Client(server.url))
        server.rules = rules
        yield server
    finally:
        server.stop()
