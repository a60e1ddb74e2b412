"""The sample-ratio check and arms at weight 0: such an arm is no term of
the chi-square (its expected count is 0), but decisions it received anyway
are a mismatch by themselves. Over HTTP on both stores: a 50/50 split
answers 200 parties, then the experiments file is edited by hand to put
the challenger at weight 0 (no audited weight change, so the current
weights are the expected split): the report names the arm and warns."""
from __future__ import annotations

from experiment_project import ADMIN, ADMIN_KEY, FIFTY_FIFTY, R, make_rules, query
from helpers import Client, wait_until

from app.experiments.stats import sample_ratio


def test_decisions_of_a_weight_0_arm_are_a_mismatch():
    assert sample_ratio([500, 3], [100, 0])["mismatch"] is True
    assert sample_ratio([500, 3], [100, 0])["unexpected"] == [1]
    assert sample_ratio([500, 0], [100, 0])["mismatch"] is False
    assert sample_ratio([260, 240, 0], [50, 50, 0])["mismatch"] is False


def test_report_warns_when_a_weight_0_arm_received_decisions(make_server, tmp_path):
    rules = make_rules(tmp_path / "project")
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": ADMIN_KEY})
    api = Client(server.url)
    for n in range(200):
        assert api.post(R, json=query(f"party-{n}")).status_code == 200
    path = rules / "telco-demo.experiments.yaml"
    edited = FIFTY_FIFTY.replace('{name: challenger, version: "1.1.0", weight: 50}',
                                 '{name: challenger, version: "1.1.0", weight: 0}').replace(
        '{name: control, version: "1.0.0", weight: 50}', '{name: control, version: "1.0.0", weight: 100}', 1)
    assert edited != FIFTY_FIFTY
    path.write_text(edited)

    def report():
        found = api.get("/admin/experiments/split/report", headers=ADMIN).json()
        arms = {a["name"]: a for a in found.get("arms", [])}
        ready = sum(a["decisions"] for a in arms.values()) == 200 and arms["challenger"]["weight"] == 0
        return found if ready else None
    found = wait_until(report, 20)
    assert found, api.get("/admin/experiments/split/report", headers=ADMIN).json()
    challenger = next(a for a in found["arms"] if a["name"] == "challenger")
    assert challenger["decisions"] > 50, found["arms"]
    ratio = found["sampleRatio"]
    assert ratio["mismatch"] is True and ratio["unexpectedArms"] == ["challenger"], ratio
    assert f"arm challenger is at weight 0 but received {challenger['decisions']} decisions" in ratio["warning"]
