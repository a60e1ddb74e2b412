"""A server restarted on the operator's own PROMETHEUS_MULTIPROC_DIR starts
its counts from zero, every counter alike: docs/operations.md says the
master empties that directory at start, and the per-rule counts
(`reco_rule_fired_total`, files of their own beside prometheus-client's
.db files) must not carry the previous run's counts while
`reco_recommendations_total` starts again."""
from __future__ import annotations

import re

import pytest
import requests

from helpers import Client

R = Client.RECOMMENDATION + "/queryProductRecommendation"
E1 = {"instantSyncRecommendation": True, "channel": [{"id": "21"}],
      "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
      "shoppingCart": [{"id": "c1", "@type": "ShoppingCart", "cartItem": [
          {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}

pytestmark = pytest.mark.backends("tinydb", reason="the metrics files of gunicorn's workers; the store plays no part")


def sample(text: str, name: str, **labels) -> float:
    """The value of the one sample of `name` whose labels include `labels`."""
    found = []
    for match in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            found.append(float(match.group(2)))
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_a_restart_on_the_operators_metrics_directory_counts_rules_from_zero(make_server, tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    (tmp_path / "metrics").mkdir()
    data_dir = tmp_path / "data"
    first = make_server(data_dir=data_dir, workers=2, env=env)
    for _ in range(5):
        assert requests.post(first.url + R, json=E1, timeout=30).status_code in (200, 201)
    text = requests.get(first.url + "/metrics", timeout=10).text
    assert sample(text, "reco_rule_fired_total", ruleset_id="telco-demo", rule_id="R1") == 5
    first.stop()

    second = make_server(data_dir=data_dir, workers=2, env=env)
    assert requests.post(second.url + R, json=E1, timeout=30).status_code in (200, 201)
    text = requests.get(second.url + "/metrics", timeout=10).text
    assert sample(text, "reco_recommendations_total", ruleset_id="telco-demo", mode="instant") == 1
    assert sample(text, "reco_rule_fired_total", ruleset_id="telco-demo", rule_id="R1") == 1
