"""The editor schema and the loader agree on `contactPolicies`: the example
of docs/contact-policies.md loads and matches the schema; structurally
broken declarations are refused by both, each with its line."""
from __future__ import annotations

import json
import re

import pytest
import yaml

from app.rules.model.catalog import load_catalog
from app.rules.model.errors import RuleSetError
from app.rules.model.ruleset import parse_ruleset
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ROOT
from test_editor_schemas import errors, schema

DOC = ROOT / "docs" / "contact-policies.md"


def documented_policies() -> str:
    """The first YAML block of the doc (the declaration example)."""
    return re.search(r"```yaml\n(contactPolicies:\n.*?)```", DOC.read_text(), re.S).group(1)


def with_policies(policies: str) -> str:
    return (DEMO_RULES / "telco-demo.yaml").read_text() + "\n" + policies


def test_the_documented_example_loads_and_matches_the_schema():
    text = with_policies(documented_policies())
    ruleset = parse_ruleset(text, "telco-demo.yaml", load_catalog(DEMO_CATALOG))
    assert [(p.id, p.kind) for p in ruleset.contact_policies] == [
        ("P1", "maxImpressions"), ("P2", "pauseAfterRejected"), ("P3", "stopAfterAccepted"),
        ("P4", "maxOffersPerDay")]
    assert ruleset.contact_policies[0].category == "accessories"
    rs = schema("ruleset.schema.json")
    assert errors(json.loads(json.dumps(yaml.safe_load(text))), rs, rs) == []


# (the last field: whether this test's small validator sees it; the
# kind-dependent requirements are if/then in the schema, which it skips)
@pytest.mark.parametrize("policy, code, in_schema", [
    ('- {id: P1, kind: maxImpressions, count: 3}', "contact-policy", False),             # no days
    ('- {id: P1, kind: maxImpression, count: 3, days: 7}', "contact-policy", True),      # unknown kind
    ('- {id: P1, kind: maxImpressions, count: 3, days: 7, scope: {offering: "6542", category: tv}}',
     "contact-policy", True),
    ('- {id: P1, kind: pauseAfterRejected, days: 7, colour: red}', "contact-policy", True),
    ('- {id: P1, kind: maxImpressions, count: -1, days: 7}', "contact-policy", True),
    ('- {id: P1, kind: maxOffersPerDay, count: 5, scope: global, days: 2}', "contact-policy", False),
    ('- {kind: stopAfterAccepted}', "contact-policy", True),                              # no id
])
def test_broken_declarations_are_refused_by_loader_and_schema(policy, code, in_schema):
    text = with_policies("contactPolicies:\n  " + policy + "\n")
    line = text.count("\n")
    with pytest.raises(RuleSetError) as refused:
        parse_ruleset(text, "telco-demo.yaml", load_catalog(DEMO_CATALOG))
    problems = refused.value.problems
    assert problems and all(p.line == line and p.code == code and p.hint for p in problems), problems
    if in_schema:
        rs = schema("ruleset.schema.json")
        assert errors(json.loads(json.dumps(yaml.safe_load(text))), rs, rs) != []


def test_the_content_hash_covers_the_policies():
    """A version pins its policies: changing one changes X-Ruleset-Hash and
    the lock file's hash (lint then asks for a version bump)."""
    catalog = load_catalog(DEMO_CATALOG)
    three = parse_ruleset(with_policies(documented_policies()), "telco-demo.yaml", catalog)
    four = parse_ruleset(with_policies(documented_policies().replace("count: 3", "count: 4")),
                         "telco-demo.yaml", catalog)
    plain = parse_ruleset((DEMO_RULES / "telco-demo.yaml").read_text(), "telco-demo.yaml", catalog)
    assert len({three.hash, four.hash, plain.hash}) == 3
