"""Rule, catalog and case files are data: fuzz the loader (app/rules) with
malformed YAML, alias bombs, object-constructing tags, huge files and wrong
types. Every bad file is a RuleSetError whose problems name file:line:column;
no tag ever runs code; a bad version never replaces (or half-replaces) the
one in service.

tests/rules/model/test_file_errors.py checks the messages of ordinary mistakes;
this module is about hostile and broken input. A known bug of app/rules
gets a test marked xfail(strict=True) whose reason names the fix, so that
the fix makes it XPASS (a failure) and the marker goes with the fix.
"""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.rules import Context, RuleService, RuleSetError, load_catalog, load_ruleset
from app.rules.authoring.cases import load_cases

from helpers import DEMO_CATALOG, DEMO_RULES, ROOT

DEMO_RULE_FILE = DEMO_RULES / "telco-demo.yaml"
LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): \S")
HEADER = 'id: hostile\nversion: "1.0.0"\nstatus: test\ndescription: hostile input\n'
GOOD_RULE = ('  - id: R1\n    kind: cross-sell\n    description: d\n'
             '    when: {cart: "6547"}\n    recommend: [{offering: "6542", priority: 1}]\n')
FUZZ = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(DEMO_CATALOG)


def problems_of(load, path: Path) -> list[str]:
    """The problems of a file that must not load; each names file:line:column
    inside the file."""
    with pytest.raises(RuleSetError) as info:
        load(path)
    problems = [str(problem) for problem in info.value.problems]
    assert problems, info.value
    for problem in problems:
        match = LOCATION.match(problem)
        assert match, problem
        named = Path(match["file"])
        assert named == path or path in named.parents, (problem, path)
        lines = named.read_bytes().count(b"\n") + 1 if named.is_file() else 1
        assert 1 <= int(match["line"]) <= lines, (problem, lines)
    return problems


# -- code execution -------------------------------------------------------

def exec_tags(marker: Path) -> list[str]:
    """YAML tags that would create `marker` if any constructor ran them."""
    return [
        f'!!python/object/apply:os.system ["touch {marker}"]',
        f'!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
        f'!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
        f'!!python/object/apply:builtins.open ["{marker}", "w"]',
        f'!!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ["{marker}"]]',
        "!!python/name:os.system",
        "!!python/module:os",
        f'!python/object/apply:os.system ["touch {marker}"]',
        f'!<tag:yaml.org,2002:python/object/apply:os.system> ["touch {marker}"]',
    ]


@pytest.mark.parametrize("where", ["rule description", "rule when", "header", "catalog", "cases"])
def test_tags_never_run_code(tmp_path, catalog, where):
    marker = tmp_path / "pwned"
    for tag in exec_tags(marker):
        if where == "catalog":
            folder = tmp_path / "cat"
            folder.mkdir(exist_ok=True)
            path = folder / "a.yaml"
            path.write_text(f'productOffering:\n  - id: "1"\n    name: {tag}\n'
                            "    lifecycleStatus: Active\n")
            problems = problems_of(load_catalog, folder)
        elif where == "cases":
            path = tmp_path / "x.cases.yaml"
            path.write_text(f"cases:\n  - name: c1\n    context: {tag}\n    expect: []\n")
            problems = problems_of(load_cases, path)
        else:
            body = {"rule description": HEADER + "rules:\n" + GOOD_RULE.replace(
                        "description: d", f"description: {tag}"),
                    "rule when": HEADER + "rules:\n" + GOOD_RULE.replace(
                        'when: {cart: "6547"}', f"when: {tag}"),
                    "header": HEADER.replace("hostile input", tag) + "rules:\n" + GOOD_RULE}[where]
            path = tmp_path / "x.yaml"
            path.write_text(body)
            problems = problems_of(lambda p: load_ruleset(p, catalog), path)
        assert any("tag not allowed" in problem for problem in problems), (tag, problems)
        assert not marker.exists(), f"{tag} ran"


