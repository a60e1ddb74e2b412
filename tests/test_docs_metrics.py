"""The metrics an operator scrapes are the ones the guides name: the
Operating section moved from README.md to docs/operations.md (its table),
with the decision log's and the experiments' metrics in their own guides.
Every `reco_*` family `/metrics` exposes must be named in one of docs/*.md,
and every `reco_*` name in docs/operations.md's table must be exposed: a
metric added without a line, or renamed under a dashboard, fails here."""
from __future__ import annotations

import re
import shutil

from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

FAMILY = re.compile(r"^# TYPE (reco_\w+) (\w+)$", re.M)
NAMED = re.compile(r"`(reco_\w+)")


def _exposed(tmp_path, monkeypatch) -> set[str]:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    app = create_app(data_dir=tmp_path / "data", rules_dir=tmp_path / "rules", catalog_dir=tmp_path / "catalog",
                     background_workers=False)
    answer = app.test_client().get("/metrics")
    assert answer.status_code == 200
    # prometheus-client's `_created` samples are a counter's start time, not a family of ours
    return {name for name, _ in FAMILY.findall(answer.get_data(as_text=True)) if not name.endswith("_created")}


def test_every_exposed_metric_is_named_in_a_guide_and_the_table_names_only_exposed_ones(tmp_path, monkeypatch):
    exposed = _exposed(tmp_path, monkeypatch)
    assert {"reco_http_requests_total", "reco_decisions_total", "reco_store_up"} <= exposed
    guides = {path.name: set(NAMED.findall(path.read_text(encoding="utf-8")))
              for path in (ROOT / "docs").glob("*.md")}
    named = set().union(*guides.values())
    assert sorted(exposed - named) == [], "name these metrics in docs/operations.md or their guide"
    table = guides["operations.md"]
    assert sorted(table - exposed) == [], "docs/operations.md names metrics /metrics does not expose"
