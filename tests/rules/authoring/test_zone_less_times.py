"""A date-time without a zone in a rule file (`time: {from:
2027-03-28T02:30:00}`), or a bare date, is read as UTC although the rules
guide says dates carry a zone: `flask rules lint` (and the Rule Studio's lint
of unsaved text) report each one as an error at its file:line:column with the
fix, in rule files (time tests, validFor), catalog files (validFor) and cases
files (the evaluation time); values with a zone are not reported."""
from __future__ import annotations

import shutil
import sys

import pytest

import cliprocess
from app import create_app
from app.timeutil import names_zone
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, demo_project

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
R7_WINDOW = '      startDateTime: "2026-11-15T00:00:00Z"\n      endDateTime: "2027-01-01T00:00:00Z"'


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = demo_project(tmp_path)
    monkeypatch.chdir(root)
    return root


def _edit(path, old: str, new: str) -> int:
    """Replace `old` (once) and return the 1-based line where `new` starts."""
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))
    return text[:text.index(old)].count("\n") + 1


def _lint(project, *args):
    env = {"RECO_RULES_DIR": str(project / "rules"), "RECO_CATALOG_DIR": str(project / "catalog"),
           "RECO_DATA_DIR": str(project / "data"), "PATH": "/usr/bin:/bin"}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "rules", "lint",
                           *args], cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_demo_has_no_zone_less_times(project):
    done = _lint(project)
    assert done.returncode == 0 and "time-zone" not in done.stdout, done.stdout


def test_every_zone_less_time_is_an_error_at_its_line_with_the_fix(project):
    rules = project / "rules" / "telco-demo.yaml"
    when = _edit(rules, 'channel: "23"', 'channel: "23"\n      time: {from: 2027-03-28T02:30:00, '
                                         'before: "2027-04-01T00:00:00Z"}')
    line = _edit(rules, R7_WINDOW, "      startDateTime: 2026-11-15\n"
                                   "      endDateTime: 2027-01-01T00:00:00+01:00")
    offerings = project / "catalog" / "offerings.yaml"
    catalog_line = _edit(offerings, 'startDateTime: "2026-11-01T00:00:00Z"',
                         'startDateTime: "2026-11-01 00:00:00"')
    cases = project / "rules" / "telco-demo.cases.yaml"
    case_line = _edit(cases, 'time: "2026-10-01T00:00:00Z"', 'time: "2026-10-01T00:00:00"')
    done = _lint(project)
    assert done.returncode == 1, done.stdout
    found = [row for row in done.stdout.splitlines() if "time-zone" in row]
    expected = {
        f"rules/telco-demo.yaml:{line}:": "2026-11-15 is a date without a time and zone: it is read as UTC "
                                          "(2026-11-15T00:00:00Z)",
        f"rules/telco-demo.yaml:{when + 1}:": "2027-03-28T02:30:00 is a date-time without a zone: it is read "
                                              "as UTC (2027-03-28T02:30:00Z)",
        f"catalog/offerings.yaml:{catalog_line}:": "2026-11-01 00:00:00 is a date-time without a zone",
        f"rules/telco-demo.cases.yaml:{case_line}:": "2026-10-01T00:00:00 is a date-time without a zone",
    }
    assert len(found) == len(expected), done.stdout
    for where, message in expected.items():
        row = next((row for row in found if row.startswith(where)), None)
        assert row is not None and message in row and "error" in row, (where, done.stdout)
    assert 'write the zone meant: "2027-03-28T02:30:00Z" for UTC, or its offset' in done.stdout
    # the zone-ful values beside them are not reported
    assert "2027-01-01T00:00:00+01:00 is" not in done.stdout and "2027-04-01" not in done.stdout


def test_zone_less_dates_in_characteristic_comparisons_are_errors_too(project):
    """A characteristic compared with a date (`before`, `after`, `between`,
    any comparison) is read as UTC as a `time` test is: the same error."""
    rules = project / "rules" / "telco-demo.yaml"
    line = _edit(rules, "      segment: premium\n",
                 "      segment: premium\n"
                 "      characteristic: {contractEnd: {before: 2027-01-01T00:00:00},\n"
                 "                       renewal: {between: [\"2026-01-01\", \"2026-06-01T00:00:00Z\"]},\n"
                 "                       since: {after: \"2026-02-01T00:00:00+01:00\"}}\n")
    done = _lint(project)
    found = [row for row in done.stdout.splitlines() if "time-zone" in row]
    assert len(found) == 2, done.stdout
    assert found[0].startswith(f"rules/telco-demo.yaml:{line + 1}:")
    assert "2027-01-01T00:00:00 is a date-time without a zone: it is read as UTC" in found[0]
    assert found[1].startswith(f"rules/telco-demo.yaml:{line + 2}:")
    assert "2026-01-01 is a date without a time and zone" in found[1]
    assert 'write the zone meant: "2027-01-01T00:00:00Z" for UTC' in done.stdout


def test_the_studio_lint_of_unsaved_text_says_so(project):
    client = create_app(data_dir=project / "data", rules_dir=project / "rules",
                        catalog_dir=project / "catalog", background_workers=False,
                        admin_keys=[KEY]).test_client()
    text = (project / "rules" / "telco-demo.yaml").read_text()
    text = text.replace(R7_WINDOW, '      startDateTime: "2026-11-15T00:00:00"\n'
                                   '      endDateTime: "2027-01-01T00:00:00Z"')
    report = client.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": text},
                         headers=AUTH).get_json()
    found = [p for p in report["problems"] if p["code"] == "time-zone"]
    assert len(found) == 1 and found[0]["severity"] == "error" and found[0]["rule"] is None
    assert found[0]["hint"].startswith('write the zone meant: "2026-11-15T00:00:00Z"')


@pytest.mark.parametrize("value,zone", [
    ("2027-03-28T02:30:00Z", True), ("2027-03-28T02:30:00+02:00", True), ("2027-03-28T02:30:00-0500", True),
    ("2027-03-28T02:30:00+01", True), ("2019-07-03 T04:00:00.0Z", True),
    ("2027-03-28T02:30:00", False), ("2027-03-28", False), ("2027-03-28 02:30", False),
    ("soon", None), ("", None), (5, None), (None, None),
])
def test_names_zone(value, zone):
    assert names_zone(value) is zone
