"""The JSON Schemas shipped for editors (app/rules/schemas) accept the demo files
and every generated rule set, and reject what the loader rejects structurally.
A small validator for the draft-07 keywords the schemas use keeps this test
free of extra dependencies."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from app.rules.model.common import plain
from rulegen import make_ruleset
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ROOT
from language_checks import CHECKS

SCHEMAS = ROOT / "app" / "rules" / "schemas"
TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _type_ok(value, name):
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def errors(value, schema, root, path="$"):
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return errors(value, target, root, path)
    out = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, n) for n in names):
            return [f"{path}: not {names}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: not in {schema['enum']}")
    for key in ("allOf",):
        for sub in schema.get(key, []):
            out += errors(value, sub, root, path)
    if "oneOf" in schema and sum(not errors(value, s, root, path) for s in schema["oneOf"]) != 1:
        out.append(f"{path}: not exactly one of oneOf")
    if "anyOf" in schema and not any(not errors(value, s, root, path) for s in schema["anyOf"]):
        out.append(f"{path}: none of anyOf")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0):
            out.append(f"{path}: too short")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: above maximum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", 10**9):
            out.append(f"{path}: wrong number of items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{path}: missing {key}")
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{path}: too few properties")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                out += errors(item, props[key], root, f"{path}.{key}")
            elif any(re.search(p, key) for p in schema.get("patternProperties", {})):
                continue
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unknown property {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                out += errors(item, schema["additionalProperties"], root, f"{path}.{key}")
    return out


def schema(name):
    return json.loads((SCHEMAS / name).read_text())


def as_json(path: Path):
    return json.loads(json.dumps(plain(yaml.safe_load(path.read_text()))))


def test_demo_rule_set_matches_the_schema():
    rs = schema("ruleset.schema.json")
    assert errors(as_json(DEMO_RULES / "telco-demo.yaml"), rs, rs) == []


@pytest.mark.parametrize("path", sorted(DEMO_CATALOG.glob("*.yaml")), ids=lambda p: p.name)
def test_demo_catalog_matches_the_schema(path):
    cs = schema("catalog.schema.json")
    assert errors(as_json(path), cs, cs) == []


def test_every_language_example_and_generated_rules_match_the_schema():
    rs = schema("ruleset.schema.json")
    _catalog, generated = make_ruleset(200, 100, seed=3)
    generated["rules"] += [{"id": f"L{i}", "kind": "other", "description": "x", "when": when,
                            "recommend": [{"offering": "6542", "priority": 1}]}
                           for i, (_l, when, _c, _f) in enumerate(CHECKS)]
    assert errors(json.loads(json.dumps(generated)), rs, rs) == []


@pytest.mark.parametrize("broken", [
    {"rules": []},
    {"version": 1},
    {"status": "live"},
    {"rules": [{"id": "R", "kind": "upsell", "description": "d", "when": {"cart": "1"},
                "recommend": [{"offering": "1", "priority": 1}]}]},
    {"rules": [{"id": "R", "kind": "up-sell", "description": "d", "when": {"colour": "red"},
                "recommend": [{"offering": "1", "priority": 1}]}]},
    {"rules": [{"id": "R", "kind": "up-sell", "description": "d", "when": {"cart": "1"},
                "recommend": [{"offering": "1", "priority": -1}]}]},
])
def test_schema_rejects_broken_rule_sets(broken):
    rs = schema("ruleset.schema.json")
    doc = {"id": "x", "version": "1.0.0", "status": "test", "description": "d",
           "rules": [{"id": "R", "kind": "up-sell", "description": "d", "when": {"cart": "1"},
                      "recommend": [{"offering": "1", "priority": 1}]}]}
    doc.update(broken)
    assert errors(doc, rs, rs) != []
