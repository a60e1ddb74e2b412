"""`flask rules ...` end to end through click: lint, test (pass and fail
output, coverage, --fail-under), explain, diff, lock, versions, activate.
Output is plain when not on a terminal and with NO_COLOR, coloured when forced."""
from __future__ import annotations

import json
import shutil

import pytest

from app import create_app
from app.rules import RuleService
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ROOT

ANSI = "\x1b["


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch copy of the project's rules, catalog and schemas; cwd is its root."""
    shutil.copytree(DEMO_RULES, tmp_path / "rules", ignore=shutil.ignore_patterns("README.md"))
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return tmp_path


@pytest.fixture
def cli(project):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False)
    runner = app.test_cli_runner()

    def run(*args, code=0, **kwargs):
        result = runner.invoke(args=["rules", *args], **kwargs)
        assert result.exit_code == code, result.output + repr(result.exception)
        return result.output

    return run


def edit(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def new_version(cli, project, old, new, version="1.1.0"):
    """The tutorial: keep 1.0.0 in rules/versions/, edit the working copy, bump it."""
    assert cli("keep") == ("kept rules/telco-demo.yaml as rules/versions/telco-demo@1.0.0.yaml\n"
                           "kept its cases as rules/versions/telco-demo@1.0.0.cases.yaml\n")
    kept = (project / "rules" / "versions" / "telco-demo@1.0.0.yaml").read_text()
    assert kept.startswith("# yaml-language-server: $schema=../../app/rules/schemas/ruleset.schema.json\n")
    edit(project / "rules" / "telco-demo.yaml", old, new)
    edit(project / "rules" / "telco-demo.yaml", 'version: "1.0.0"', f'version: "{version}"')


# --------------------------------------------------------------------------- lint
def test_lint_the_demo_is_clean(cli):
    out = cli("lint")
    assert out == "5 files checked: 0 errors, 0 warnings (1 acknowledged with lint-ignore)\n"
    assert "rules/telco-demo.yaml:93:20: acknowledged: rule R8: recommends 7401" in cli("lint", "--show-acknowledged")
    assert ANSI not in out


def test_lint_an_error_names_place_rule_check_and_fix(cli, project):
    edit(project / "rules" / "telco-demo.yaml", "cart_category: devices", "cart_category: device")
    out = cli("lint", code=1)
    lines = out.splitlines()
    assert lines[0].startswith("rules/telco-demo.yaml:6:10: error: the content changed since version 1.0.0")
    assert lines[2] == ("rules/telco-demo.yaml:40:22: error: rule R3: unknown category 'device' "
                        "(no catalog offering has it) [unknown-category]")
    assert lines[3].startswith("    fix: did you mean 'devices'?")
    assert lines[-1] == "5 files checked: 2 errors, 0 warnings (1 acknowledged with lint-ignore)"
    data = json.loads(cli("lint", "rules/telco-demo.yaml", "--json", code=1))
    assert [(p["line"], p["column"], p["code"], p["rule"]) for p in data["problems"]] == \
        [(6, 10, "version-not-bumped", None), (40, 22, "unknown-category", "R3")]


def test_lint_warnings_alone_exit_0_unless_strict(cli, project):
    edit(project / "rules" / "telco-demo.yaml", "   # lint-ignore: retired-offering", "   # (no longer acknowledged)")
    out = cli("lint", "rules/telco-demo.yaml")
    assert "rules/telco-demo.yaml:93:20: warning: rule R8: recommends 7401 (Roaming Pack EU), which is Retired" in out
    assert out.splitlines()[-1] == "1 file checked: 0 errors, 1 warning"
    cli("lint", "--strict", code=1)


def test_colour_only_when_forced_and_never_with_no_color(cli, project, monkeypatch):
    edit(project / "rules" / "telco-demo.yaml", '"7301"', '"7399"')
    assert ANSI not in cli("lint", code=1)                   # not a terminal: plain
    coloured = cli("lint", code=1, color=True)                # as on a terminal
    assert f"{ANSI}1;31merror{ANSI}0m" in coloured
    monkeypatch.setenv("NO_COLOR", "1")
    assert ANSI not in cli("lint", code=1, color=True)


# --------------------------------------------------------------------------- test
def test_test_passes_with_a_table_and_full_coverage(cli):
    out = cli("test").splitlines()
    assert out[0] == "telco-demo 1.0.0 (rules/telco-demo.yaml): 23 cases from rules/telco-demo.cases.yaml"
    assert out[1].split() == ["RESULT", "CASE", "ITEMS"]
    assert out[2].split() == ["pass", "E1-anonymous-phone-in-app", "6542,", "6543,", "7301"]
    assert "  pass    R6-no-fiber-upsell-outside-store        (nothing)" in out
    assert out[-2:] == ["Coverage: 8 of 8 rules fired in at least one case (100%)", "23 passed, 0 failed"]


def test_test_failure_shows_expected_actual_and_why(cli, project):
    edit(project / "rules" / "telco-demo.yaml", 'channel: ["21", "22"]', 'channel: ["21", "22", "23"]')
    edit(project / "rules" / "telco-demo.yaml", 'cart: ["6547", "6550"]', 'cart: ["6550"]')
    out = cli("test", code=1)
    lines = out.splitlines()
    assert "  FAIL    E1-anonymous-phone-in-app               7301" in lines
    start = lines.index("FAIL E1-anonymous-phone-in-app  (rules/telco-demo.cases.yaml:7)")
    assert lines[start:start + 9] == [
        "FAIL E1-anonymous-phone-in-app  (rules/telco-demo.cases.yaml:7)",
        "  expected  6542, 6543, 7301",
        "  actual    7301",
        "  problem   item 6542: expected rules ['R1'], but it is not in the answer",
        "  problem   item 6543: expected rules ['R1'], but it is not in the answer",
        "  why each actual item:",
        "    1. 7301 Device Insurance: R3 device-insurance (priority 40): all of: cart_category has any of "
        "[devices]; channel has any of [21, 22, 23]",
        "  why expected items are missing:",
        "    6542 TMFone Case: R1 phone-accessories did not fire: cart has any of [6550]: cart is [6547] (line 20:7)",
    ]
    start = lines.index("FAIL E2-premium-phone-in-store  (rules/telco-demo.cases.yaml:12)")
    assert lines[start + 1:start + 3] == ["  expected  6550, 6542, 6543", "  actual    6550, 7301"]
    assert lines[-1] == "15 passed, 8 failed"


def test_test_coverage_and_fail_under(cli):
    out = cli("test", "-k", "E1-", "--fail-under", "20").splitlines()
    assert out[-8:] == [
        "Coverage: 2 of 8 rules fired in at least one case (25%)",
        "  never fired: R2 pro-upsell (rules/telco-demo.yaml:25)",
        "  never fired: R4 data-upsell (rules/telco-demo.yaml:45)",
        "  never fired: R5 unlimited-upsell (rules/telco-demo.yaml:54)",
        "  never fired: R6 fiber-upsell (rules/telco-demo.yaml:64)",
        "  never fired: R7 holiday-streaming (rules/telco-demo.yaml:74)",
        "  never fired: R8 roaming (rules/telco-demo.yaml:86)",
        "1 passed, 0 failed",
    ]
    out = cli("test", "-k", "E1-", "--fail-under", "90", code=1)
    assert "Coverage 25% is under --fail-under 90%" in out
    data = json.loads(cli("test", "rules/telco-demo.yaml", "--json"))
    assert data["ok"] and data["files"][0]["coveragePercent"] == 100.0


# --------------------------------------------------------------------------- explain
def test_explain_a_case_context(cli, project):
    (project / "e2.json").write_text(json.dumps({"customer": {"segment": "premium"}, "cart": ["6547"],
                                                 "channel": "23", "time": "2026-10-01T00:00:00Z"}))
    lines = cli("explain", "e2.json").splitlines()
    assert lines[:8] == [
        "Rule set telco-demo 1.0.0 (rules/telco-demo.yaml), limit 4",
        "Context",
        "  time      2026-10-01T00:00:00Z",
        "  channel   23",
        "  customer  known, segment premium",
        "  cart      6547  (categories: devices)",
        "  owns      -",
        "Rules",
    ]
    assert "  fired    R2 pro-upsell (line 25): proposes 6550 (10)" in lines
    i = lines.index("  no       R3 device-insurance (line 35): a condition failed")
    assert lines[i + 1] == "             failed: channel has any of [21, 22]: channel is [23]  (line 41:7)"
    i = lines.index("  no       R7 holiday-streaming (line 74): outside its validFor "
                    "[2026-11-15T00:00:00Z, 2027-01-01T00:00:00Z) at 2026-10-01T00:00:00Z")
    assert lines[lines.index("Policies") + 1] == "  proposed: 6542 (R1, 20), 6543 (R1, 30), 6550 (R2, 10)"
    assert lines[-4:] == ["Result", "  1. 6550 TMFone Pro: priority 10, rules R2",
                          "  2. 6542 TMFone Case: priority 20, rules R1",
                          "  3. 6543 TMFone Screen Protector: priority 30, rules R1"]


def test_explain_policy_drops_and_a_tmf680_query(cli, project):
    (project / "e6.json").write_text(json.dumps({
        "name": "E6", "context": {"customer": {"segment": "premium"}, "owns": ["6542", "7002"], "cart": ["6547"],
                                  "channel": "22", "time": "2026-10-01T00:00:00Z"}}))
    lines = cli("explain", "e6.json").splitlines()
    i = lines.index("Policies")
    assert lines[i + 2:i + 9] == [
        "  1. owned or in the cart:",
        "    dropped 6542 TMFone Case (from R1): owned, the customer owns it (active product)",
        "  2. not Active, or out of validity:",
        "    dropped 7401 Roaming Pack EU (from R8): not-active, lifecycleStatus is Retired",
        "  3. one item per offering: nothing dropped",
        "  4. limit 4:",
        "    dropped 7301 Device Insurance (from R3): over-limit, only the best 4 items are returned",
    ]
    (project / "query.json").write_text(json.dumps({
        "channel": [{"id": "21"}], "validFor": {"startDateTime": "2026-10-01T12:00:00Z"},
        "shoppingCart": [{"id": "c1", "@type": "ShoppingCart",
                          "cartItem": [{"id": "1", "quantity": 1, "productOffering": {"id": "6547"}}]}]}))
    out = cli("explain", "query.json")
    assert out.endswith('  {"customer": "none", "cart": ["6547"], "channel": "21", "time": "2026-10-01T12:00:00Z"}\n')
    data = json.loads(cli("explain", "query.json", "--json"))
    assert [item["offering"]["id"] for item in data["items"]] == ["6542", "6543", "7301"]
    assert next(r for r in data["rules"] if r["id"] == "R2")["failedAt"] == [
        {"condition": "segment is one of [premium]: segment is not set", "line": 31, "column": 7}]
    (project / "bad.json").write_text('{"cart": ["6547"], "chanel": "21"}')
    out = cli("explain", "bad.json", code=1)
    assert "unknown field 'chanel' in a context" in out


# --------------------------------------------------------------------------- diff, lock, versions, activate
def test_diff_reports_gained_lost_and_reordered_per_context(cli, project):
    new_version(cli, project, "{offering: \"6543\", priority: 30}", "{offering: \"6543\", priority: 5}")
    edit(project / "rules" / "telco-demo.yaml", 'channel: ["21", "22"]', 'channel: ["22"]')
    (project / "recorded.jsonl").write_text(
        '{"cart": ["6550"], "channel": "21", "time": "2026-10-01T00:00:00Z"}\n'
        '\n'
        '{"name": "fiber-web", "context": {"customer": {"segment": "standard"}, "owns": ["7101"], '
        '"channel": "22", "time": "2026-10-01T00:00:00Z"}}\n')
    summary = [
        "Impact of telco-demo 1.0.0 (rules/versions/telco-demo@1.0.0.yaml) -> telco-demo 1.1.0 (rules/telco-demo.yaml)",
        "Rules:",
        "  R1 changed: recommend",
        "  R3 changed: when",
        "Contexts: 25 (23 cases, 2 recorded); 10 change, 15 unchanged",
        "Summary: 10 of 25 contexts change: 1 item gained, 4 lost, reordered in 8, reasons changed in 0",
    ]
    # the summary first; the contexts on request
    out = cli("diff", "telco-demo@1.0.0", "rules/telco-demo.yaml", "--contexts", "recorded.jsonl")
    assert out.splitlines() == summary + [
        "Add --details to see what changes in each of the 10 changed contexts."]
    out = cli("diff", "telco-demo@1.0.0", "rules/telco-demo.yaml", "--contexts", "recorded.jsonl", "--details")
    lines = out.splitlines()
    assert lines[:6] == summary and lines[6:8] == ["", "E1-anonymous-phone-in-app"]
    i = lines.index("E1-anonymous-phone-in-app")
    assert lines[i + 1:i + 6] == [
        "  before  6542, 6543, 7301",
        "  after   6543, 6542",
        "  lost    7301 Device Insurance, was #3 (rules R3)",
        "  moved   6543 TMFone Screen Protector: #2 -> #1",
        "  moved   6542 TMFone Case: #1 -> #2",
    ]
    i = lines.index("recorded.jsonl:1")
    assert lines[i + 1:i + 3] == ["  before  6542, 6543, 7301", "  after   6543, 6542"]
    assert "fiber-web" not in lines                      # unchanged contexts are not listed
    i = lines.index("P4-limit-of-four-over-many-rules")
    assert lines[i + 1:i + 5] == [
        "  before  6550, 7002, 6542, 7202",
        "  after   6543, 6550, 7002, 6542",
        "  gained  6543 TMFone Screen Protector at #1 (rules R1)",
        "  lost    7202 Streaming Bundle, was #4 (rules R7)",
    ]
    assert sum(1 for line in lines if line.startswith("  before ")) == 10
    limited = cli("diff", "1.0.0", "1.1.0", "--contexts", "recorded.jsonl", "--details", "--limit", "3")
    limited = limited.splitlines()
    assert limited[:6] == summary and sum(1 for line in limited if line.startswith("  before ")) == 3
    assert limited[-1] == ("... and 7 more contexts not shown "
                           "(the first 3 of 10; a higher --limit, or 0 for all)")
    assert cli("diff", "1.0.0", "1.1.0", "--contexts", "recorded.jsonl", "--details", "--limit", "0") == out
    data = json.loads(cli("diff", "1.0.0", "1.1.0", "--json", "--fail-on-change", code=1))
    assert data["summary"] == {"contexts": 23, "changed": 9, "gained": 1, "lost": 3, "reordered": 7,
                               "reasonsChanged": 0}        # the same, without the recorded contexts
    assert cli("diff", "1.0.0", "telco-demo@1.0.0", "--fail-on-change").splitlines()[-1] == \
        "Summary: 0 of 23 contexts change: 0 items gained, 0 lost, reordered in 0, reasons changed in 0"


def test_lock_versions_and_activate_switch_every_worker(cli, project):
    new_version(cli, project, "{offering: \"6543\", priority: 30}", "{offering: \"6543\", priority: 5}")
    other_worker = RuleService(project / "rules", project / "catalog", project / "data")
    assert other_worker.status()["version"] == "1.1.0"                  # nothing pinned: the highest
    assert "version 1.1.0 is not recorded" in cli("lint")
    assert cli("lock").splitlines() == [
        "telco-demo 1.1.0 (rules/telco-demo.yaml): recorded",
        "telco-demo 1.0.0 (rules/versions/telco-demo@1.0.0.yaml): already recorded",
        "lock file: rules/telco-demo.lock.json",
    ]
    assert cli("lint").splitlines()[-1] == "6 files checked: 0 errors, 0 warnings (2 acknowledged with lint-ignore)"
    out = cli("activate", "telco-demo", "1.0.0")
    assert out.startswith("telco-demo 1.0.0 is active (pinned).\n")
    pointer = json.loads((project / "data" / "active-rulesets.json").read_text())
    assert pointer["rulesets"]["telco-demo"]["version"] == "1.0.0"
    other_worker.refresh()
    assert other_worker.status()["version"] == "1.0.0" and other_worker.status()["pinned"]
    table = cli("versions").splitlines()
    assert table[0].split() == ["VERSION", "STATUS", "STATE", "LOCK", "FILE"]
    assert set(table[1]) == {"─"}
    assert table[2].split() == ["1.0.0", "stable", "active", "(pinned)", "recorded",
                                "rules/versions/telco-demo@1.0.0.yaml"]
    assert table[3].split() == ["1.1.0", "stable", "-", "recorded", "rules/telco-demo.yaml"]
    assert table[2].index("active") == table[3].index("-  ") == table[0].index("STATE")   # aligned
    cli("activate", "telco-demo", "--latest")
    other_worker.refresh()
    assert other_worker.status()["version"] == "1.1.0" and not other_worker.status()["pinned"]
    out = cli("activate", "telco-demo", "2.0.0", code=1)
    assert "rule set 'telco-demo' has no version '2.0.0' (known: 1.0.0, 1.1.0)" in out
    cli("activate", "telco-demo", code=2)                               # a version, or --latest
    history = json.loads(cli("history", "--json"))                      # newest first; refusals not recorded
    assert [(h["action"], h["fromVersion"], h["version"]) for h in history] == [
        ("unpin", "1.0.0", "1.1.0"), ("rollback", "1.1.0", "1.0.0")]   # to an older version; 1.0.0 was locked: no record
    assert all(h["by"].endswith("(flask rules)") for h in history)
    table = cli("history").splitlines()
    assert table[0].split()[:4] == ["WHEN", "(UTC)", "WHO", "WHAT"] and "unpin" in table[2]


def test_lock_refuses_a_changed_version(cli, project):
    edit(project / "rules" / "telco-demo.yaml", "priority: 20}", "priority: 21}")
    out = cli("lock", code=1)
    assert "telco-demo 1.0.0 (rules/telco-demo.yaml): CHANGED since it was recorded: bump its version" in out
    assert "re-recorded (--amend)" in cli("lock", "--amend")
    assert cli("lint").splitlines()[-1] == "5 files checked: 0 errors, 0 warnings (1 acknowledged with lint-ignore)"


def test_diff_names_items_recommended_for_other_reasons(build):
    from app.rules.authoring.diff import diff_engines
    from app.rules.authoring.report import diff_lines
    from rulehelpers import ctx, rule

    old = build([rule("R1", {"cart": "6547"}, ("6542", 20)), rule("R2", {"cart": "6547"}, ("6543", 30))])
    new = build([rule("R1", {"cart": "6547"}, ("6542", 20)), rule("R2", {"cart": "6547"}, ("6543", 30), ("6542", 10)),
                 rule("R3", {"cart": "6550"}, ("7301", 40))], version="1.1.0")
    report = diff_engines(old, new, [("phone", "recorded", ctx(cart=["6547"]))])
    assert [(r.rule, r.change, r.fields) for r in report.rules] == [("R2", "changed", ["recommend"]),
                                                                    ("R3", "added", [])]
    lines = diff_lines(report)
    assert "  reasons 6542 TMFone Case: rules R1 -> R2, R1" in lines
    assert "Summary: 1 of 1 contexts change: 0 items gained, 0 lost, reordered in 0, reasons changed in 1" in lines


def run_diff_with_stderr(project, stderr_is_terminal: bool) -> tuple[str, str]:
    """`flask rules diff` as a user runs it: stdout piped, stderr a terminal (a
    pseudo-terminal) or a pipe too."""
    import os
    import pty
    import subprocess
    import sys

    env = dict(os.environ, FLASK_APP="wsgi", RECO_RULES_DIR=str(project / "rules"),
               RECO_CATALOG_DIR=str(project / "catalog"), RECO_DATA_DIR=str(project / "data"),
               RECO_BACKGROUND_WORKERS="false", COLUMNS="100", TERM="xterm")
    env.pop("NO_COLOR", None)
    command = [sys.executable, "-m", "flask", "rules", "diff", "rules/telco-demo.yaml", "rules/telco-demo.yaml"]
    if not stderr_is_terminal:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        return done.stdout, done.stderr
    parent, child = pty.openpty()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=child, text=True,
                              timeout=300)
        os.close(child)
        chunks = []
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:                      # EIO: the terminal's other side is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(parent)
    return done.stdout, b"".join(chunks).decode("utf-8", "replace")


def test_diff_shows_progress_on_a_terminal_only(project):
    stdout, terminal = run_diff_with_stderr(project, stderr_is_terminal=True)
    assert "Comparing contexts" in terminal and "23/23" in terminal
    assert ANSI not in stdout and stdout.splitlines()[-1].startswith("Summary: 0 of 23 contexts change")
    stdout_piped, stderr_piped = run_diff_with_stderr(project, stderr_is_terminal=False)
    assert stdout_piped == stdout
    assert "Comparing" not in stderr_piped and ANSI not in stderr_piped
