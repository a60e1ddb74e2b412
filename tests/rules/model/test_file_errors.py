"""Bad rule, catalog and case files: every error names file:line:column."""
from __future__ import annotations

import json

import pytest

from app.rules import RuleSetError, load_catalog, load_ruleset
from app.rules.authoring.cases import load_cases
from rulehelpers import write

HEADER = """\
id: broken
version: "1.0.0"
status: test
description: a broken rule set
rules:
"""


def errors_of(path, catalog):
    with pytest.raises(RuleSetError) as info:
        load_ruleset(path, catalog)
    return [str(p) for p in info.value.problems]


def rules_file(tmp_path, body: str):
    return write(tmp_path / "x.yaml", HEADER + body)


def test_unknown_offering_in_recommend_names_file_line_column_and_rule(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R3
    kind: cross-sell
    description: insurance
    when: {cart: "6547"}
    recommend:
      - {offering: "9999", priority: 10}
""")
    errors = errors_of(path, demo_catalog)
    assert errors == [f"{path}:11:20: rule R3: unknown offering '9999'"]


def test_unknown_offering_category_and_channel_in_when(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R1
    kind: up-sell
    description: d
    when:
      cart: ["6547", "1234"]
      owns_category: gadgets
      channel: "99"
    recommend: [{offering: "6542", priority: 1}]
""")
    errors = errors_of(path, demo_catalog)
    assert f"{path}:10:22: rule R1: unknown offering '1234'" in errors
    assert f"{path}:11:22: rule R1: unknown category 'gadgets' (no catalog offering has it)" in errors
    assert f"{path}:12:16: rule R1: unknown channel '99' (known: 21, 22, 23, 24)" in errors