def test_a_service_given_exec_tags_keeps_serving_and_runs_nothing(tmp_path):
    rules_dir, state_dir = tmp_path / "rules", tmp_path / "state"
    rules_dir.mkdir()
    shutil.copy(DEMO_RULE_FILE, rules_dir / "telco-demo.yaml")
    service = RuleService(rules_dir, DEMO_CATALOG, state_dir)
    before = service.status()
    marker = tmp_path / "pwned"
    for n, tag in enumerate(exec_tags(marker)):
        (rules_dir / "versions").mkdir(exist_ok=True)
        text = DEMO_RULE_FILE.read_text().replace('version: "1.0.0"', f'version: "2.0.{n}"')
        text = text.replace("owner: product-management", f"owner: {tag}")
        (rules_dir / "versions" / f"telco-demo@2.0.{n}.yaml").write_text(text)
        service.refresh()
        status = service.status()
        assert status["version"] == "1.0.0" and status["hash"] == before["hash"]
        assert any(f"telco-demo@2.0.{n}.yaml" in error and "tag not allowed" in error
                   for error in status["errors"]), status["errors"]
    assert not marker.exists()


# -- alias bombs, depth, size ---------------------------------------------

def alias_bomb(levels: int = 12, indent: str = "") -> str:
    """The "billion laughs": 9**levels strings from a few hundred bytes."""
    text = indent + 'l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for n in range(1, levels):
        text += indent + f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]\n"
    return text


