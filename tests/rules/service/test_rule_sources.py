"""The rule service over a source other than the rules folder: the same
versions, activation, reload and broken-file handling as with files, from
texts held in memory (app/rules/service/source.py MemoryRuleSource), with no
rule or catalog file read."""
from __future__ import annotations

import pytest

from app.rules import RuleService, RuleSetError, load_catalog
from app.rules.service.source import MemoryRuleSource
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ctx

E1 = dict(time="2026-10-01", cart=["6547"], channels=["21"])
DEMO_TEXT = (DEMO_RULES / "telco-demo.yaml").read_text()
SWAPPED = ('{offering: "6542", priority: 20}', '{offering: "6542", priority: 31}')   # E1: 6543, 6542, 7301


def version(number: str, swapped: bool = False) -> str:
    text = DEMO_TEXT.replace('version: "1.0.0"', f'version: "{number}"')
    return text.replace(*SWAPPED) if swapped else text


def ids(svc) -> list[str]:
    return [item.offering_id for item in svc.recommend(ctx(**E1)).items]


@pytest.fixture
def memory(tmp_path):
    source = MemoryRuleSource(load_catalog(DEMO_CATALOG), {"telco-demo.yaml": DEMO_TEXT})
    return source, RuleService(None, None, tmp_path / "state", source=source)


def test_a_service_over_texts_in_memory_serves_lists_and_activates(memory):
    source, svc = memory
    assert svc.status()["ok"] and svc.status()["version"] == "1.0.0" and svc.rules_dir is None
    assert ids(svc) == ["6542", "6543", "7301"]
    source.put("telco-demo@0.9.0.yaml", version("0.9.0", swapped=True))
    svc.refresh()                                        # the source's signature changed
    assert [row["version"] for row in svc.versions()] == ["0.9.0", "1.0.0"]
    status = svc.activate("telco-demo", "0.9.0", by="tester")
    assert status["version"] == "0.9.0" and status["pinned"] and status["activation"]["action"] == "rollback"
    assert ids(svc) == ["6543", "6542", "7301"]
    assert svc.ledger.recorded("telco-demo")["0.9.0"]["hash"] == status["hash"]


def test_a_broken_text_never_replaces_the_version_serving(memory):
    source, svc = memory
    source.put("telco-demo@1.1.0.yaml", version("1.1.0").replace("rules:", "rules: 3\nrulez:", 1))
    svc.refresh()
    status = svc.status()
    assert status["version"] == "1.0.0" and status["errors"]
    broken = [row for row in svc.versions() if row["version"] == "1.1.0"]
    assert broken and not broken[0]["valid"]
    with pytest.raises(RuleSetError, match="has errors"):
        svc.activate("telco-demo", "1.1.0")


def test_changing_a_recorded_version_in_memory_is_refused_at_activation(memory):
    source, svc = memory
    svc.activate("telco-demo", "1.0.0")
    source.put("telco-demo.yaml", DEMO_TEXT.replace(*SWAPPED))   # other content under 1.0.0
    svc.refresh()
    assert svc.status()["hash"] != svc.versions()[0]["hash"]      # the activated content keeps serving
    svc.activate("telco-demo", None)                              # unpinned: the text serves as it is
    with pytest.raises(RuleSetError, match="not the content recorded"):
        svc.activate("telco-demo", "1.0.0")
