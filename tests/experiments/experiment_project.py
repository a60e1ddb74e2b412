"""A scratch rules folder for experiment tests: the demo rule set at 1.0.0
(limit 4: the demo's E1 context gets 3 items), a recorded 1.1.0 that
answers with one item (limit 1), the lock file recording both, and an
experiments file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from helpers import DEMO_RULES

ADMIN_KEY = "exp-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
R = "/tmf-api/recommendationManagement/v4/queryProductRecommendation"

FIFTY_FIFTY = """\
version: 1
experiments:
  - id: split
    status: running
    start: 2026-01-01T00:00:00Z
    channels: ["21"]
    control: control
    primaryMetric: accepted
    arms:
      - {name: challenger, version: "1.1.0", weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
  - id: holdout-test
    status: running
    start: 2026-01-01T00:00:00Z
    channels: ["22"]
    control: control
    arms:
      - {name: holdout, holdout: true, weight: 50}
      - {name: control, version: "1.0.0", weight: 50}
  - id: canary
    status: draft
    channels: ["23"]
    control: stable
    arms:
      - {name: canary, version: "1.1.0", weight: 5}
      - {name: stable, version: "1.0.0", weight: 95}
"""


def make_rules(root: Path, experiments: str | None = FIFTY_FIFTY) -> Path:
    rules = Path(root) / "rules"
    shutil.copytree(DEMO_RULES, rules)
    text = (rules / "telco-demo.yaml").read_text()
    assert 'version: "1.0.0"' in text and "limit: 4" in text
    (rules / "versions").mkdir(exist_ok=True)
    (rules / "versions" / "telco-demo@1.1.0.yaml").write_text(
        text.replace('version: "1.0.0"', 'version: "1.1.0"').replace("limit: 4", "limit: 1"))
    lock = json.loads((rules / "telco-demo.lock.json").read_text())
    from app.rules.model.catalog import load_catalog
    from app.rules.model.ruleset import read_ruleset_file
    from helpers import DEMO_CATALOG
    _rid, _version, ruleset, problems = read_ruleset_file(rules / "versions" / "telco-demo@1.1.0.yaml",
                                                           load_catalog(DEMO_CATALOG))
    assert ruleset is not None, problems
    lock["versions"]["1.1.0"] = ruleset.hash
    (rules / "telco-demo.lock.json").write_text(json.dumps(lock, indent=2) + "\n")
    if experiments is not None:
        (rules / "telco-demo.experiments.yaml").write_text(experiments)
    return rules


def query(party: str | None = None, channel: str = "21", cart_id: str = "c1") -> dict:
    """The demo's E1 context (TMFone in the cart): 3 items at 1.0.0, 1 at 1.1.0."""
    body = {"instantSyncRecommendation": True, "channel": [{"id": channel}],
            "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
            "shoppingCart": [{"id": cart_id, "@type": "ShoppingCart", "cartItem": [
                {"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}
    if party:
        body["relatedParty"] = {"id": party}
    return body