def run_isolated(code: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    """Runs loader code in a child with a memory cap, so a bomb that goes off
    fails this test instead of taking the test run down, and a cap of
    `timeout` seconds of CPU time: what a bomb spends is CPU, and a loaded
    machine (tests in parallel) stretches the wall time of a quick refusal
    but not its CPU time. The wall-clock limit is only a guard."""
    cpu = max(1, int(timeout))
    prelude = ("import resource, sys\n"
               "resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, 2 * 1024 ** 3))\n"
               f"resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu + 1}))\n"
               f"sys.path.insert(0, {str(ROOT)!r})\n")
    try:
        result = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                                capture_output=True, text=True, timeout=max(300.0, 20 * timeout), cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the loader did not finish in {max(300.0, 20 * timeout)} s of wall time")
    if result.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        pytest.fail(f"the loader used more than {cpu} s of CPU time")
    return result


@pytest.mark.parametrize("use", ["cart: *l11", "any: *l11", "all: *l11", "not: *l11",
                                 "segment: {any_of: *l11}", "time: *l11"])
def test_alias_bombs_in_rule_files_are_refused_quickly(tmp_path, use):
    path = tmp_path / "bomb.yaml"
    path.write_text(HEADER + "rules:\n" + GOOD_RULE + "    x:\n" + alias_bomb(12, "      ")
                    + GOOD_RULE.replace("R1", "R2").replace('cart: "6547"', use))
    result = run_isolated(f"""
        from app.rules import RuleSetError, load_catalog, load_ruleset
        try:
            load_ruleset({str(path)!r}, load_catalog({str(DEMO_CATALOG)!r}))
        except RuleSetError as exc:
            print("\\n".join(str(p) for p in exc.problems))
        """)
    assert result.returncode == 0, result.stderr[-2000:]
    # refused where the first alias stands, before any rule is read
    assert f"{path}:" in result.stdout and "aliases (*name)" in result.stdout, result.stdout


def test_alias_bombs_in_catalog_files_are_refused_quickly(tmp_path):
    field = "prodSpecCharValueUse"    # also place, channel: every field copied with plain()
    folder = tmp_path / "cat"
    folder.mkdir()
    (folder / "a.yaml").write_text("x:\n" + alias_bomb(12, "  ") + 'productOffering:\n'
                                   f'  - id: "1"\n    name: One\n    lifecycleStatus: Active\n'
                                   f"    {field}: *l11\n")
    result = run_isolated(f"""
        from app.rules import RuleSetError, load_catalog
        try:
            load_catalog({str(folder)!r})
        except RuleSetError as exc:
            print("\\n".join(str(p) for p in exc.problems))
        """, timeout=8)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{folder / 'a.yaml'}:" in result.stdout


@pytest.mark.parametrize("text", [
    HEADER + "rules: " + "[" * 5000 + "]" * 5000 + "\n",
    HEADER + "rules:\n" + "".join("  " * depth + "-\n" for depth in range(1, 3000)),
    HEADER + "limit: " + "9" * 5000 + "\nrules:\n" + GOOD_RULE,
], ids=["deep-flow", "deep-block", "huge-integer"])
def test_deep_or_huge_values_are_rule_set_errors(tmp_path, catalog, text):
    path = tmp_path / "x.yaml"
    path.write_text(text)
    problems_of(lambda p: load_ruleset(p, catalog), path)


@pytest.mark.parametrize("name,data", [
    ("16 MB of random bytes", bytes(range(256)) * (16 * 4096)),
    ("16 MB of text", b"lorem ipsum " * (16 * 1024 * 1024 // 12)),
    ("8 MB in one value", (HEADER + "owner: " + "x" * (8 * 1024 * 1024) + "\nrules: []\n").encode()),
], ids=["random bytes", "text", "one value"])    # not the data: pytest 9.1 puts it in the test's id
def test_huge_files_are_clear_errors(tmp_path, catalog, name, data):
    path = tmp_path / "huge.yaml"
    path.write_bytes(data)
    result = run_isolated(f"""
        import time
        from app.rules import RuleSetError, load_catalog, load_ruleset
        started = time.monotonic()
        try:
            load_ruleset({str(path)!r}, load_catalog({str(DEMO_CATALOG)!r}))
        except RuleSetError as exc:
            print(time.monotonic() - started)
            print("\\n".join(str(p)[:300] for p in exc.problems))
        """, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    seconds, first = result.stdout.splitlines()[:2]
    assert float(seconds) < 20 and first.startswith(f"{path}:"), result.stdout[:500]


# -- wrong types and malformed YAML -----------------------------------------

WRONG = {
    "empty file": "",
    "null document": "null\n",
    "a list": "- 1\n- 2\n",
    "a scalar": "hello\n",
    "several documents": HEADER + "rules: []\n---\n" + HEADER,
    "rules as a mapping": HEADER + "rules: {R1: {}}\n",
    "a rule as text": HEADER + 'rules: ["R1"]\n',
    "a rule as a number": HEADER + "rules: [5]\n",
    "when as a list": HEADER + "rules:\n" + GOOD_RULE.replace('when: {cart: "6547"}', "when: [1]"),
    "recommend as text": HEADER + "rules:\n" + GOOD_RULE.replace(
        'recommend: [{offering: "6542", priority: 1}]', "recommend: soon"),
    "priority as a mapping": HEADER + "rules:\n" + GOOD_RULE.replace("priority: 1", "priority: {}"),
    "id as a list": HEADER.replace("id: hostile", "id: [a]") + "rules:\n" + GOOD_RULE,
    "version as a date": HEADER.replace('"1.0.0"', "2026-01-01") + "rules:\n" + GOOD_RULE,
    "binary value": HEADER.replace("hostile input", "!!binary aGVsbG8=") + "rules:\n" + GOOD_RULE,
    "a set": HEADER + "rules:\n" + GOOD_RULE.replace("description: d", "description: !!set {a}"),
    "tabs for indentation": HEADER + "rules:\n\t- id: R1\n",
    "unclosed flow": HEADER + "rules: [{id: R1\n",
    "unhashable key": HEADER + "rules: []\n? [a, b]\n: 1\n",
    "duplicate key": HEADER + "id: again\nrules:\n" + GOOD_RULE,
    "NUL byte": HEADER + "owner: a\x00b\nrules:\n" + GOOD_RULE,
    "undefined alias": HEADER + "rules: *nothing\n",
    "merge key from nowhere": HEADER + "rules:\n  - <<: *base\n    id: R1\n",
}


@pytest.mark.parametrize("name", list(WRONG))
def test_wrong_types_and_malformed_yaml(tmp_path, catalog, name):
    path = tmp_path / "x.yaml"
    path.write_text(WRONG[name])
    problems_of(lambda p: load_ruleset(p, catalog), path)


@pytest.mark.parametrize("data", [b"\xff\xfe" + HEADER.encode(), HEADER.encode("utf-16"),
                                  (HEADER + "owner: caf\xe9\n").encode("latin-1")])
def test_text_that_is_not_utf8(tmp_path, catalog, data):
    path = tmp_path / "x.yaml"
    path.write_bytes(data)
    assert "UTF-8" in " ".join(problems_of(lambda p: load_ruleset(p, catalog), path))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab1:-[]{},\"'&*!|>#%@ \n\t?")), max_size=300))
def test_fuzzed_yaml_text_loads_or_names_its_location(tmp_path_factory, text):
    """Any text: it loads, or it is a RuleSetError naming file:line:column."""
    catalog = load_catalog(DEMO_CATALOG)
    path = tmp_path_factory.mktemp("fuzz") / "x.yaml"
    path.write_text(HEADER + text)
    try:
        load_ruleset(path, catalog)
    except RuleSetError as exc:
        for problem in exc.problems:
            assert LOCATION.match(str(problem)), str(problem)


