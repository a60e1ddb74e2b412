"""The experiments admin path checks arm versions against the rule files as
they are now, not against the list the worker last loaded (which follows
the files only when its watcher looks, woken by queries): a version
recorded a moment ago (by the CLI, another worker, another host's deploy)
can be started at once, and a version removed is refused. The watcher is
slowed to an hour here, so only the admin path's own look can see either
change. Over HTTP on both stores."""
from __future__ import annotations

import json

from experiment_project import ADMIN, ADMIN_KEY, make_rules
from helpers import DEMO_CATALOG, Client, assert_tmf_error

from app.rules.model.catalog import load_catalog
from app.rules.model.ruleset import read_ruleset_file


def record(rules, version: str) -> None:
    """versions/telco-demo@<version>.yaml and its hash in the lock file, as
    `flask rules lock` records a version."""
    text = (rules / "telco-demo.yaml").read_text().replace('version: "1.0.0"', f'version: "{version}"')
    path = rules / "versions" / f"telco-demo@{version}.yaml"
    path.write_text(text)
    _rid, _version, ruleset, problems = read_ruleset_file(path, load_catalog(DEMO_CATALOG))
    assert ruleset is not None, problems
    lock = json.loads((rules / "telco-demo.lock.json").read_text())
    lock["versions"][version] = ruleset.hash
    (rules / "telco-demo.lock.json").write_text(json.dumps(lock, indent=2) + "\n")


def test_a_version_recorded_a_moment_ago_starts_and_a_removed_one_is_refused(make_server, tmp_path):
    rules = make_rules(tmp_path / "project")
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY,
                                               "RECO_RULES_CHECK_INTERVAL": "3600"})
    api = Client(server.url)
    assert api.get("/admin/experiments", headers=ADMIN).status_code == 200     # the worker has loaded

    record(rules, "1.2.0")
    path = rules / "telco-demo.experiments.yaml"
    path.write_text(path.read_text().replace('{name: canary, version: "1.1.0", weight: 5}',
                                             '{name: canary, version: "1.2.0", weight: 5}'))
    started = api.post("/admin/experiments/canary/start", json={}, headers=ADMIN)
    assert started.status_code == 200, started.text
    assert started.json()["experiment"]["status"] == "running"

    (rules / "versions" / "telco-demo@1.1.0.yaml").unlink()
    refused = api.post("/admin/experiments/split/weights", headers=ADMIN,
                       json={"weights": {"challenger": 90, "control": 10}})
    body = assert_tmf_error(refused, 422)
    assert body["code"] == "INVALID_EXPERIMENTS" and "1.1.0" in json.dumps(body), body
    assert "weight: 50" in path.read_text()          # nothing changed
