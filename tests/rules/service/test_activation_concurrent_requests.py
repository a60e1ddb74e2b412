"""An activation is true for every request that follows it, also for the
requests a worker's threads take at once (gunicorn's RECO_THREADS), on both
stores.

Before: the first thread of a worker to see the activation's stamp file
marked it seen and reloaded; its sibling threads, arriving meanwhile, saw
nothing new and answered with the old version (2 of 16 concurrent requests
sent right after `POST /admin/rules/activate` had answered)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from test_rule_governance import ANA, Admin, bump, project, served, start  # noqa: F401 - fixture

ROUNDS = ("1.1.0", "1.0.0", "1.1.0", "1.0.0")
AT_ONCE = 16


def test_requests_sent_at_once_right_after_an_activation_all_get_the_new_version(make_server, project):  # noqa: F811
    service = start(make_server, project, workers=2, RECO_THREADS="8")
    ana = Admin(service.url, ANA)
    original, tag = ana.working()
    assert ana.save(bump(original, "1.1.0", '{offering: "6542", priority: 20}',
                         '{offering: "6542", priority: 45}'), tag).status_code == 200
    with ThreadPoolExecutor(AT_ONCE) as pool:
        list(pool.map(lambda _: served(service.url), range(AT_ONCE)))      # every thread busy once
        for version in ROUNDS:
            answer = ana.activate(version)
            assert answer.status_code == 200, answer.text
            got = list(pool.map(lambda _: served(service.url)[0], range(AT_ONCE)))
            assert got == [f"telco-demo@{version}"] * AT_ONCE, (version, got)