def test_bad_yaml_syntax(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R1
    when: {cart: ["6547"
    recommend: []
""")
    errors = errors_of(path, demo_catalog)
    assert len(errors) == 1 and errors[0].startswith(f"{path}:8:") and "invalid YAML" in errors[0]


@pytest.mark.parametrize("tag", ["!!python/object:os.system {}", "!!python/name:os.system",
                                 "!!python/object/apply:os.system [echo hacked]"])
def test_python_tags_are_rejected(tmp_path, demo_catalog, tag):
    path = rules_file(tmp_path, f"""\
  - id: R1
    kind: up-sell
    description: {tag}
    when: {{cart: "6547"}}
    recommend: [{{offering: "6542", priority: 1}}]
""")
    errors = errors_of(path, demo_catalog)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:8:18: YAML tag not allowed")


def test_wrong_types_and_missing_fields(tmp_path, demo_catalog):
    path = write(tmp_path / "x.yaml", """\
id: broken
version: 1.0
status: live
limit: zero
rules:
  - id: R1
    kind: upsell
    when: {cart: "6547", segment: {at_least: 3}}
    recommend:
      - {offering: "6542", priority: high}
  - id: R1
    kind: up-sell
    description: dup
    when: {cart: "6547"}
    recommend: [{offering: "6542", priority: 1}]
  - id: R2
    kind: up-sell
    description: bad time
    validFor: {startDateTime: soon}
    when: {time: {from: 5}, cart_count: {at_least: two}, colour: red}
    recommend: [{offering: "6542", priority: 1}]
""")
    errors = errors_of(path, demo_catalog)
    expected = [
        f"{path}:1:1: rule set: missing required field 'description'",
        f"{path}:2:10: rule set: version must be text like \"1.0.0\" (quote it), got a number",
        f"{path}:3:9: rule set: status must be one of experimental, test, stable, deprecated, got 'live'",
        f"{path}:4:8: rule set: limit must be a whole number >= 1, got the text 'zero'",
        f"{path}:7:11: rule R1: kind must be one of up-sell, cross-sell, down-sell, retention, acquisition, "
        "bundle, other, got 'upsell'",
        f"{path}:6:5: rule R1: rule: missing required field 'description'",
        f"{path}:8:26: rule R1: segment is text: compare it with any_of / none_of",
        f"{path}:10:38: rule R1: priority must be a whole number from 0 to 1000000 (smaller ranks first), "
        "got the text 'high'",
        f"{path}:11:5: rule R1: duplicate rule id (first at line 6)",
        f"{path}:19:31: rule R2: validFor.startDateTime must be a date-time like 2026-11-15T00:00:00Z, "
        "got the text 'soon'",
        f"{path}:20:25: rule R2: time: expected a date-time like 2026-11-15T00:00:00Z, got a number",
    ]
    for message in expected:
        assert message in errors, (message, errors)
    assert f"{path}:20:52: rule R2: cart_count: expected a number, got the text 'two'" in errors
    assert any(e.startswith(f"{path}:20:58: rule R2: unknown condition 'colour'") for e in errors)


def test_unknown_condition_lists_the_known_ones(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R1
    kind: up-sell
    description: d
    when: {colour: red}
    recommend: [{offering: "6542", priority: 1}]
""")
    [error] = errors_of(path, demo_catalog)
    assert error.startswith(f"{path}:9:12: rule R1: unknown condition 'colour' (known: all, any, cart,")


def test_duplicate_yaml_keys_are_errors(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R1
    kind: up-sell
    kind: cross-sell
    description: d
    when: {cart: "6547"}
    recommend: [{offering: "6542", priority: 1}]
""")
    [error] = errors_of(path, demo_catalog)
    assert error == f"{path}:8:5: invalid YAML: duplicate key 'kind' (first at line 7)"


def test_not_with_a_list_explains_the_fix(tmp_path, demo_catalog):
    path = rules_file(tmp_path, """\
  - id: R1
    kind: up-sell
    description: d
    when:
      not: [{cart: "6547"}]
    recommend: [{offering: "6542", priority: 1}]
""")
    [error] = errors_of(path, demo_catalog)
    assert error.startswith(f"{path}:10:12: rule R1: `not` takes one condition")


def test_catalog_errors_name_file_and_line(tmp_path):
    write(tmp_path / "cat" / "a.yaml", """\
productOffering:
  - id: "1"
    name: One
    lifecycleStatus: Active
  - id: "1"
    name: Again
    lifecycleStatus: Active
  - id: "2"
    nmae: Two
    lifecycleStatus: 3
    category: [{id: x}, "y"]
    productOfferingPrice: [{price: {unit: EUR, value: cheap}}]
  - id: "3"
    name: Three
    lifecycleStatus: Active
    validFor: {startDateTime: "2027-01-01T00:00:00Z", endDateTime: "2026-01-01T00:00:00Z"}
channels:
  - {id: "21"}
  - {id: "21"}
""")
    write(tmp_path / "cat" / "b.yaml", "productOffering: [{id: !!python/object:os.system {}}]\n")
    with pytest.raises(RuleSetError) as info:
        load_catalog(tmp_path / "cat")
    errors = [str(p) for p in info.value.problems]
    a, b = tmp_path / "cat" / "a.yaml", tmp_path / "cat" / "b.yaml"
    for message in [
        f"{a}:5:5: duplicate offering id '1' (first in {a}:2)",
        f"{a}:9:5: unknown field 'nmae' in a ProductOffering (TMF620)",
        f"{a}:8:5: offering 2: name must be text",
        f"{a}:10:22: offering 2: lifecycleStatus must be text (e.g. Active, Retired)",
        f"{a}:11:25: offering 2: a category must be a mapping, got the text 'y'",
        f"{a}:12:55: offering 2: price value must be a number",
        f"{a}:16:15: offering 3: validFor ends before it starts",
        f"{a}:19:5: duplicate channel id '21'",
    ]:
        assert any(e.startswith(message) for e in errors), (message, errors)
    assert any(e.startswith(f"{b}:1:24: YAML tag not allowed") for e in errors), errors


def test_case_file_errors(tmp_path):
    path = write(tmp_path / "x.cases.yaml", """\
cases:
  - name: c1
    context: {cart: ["6547"]}
    expect: ["6542"]
  - name: c2
    context: {time: "2026-10-01T00:00:00Z", owns: ["7001"]}
    expect: []
""")
    with pytest.raises(RuleSetError) as info:
        load_cases(path)
    errors = [str(p) for p in info.value.problems]
    assert errors[0].startswith(f"{path}:3:14: case c1: context.time must be a date-time")
    assert errors[1] == f"{path}:6:51: case c2: an anonymous shopper owns nothing; give a customer"


def test_a_catalog_file_removed_while_loading_is_a_problem_with_its_name(tmp_path, monkeypatch):
    import shutil
    from pathlib import Path

    from app.rules import RuleSetError, load_catalog

    folder = tmp_path / "catalog"
    shutil.copytree(Path(__file__).resolve().parents[3] / "catalog", folder)
    doomed = folder / "offerings.yaml"
    import app.rules.model.catalog as catalog_module
    real_read = catalog_module.read_source

    def read_source(path, name=None):  # listed, then removed before it is read (a deploy)
        if path == doomed:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real_read(path, name)

    monkeypatch.setattr(catalog_module, "read_source", read_source)
    with pytest.raises(RuleSetError) as info:
        load_catalog(folder)
    assert any(p.file.endswith("offerings.yaml") and "cannot read file" in p.message
               for p in info.value.problems)


def test_validfor_reads_the_same_in_the_catalog_and_in_rules(tmp_path, demo_catalog):
    """One reader for validFor: a null bound is open in both files, and a bad
    bound gets the same message (it used to be an error in rules only, and the
    catalog's message did not say what it got)."""
    write(tmp_path / "cat" / "a.yaml", """\
productOffering:
  - id: "1"
    name: One
    lifecycleStatus: Active
    validFor: {startDateTime: null, endDateTime: "2027-01-01T00:00:00Z"}
  - id: "2"
    name: Two
    lifecycleStatus: Active
    validFor: {startDateTime: soon}
""")
    with pytest.raises(RuleSetError) as info:
        load_catalog(tmp_path / "cat")
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'cat' / 'a.yaml'}:9:31: offering 2: validFor.startDateTime must be a date-time like "
        "2026-11-15T00:00:00Z, got the text 'soon'"]
    path = rules_file(tmp_path, """\
  - id: R1
    kind: cross-sell
    description: open start
    validFor: {startDateTime: null, endDateTime: "2027-01-01T00:00:00Z"}
    when: {cart: "6547"}
    recommend: [{offering: "6542", priority: 1}]
""")
    rule = load_ruleset(path, demo_catalog).rules[0]
    assert rule.valid_from is None and rule.valid_to.year == 2027


@pytest.mark.parametrize("bad_id", ["a b", "x/y", "..", "caf\u00e9", "50%25", "a?b", "#1"])
def test_an_offering_id_outside_the_id_alphabet_names_file_and_line(tmp_path, bad_id):
    """An offering's id ends its href (app/ids.py): a space or a `/` would
    make a link no route answers."""
    write(tmp_path / "cat" / "a.yaml", f"""\
productOffering:
  - id: "7001"
    name: Fine
    lifecycleStatus: Active
  - id: {json.dumps(bad_id)}
    name: Broken
    lifecycleStatus: Active
""")
    with pytest.raises(RuleSetError) as info:
        load_catalog(tmp_path / "cat")
    [error] = [str(p) for p in info.value.problems]
    assert error.startswith(f"{tmp_path / 'cat' / 'a.yaml'}:5:9: offering {bad_id!r}: "), error
    assert "may hold only letters" in error or "dot segment" in error


@pytest.mark.parametrize("escape, why", [("\\0", "NUL"), ("\\x00", "NUL"), ("\\u0000", "NUL")])
def test_text_no_store_can_hold_in_a_catalog_or_rule_file_names_file_and_line(
        tmp_path, demo_catalog, escape, why):
    """A YAML escape can spell a NUL, which no store holds
    (app/storable.py; YAML itself refuses a lone surrogate): an offering name or a rule id with one would be
    copied into every stored recommendation and fail there (PostgreSQL) or
    not (TinyDB). Refused where it is written, at file:line:column."""
    write(tmp_path / "cat" / "a.yaml", f"""\
productOffering:
  - id: "7001"
    name: "Fine{escape}"
    lifecycleStatus: Active
""")
    with pytest.raises(RuleSetError) as info:
        load_catalog(tmp_path / "cat")
    [error] = [str(p) for p in info.value.problems]
    assert error.startswith(f"{tmp_path / 'cat' / 'a.yaml'}:3:11: "), error
    assert why in error and "no store" in error, error
    path = rules_file(tmp_path, f"""\
  - id: "R{escape}1"
    kind: cross-sell
    description: insurance
    when: {{cart: "6547"}}
    recommend:
      - {{offering: "6542", priority: 10}}
""")
    [error] = errors_of(path, demo_catalog)
    assert error.startswith(f"{path}:6:9: ") and why in error, error
