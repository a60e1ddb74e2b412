"""`flask rules lint` as a library: every check on a broken fixture, with its
exact file:line:column, rule, severity and a hint; the demo is clean; lock
files follow content, not formatting; the contradiction analysis is sound."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import shutil
from pathlib import Path

import pytest

from app.rules.authoring.analysis import analyse, positive_anys, with_choice
from app.rules.model.common import parse_time
from app.rules.model.conditions import evaluate
from app.rules.model.facts import Context, build_facts
from app.rules.authoring.lint import lint, lint_ruleset_file
from app.rules.authoring.lockfile import lock_rulesets, read_lock, semantic_hash
from app.rules.model.ruleset import parse_ruleset
from app.rules.model.yamlload import load_file
from rulegen import dump, make_ruleset
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ROOT

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LINT = FIXTURES / "lint"
NOW = parse_time("2026-10-01T00:00:00Z")
STANDALONE = {"no-lock", "no-cases"}        # every fixture file stands alone


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def findings(path: Path, catalog, now=NOW) -> list[tuple]:
    found, _acked = lint_ruleset_file(path, catalog, now)
    for problem in found:
        assert problem.hint, f"no hint for {problem}"
        assert problem.code, f"no check name for {problem}"
    return [(f"{p.line}:{p.column}", p.severity, p.code, p.rule) for p in found if p.code not in STANDALONE]


@pytest.fixture(autouse=True)
def _cwd(monkeypatch):
    monkeypatch.chdir(ROOT)                 # messages name paths relative to the project


# (fixture, expected findings, words the message or hint must contain)
CASES = [
    ("yaml-syntax", [("10:33", "error", "yaml-syntax", None)], ["did not find expected ',' or ']'"]),
    ("schema", [("12:5", "error", "schema", "R1")], ["unknown field 'recomend'", "did you mean 'recommend'?"]),
    ("unknown-offering", [("10:18", "error", "unknown-offering", "R1")],
     ["unknown offering 'TMFone'", "name of offering 6547", 'write its id, "6547"']),
    ("unknown-category", [("11:22", "error", "unknown-category", "R1")], ["did you mean 'devices'?"]),
    ("unknown-channel", [("12:16", "error", "unknown-channel", "R1")], ["name of channel 23"]),
    ("unknown-condition", [("11:7", "error", "unknown-condition", "R1")],
     ["unknown condition 'cart_categroy'", "did you mean 'cart_category'?"]),
    ("duplicate-rule-id", [("17:5", "error", "duplicate-rule-id", "R2")], ["first at line 12", "'R3'"]),
    ("empty-condition", [("10:11", "error", "empty-condition", "R1")], ["empty condition"]),
    ("validity-window", [("11:7", "error", "validity-window", "R1")], ["ends before it starts"]),
    ("priority-range", [("12:38", "error", "priority-range", "R1")], ["from 0 to 1000000"]),
    ("too-complex", [("10:5", "error", "too-complex", "R1")], ["41 alternatives"]),
    ("contradiction", [("13:24", "error", "contradiction", "R1")],
     ["can never fire", "`segment is one of [premium]` (line 12:7)",
      "`characteristic segment is one of [standard]` (line 13:24)"]),
    ("contradiction-any", [("10:5", "error", "contradiction", "R1")],
     ["none of its 2 alternatives", "an anonymous shopper owns nothing"]),
    ("dead-alternative", [("14:11", "warning", "dead-alternative", "R1")],
     ["`cart is empty` (line 11:14)", "`cart_category has any of [devices]` (line 14:11)"]),
    ("retired-offering", [("11:22", "warning", "retired-offering", "R1"),
                          ("13:20", "warning", "retired-offering", "R1")], ["7401 (Roaming Pack EU)", "Retired"]),
    ("offering-window", [("13:20", "warning", "offering-window", "R1")],
     ["valid only [2026-11-01T00:00:00Z, 2027-01-01T00:00:00Z)"]),
    ("always-dropped", [("14:20", "warning", "always-dropped", "R1")],
     ["recommends 6542", "requires in the cart", "(line 11:14)"]),
    ("expired-rule", [("12:20", "warning", "expired-rule", "R1")], ["validFor ends 2026-01-01T00:00:00Z"]),
    ("schema-modeline", [("1:33", "warning", "schema-modeline", None)],
     ["$schema=../../../../app/rules/schemas/ruleset.schema.json"]),
    ("file-name", [("2:5", "warning", "file-name", None)], ["rename it to not-the-file-name.yaml"]),
    ("unused-ignore", [("12:7", "warning", "unused-ignore", None)], ["acknowledges no warning on line 13"]),
]


@pytest.mark.parametrize("name, expected, words", CASES, ids=[c[0] for c in CASES])
def test_each_check_on_its_broken_fixture(name, expected, words, demo_catalog):
    path = LINT / f"{name}.yaml"
    assert findings(path, demo_catalog) == expected
    found, _ = lint_ruleset_file(path, demo_catalog, NOW)
    text = "\n".join(f"{p} {p.hint}" for p in found)
    assert all(str(p).startswith(f"{rel(path)}:") for p in found)
    for word in words:
        assert word in text


def test_expired_offering_depends_on_the_lint_time(demo_catalog):
    path = LINT / "expired-offering.yaml"        # 7202 is valid until 2027-01-01
    assert findings(path, demo_catalog, NOW) == []
    assert findings(path, demo_catalog, parse_time("2027-02-01T00:00:00Z")) == [
        ("12:20", "warning", "expired-offering", "R1")]


def test_acknowledged_warning_is_kept_aside_with_its_location(demo_catalog):
    found, acked = lint_ruleset_file(LINT / "unused-ignore.yaml", demo_catalog, NOW)
    assert [(p.line, p.column, p.code) for p in acked] == [(14, 20, "retired-offering")]


def test_versions_and_lock_files():
    report = lint(None, FIXTURES / "locks", DEMO_CATALOG, NOW)
    base = "tests/rules/fixtures/locks/"
    got = sorted((p.file.replace(base, ""), f"{p.line}:{p.column}", p.severity, p.code)
                 for p in report.problems if p.file.startswith(base) and p.code != "no-cases")
    assert got == [
        ("broken-lock.lock.json", "5:3", "error", "lock-file"),
        ("bumped.yaml", "3:10", "error", "version-not-bumped"),
        ("twin.yaml", "3:10", "error", "version-not-bumped"),                 # versions/twin@1.0.0 differs
        ("unlocked.yaml", "3:10", "warning", "no-lock"),
        ("unrecorded.yaml", "3:10", "warning", "version-not-recorded"),
        ("versions/twin@1.0.0.yaml", "3:10", "error", "version-not-bumped"),  # differs from the lock
    ]
    bumped = next(p for p in report.problems if p.file.endswith("bumped.yaml") and p.code == "version-not-bumped")
    assert 'bump `version` (e.g. to "1.0.1" or "1.1.0")' in bumped.hint and "--amend" in bumped.hint
    twin = next(p for p in report.problems if p.file.endswith("locks/twin.yaml") and p.code == "version-not-bumped")
    assert "versions/twin@1.0.0.yaml is also twin 1.0.0, with other content" in twin.message
    assert report.exit_code() == 1


def test_cases_files_are_linted():
    report = lint([FIXTURES / "cases"], FIXTURES / "cases", DEMO_CATALOG, NOW)
    base = "tests/rules/fixtures/cases/"
    got = sorted((p.file.replace(base, ""), f"{p.line}:{p.column}", p.severity, p.code)
                 for p in report.problems if p.code not in STANDALONE)
    assert got == [
        ("broken.cases.yaml", "4:14", "error", "cases"),
        ("refs.cases.yaml", "4:40", "warning", "unknown-channel"),
        ("refs.cases.yaml", "5:22", "warning", "unknown-offering"),
        ("refs.cases.yaml", "6:29", "warning", "unknown-rule"),
    ]
    hints = {p.code: p.hint for p in report.problems}
    assert "did you mean '6547'?" in hints["unknown-offering"] and "did you mean 'R1'?" in hints["unknown-rule"]


def test_catalog_errors_and_expired_offerings():
    broken = lint(None, FIXTURES / "cases", FIXTURES / "catalog-broken", NOW)
    got = [(p.file, f"{p.line}:{p.column}", p.code) for p in broken.problems if "catalog-broken" in p.file]
    assert got == [("tests/rules/fixtures/catalog-broken/offerings.yaml", "5:5", "duplicate-id"),
                   ("tests/rules/fixtures/catalog-broken/offerings.yaml", "11:15", "validity-window")]
    # rule sets are not checked against a broken catalog, and say so
    assert {p.code for p in broken.problems if p.file.endswith("refs.yaml") and p.severity == "error"} == {"catalog"}
    expired = lint([FIXTURES / "catalog-expired"], FIXTURES / "cases", FIXTURES / "catalog-expired", NOW)
    assert [(f"{p.line}:{p.column}", p.severity, p.code) for p in expired.problems] == \
        [("8:20", "warning", "expired-offering")]
    assert expired.exit_code() == 0 and expired.exit_code(strict=True) == 1


def test_the_demo_lints_clean_with_one_acknowledged_retired_offering(monkeypatch):
    monkeypatch.chdir(DEMO_RULES.parent)   # paths as a product manager sees them
    report = lint(None, DEMO_RULES, DEMO_CATALOG, parse_time("2026-11-22T00:00:00Z"))
    assert [str(p) for p in report.problems] == []
    assert [(p.file, p.line, p.code) for p in report.acknowledged] == \
        [("rules/telco-demo.yaml", 93, "retired-offering")]
    assert set(report.files) == {"catalog/channels.yaml", "catalog/offerings.yaml", "rules/telco-demo.yaml",
                                 "rules/telco-demo.cases.yaml", "rules/telco-demo.lock.json"}
    assert report.exit_code(strict=True) == 0


def test_the_shipped_schemas_are_where_the_modelines_point():
    for path in [DEMO_RULES / "telco-demo.yaml", DEMO_RULES / "telco-demo.cases.yaml",
                 *sorted(DEMO_CATALOG.glob("*.yaml"))]:
        first = next(line for line in path.read_text().splitlines() if "yaml-language-server" in line)
        target = (path.parent / first.split("$schema=")[1].strip()).resolve()
        assert json.loads(target.read_text())["$schema"].startswith("http://json-schema.org/draft-07")


# --------------------------------------------------------------------------- lock files
@pytest.fixture
def rules_copy(tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    for name in ("telco-demo.yaml", "telco-demo.cases.yaml", "telco-demo.lock.json"):
        shutil.copy(DEMO_RULES / name, rules_dir / name)
    return rules_dir


def codes(rules_dir) -> list[str]:
    # (the copy lives outside the project, so its editor modeline points nowhere)
    return [p.code for p in lint([rules_dir], rules_dir, DEMO_CATALOG, NOW).problems if p.code != "schema-modeline"]


def test_the_lock_follows_content_not_formatting(rules_copy):
    working = rules_copy / "telco-demo.yaml"
    text = working.read_text()
    # comments, blank lines, quoting styles and CRLF line endings are not changes
    working.write_bytes(("# a new comment\n\n" + text.replace('version: "1.0.0"', "version: '1.0.0'"))
                        .replace("\n", "\r\n").encode())
    assert codes(rules_copy) == []
    # a changed value is: bump the version
    working.write_text(text.replace("priority: 20}", "priority: 21}"))
    assert codes(rules_copy) == ["version-not-bumped"]
    changes = lock_rulesets(rules_copy)
    assert [(c.version, c.action) for c in changes] == [("1.0.0", "refused")]
    working.write_text(text.replace("priority: 20}", "priority: 21}").replace('version: "1.0.0"', 'version: "1.0.1"'))
    assert codes(rules_copy) == ["version-not-recorded"]
    assert [(c.version, c.action) for c in lock_rulesets(rules_copy)] == [("1.0.1", "recorded")]
    assert codes(rules_copy) == []
    recorded = read_lock(rules_copy / "telco-demo.lock.json")
    assert list(recorded) == ["1.0.0", "1.0.1"] and recorded["1.0.1"] == semantic_hash(load_file(working))
    # a draft version may be re-recorded on purpose
    working.write_text(working.read_text().replace("priority: 21}", "priority: 22}"))
    assert [(c.version, c.action) for c in lock_rulesets(rules_copy, amend=True)] == [("1.0.1", "amended")]
    assert codes(rules_copy) == []


# --------------------------------------------------------------------------- soundness
def _witness_search(rule, catalog, rng, tries=400) -> bool:
    """Random contexts built from the values a rule mentions: does any make it hold?"""
    from app.rules.model.conditions import Compare, ScalarTest, SetTest, walk

    offerings, categories, channels, places, cats, scalars, numbers, times = set(), set(), set(), set(), set(), \
        {}, {}, []
    for cond in walk(rule.when):
        if isinstance(cond, SetTest):
            if cond.fact in ("cart", "owns"):
                offerings.update(cond.values)
            elif cond.fact in ("cart_category", "owns_category"):
                categories.update(cond.values)
            elif cond.fact == "channel":
                channels.update(cond.values)
            elif cond.fact == "place":
                places.update(cond.values)
            else:
                cats.update(cond.values)
        elif isinstance(cond, ScalarTest):
            scalars.setdefault(cond.fact, set()).update(cond.values)
        elif isinstance(cond, Compare):
            target = times if cond.fact == "time" else numbers.setdefault(cond.fact, [])
            target.extend([cond.value - 1, cond.value, cond.value + 1])
    for category in categories:
        offerings.update(o.id for o in catalog.offerings.values() if category in o.categories)
    offerings = sorted(offerings) + sorted(catalog.offerings)[:3]
    for bound in (rule.valid_from, rule.valid_to):
        if bound:
            times.extend([bound.timestamp() - 1, bound.timestamp(), bound.timestamp() + 1])
    times = times or [NOW.timestamp()]
    for _ in range(tries):
        known = rng.random() < 0.8
        chars = []
        if known:
            for name, values in scalars.items():
                if rng.random() < 0.8:
                    chars.append({"name": name, "value": rng.choice(sorted(values) + ["other"])})
            for name, values in numbers.items():
                if rng.random() < 0.8 and name not in scalars:
                    chars.append({"name": name, "value": rng.choice(values)})
        ctx = Context(
            time=dt.datetime.fromtimestamp(rng.choice(times), dt.timezone.utc),
            channels=rng.sample(sorted(channels | {"21"}), rng.randint(0, min(2, len(channels | {"21"})))),
            cart=rng.sample(offerings, rng.randint(0, min(4, len(offerings)))),
            customer={"id": "C", "characteristic": chars} if known else None,
            products=[{"id": f"P{o}", "status": "active", "productOffering": {"id": o}}
                      for o in (rng.sample(offerings, rng.randint(0, min(3, len(offerings)))) if known else [])],
            places=[{"id": p} for p in rng.sample(sorted(places), rng.randint(0, len(places)))],
            categories=rng.sample(sorted(cats), rng.randint(0, len(cats))),
        )
        facts = build_facts(ctx, catalog)
        if evaluate(rule.when, facts) and rule.valid_at(facts.time):
            return True
    return False


def test_never_fires_is_never_said_of_a_rule_that_can_fire(tmp_path):
    """On generated rule sets: every rule (or `any` branch) the analysis calls
    impossible resists a targeted random search for a context that fires it,
    and the analysis does find the contradictions the generator writes."""
    from app.rules import load_catalog

    catalog_data, ruleset_data = make_ruleset(600, 300, seed=11)
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "c.yaml").write_text(dump(catalog_data))
    catalog = load_catalog(tmp_path / "catalog")
    ruleset = parse_ruleset(dump(ruleset_data), "generated.yaml", catalog)
    rng = random.Random(5)
    impossible = dead = 0
    for rule in ruleset.rules:
        analysis = analyse(rule.when, catalog, rule.valid_from, rule.valid_to)
        if not analysis.can_fire:
            impossible += 1
            assert not _witness_search(rule, catalog, rng), f"{rule.id} can fire: {rule.when.describe()}"
            continue
        for node in positive_anys(rule.when):
            for child in node.children:
                narrowed = with_choice(rule.when, node, child)
                if not analyse(narrowed, catalog, rule.valid_from, rule.valid_to).can_fire:
                    dead += 1
                    rule_copy = dataclasses.replace(rule, when=narrowed)
                    assert not _witness_search(rule_copy, catalog, rng), f"{rule.id}: {narrowed.describe()}"
    assert impossible >= 10 and dead >= 1


def test_no_contradiction_where_there_is_none(build):
    from rulehelpers import rule
    engine = build([
        rule("A", {"any": [{"segment": "premium"}, {"cart": "6547"}], "segment": "standard"}, ("6542", 1)),
        rule("B", {"channel": "21", "not": {"channel": {"none_of": ["22"]}}}, ("6542", 1)),   # two channels
        rule("C", {"characteristic": {"tenure": ["3", "14"]}, "not": {"characteristic": {"tenure": {"less_than": 10}}}},
             ("6542", 1)),
        rule("D", {"cart_count": {"at_least": 2}, "cart": {"none_of": ["6547"]}}, ("6542", 1)),
        rule("E", {"owns": "7001", "customer": "known", "owns_count": {"at_most": 1}}, ("7002", 1)),
    ])
    for r in engine.ruleset.rules:
        assert analyse(r.when, engine.catalog, r.valid_from, r.valid_to).can_fire, r.id


def test_the_cases_schema_accepts_the_demo_cases_and_rejects_broken_ones():
    import yaml
    from app.rules.model.common import plain
    from test_editor_schemas import errors

    schema = json.loads((ROOT / "app" / "rules" / "schemas" / "cases.schema.json").read_text())
    demo = json.loads(json.dumps(plain(yaml.safe_load((DEMO_RULES / "telco-demo.cases.yaml").read_text()))))
    assert errors(demo, schema, schema) == []
    good = {"name": "x", "context": {"time": "2026-10-01T00:00:00Z"}, "expect": []}
    for broken in ({"context": {"cart": ["6547"]}},                                     # no time
                   {"context": {"time": "2026-10-01T00:00:00Z", "chanel": "21"}},       # a typo
                   {"expect": None, "absent": None, "name": "x", "context": {"time": "t"}, "extra": 1},
                   {"name": "x", "context": {"time": "t"}}):                            # neither expect nor absent
        case = {**good, **broken} if "name" not in broken else broken
        assert errors({"cases": [case]}, schema, schema) != [], broken


def test_yaml_too_deep_or_too_large_for_the_reader_is_a_finding(tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    header = 'id: {}\nversion: "1.0.0"\nstatus: test\ndescription: d\n'
    (rules_dir / "deep.yaml").write_text(header.format("deep") + "rules: " + "[" * 5000 + "]" * 5000 + "\n")
    (rules_dir / "huge.yaml").write_text(header.format("huge") + "limit: " + "9" * 5000 + "\nrules: []\n")
    report = lint(None, rules_dir, DEMO_CATALOG, NOW)
    found = {(Path(p.file).name, p.code, p.severity) for p in report.problems if p.code == "yaml-syntax"}
    assert found == {("deep.yaml", "yaml-syntax", "error"), ("huge.yaml", "yaml-syntax", "error")}


def test_a_segment_that_differs_only_in_case_is_flagged(rules_copy):
    """Segments and characteristics compare exactly (case-sensitive); the lint
    says so when a rule's value differs only in case from one a case or
    another rule uses: `Premium` would never match the cases' `premium`."""
    working = rules_copy / "telco-demo.yaml"
    text = working.read_text()
    assert text.count("segment: premium") == 2
    working.write_text(text.replace("segment: premium", "segment: Premium", 1)
                       .replace('version: "1.0.0"', 'version: "1.0.1"'))
    found = [p for p in lint([rules_copy], rules_copy, DEMO_CATALOG, NOW).problems if p.code == "value-case"]
    assert len(found) == 2 and {p.severity for p in found} == {"warning"}
    first = found[0]
    assert "segment 'Premium' differs only in case from 'premium'" in first.message
    assert "values compare exactly" in first.message and "'premium'" in first.hint
    assert first.line == text.splitlines().index(next(t for t in text.splitlines() if "segment: premium" in t)) + 1