def _mutations():
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10 ** 6), st.floats(),
                        st.text(max_size=8), st.just("6542"), st.just("2026-13-45T99:00:00Z"))
    values = st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
        max_leaves=6)
    return st.lists(st.tuples(st.integers(0, 10 ** 6), st.sampled_from(["set", "delete", "dup"]),
                              values), min_size=1, max_size=4)


def _nodes(doc, path=()):
    yield path, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _nodes(value, path + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield from _nodes(value, path + (index,))


@settings(FUZZ, max_examples=60)
@given(_mutations())
def test_mutated_demo_rules_load_or_name_their_location(tmp_path_factory, mutations):
    """The demo rule set with random values put in, taken out or doubled at
    random places: it loads, or every problem names file:line:column."""
    catalog = load_catalog(DEMO_CATALOG)
    doc = yaml.safe_load(DEMO_RULE_FILE.read_text())
    for pick, action, value in mutations:
        nodes = [(path, node) for path, node in _nodes(doc) if path]
        path, _node = nodes[pick % len(nodes)]
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if action == "set":
            parent[last] = value
        elif action == "delete":
            del parent[last]
        elif isinstance(parent, list):
            parent.append(parent[last])
    target = tmp_path_factory.mktemp("mut") / "x.yaml"
    target.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    try:
        load_ruleset(target, catalog)
    except RuleSetError as exc:
        for problem in exc.problems:
            assert LOCATION.match(str(problem)), str(problem)


# -- never half-loaded ------------------------------------------------------

def _context():
    import datetime as dt
    return Context(time=dt.datetime(2026, 10, 1, tzinfo=dt.timezone.utc), channels=["21"],
                   cart=["6547"], customer=None, products=[], places=[], categories=[],
                   product_orders=[])


def test_a_broken_new_version_never_replaces_the_one_in_service(tmp_path):
    """Version 2.0.0 has eight rules of which one is wrong: 1.0.0 keeps serving
    whole (same hash, same rules, same answers), status() names the error;
    once 2.0.0 is fixed it serves whole."""
    rules_dir, state_dir = tmp_path / "rules", tmp_path / "state"
    (rules_dir / "versions").mkdir(parents=True)
    shutil.copy(DEMO_RULE_FILE, rules_dir / "versions" / "telco-demo@1.0.0.yaml")
    service = RuleService(rules_dir, DEMO_CATALOG, state_dir)
    before = service.status()
    answer = [(i.offering["id"], i.rule_ids) for i in service.recommend(_context()).items]
    assert before["version"] == "1.0.0" and before["rules"] == 8

    good_v2 = DEMO_RULE_FILE.read_text().replace('version: "1.0.0"', 'version: "2.0.0"')
    broken = good_v2.replace('- {offering: "6543", priority: 30}', '- {offering: "9999", priority: 30}')
    assert broken != good_v2
    (rules_dir / "telco-demo.yaml").write_text(broken)
    service.refresh()
    status = service.status()
    assert (status["version"], status["hash"], status["rules"]) == ("1.0.0", before["hash"], 8)
    assert [(i.offering["id"], i.rule_ids) for i in service.recommend(_context()).items] == answer
    assert any(re.search(r"telco-demo\.yaml:\d+:\d+: rule R1: unknown offering '9999'", e)
               for e in status["errors"]), status["errors"]

    (rules_dir / "telco-demo.yaml").write_text(good_v2)
    service.refresh()
    assert service.status()["version"] == "2.0.0" and service.status()["errors"] == []


def test_a_broken_catalog_keeps_the_last_good_one(tmp_path):
    rules_dir, catalog_dir, state_dir = tmp_path / "rules", tmp_path / "catalog", tmp_path / "state"
    rules_dir.mkdir()
    shutil.copy(DEMO_RULE_FILE, rules_dir / "telco-demo.yaml")
    shutil.copytree(DEMO_CATALOG, catalog_dir)
    service = RuleService(rules_dir, catalog_dir, state_dir)
    before = service.status()
    answer = [i.offering["id"] for i in service.recommend(_context()).items]
    offerings = catalog_dir / "offerings.yaml"
    offerings.write_text(offerings.read_text()[: len(offerings.read_text()) // 2] + "\n  - {id: [")
    service.refresh()
    status = service.status()
    assert status["ok"] and status["hash"] == before["hash"]
    assert status["catalog"]["hash"] == before["catalog"]["hash"]
    assert [i.offering["id"] for i in service.recommend(_context()).items] == answer
    assert any("offerings.yaml:" in error for error in status["errors"]), status["errors"]
