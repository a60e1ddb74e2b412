"""One size limit (RECO_MAX_RULE_FILE_BYTES) for every way a rule, catalog
or cases file arrives, checked before the file is read or parsed: the rules
folder at start and in the watcher's background reload, `flask rules
lint/test/keep/lock`, the Rule Studio's save and lint (/admin/rules), the
catalog. Each refusal names the file and the limit.

The files here are valid rule sets padded with comments past a small limit:
without the limit they load (and a 50 MB one made every worker parse it)."""
from __future__ import annotations

import os
import re
import shutil
import sys

import pytest

import cliprocess
from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, Client, wait_until, if_match, demo_project

LIMIT = 64 * 1024
KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
OVER = re.compile(rf"is \d+ bytes .*over the limit of {LIMIT} bytes")


def padded(text: str, size: int = LIMIT + 1024) -> str:
    """`text` with comment lines appended until it is `size` bytes."""
    return text + "#" * 79 + "\n" + "# padding\n" * ((size - len(text)) // 10)


@pytest.fixture(autouse=True)
def _default_limit():
    yield
    from app.rules.model.source import DEFAULT_MAX_FILE_BYTES, set_max_file_bytes
    set_max_file_bytes(DEFAULT_MAX_FILE_BYTES)          # in-process apps set it for the process


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = demo_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def big_ruleset(project, rid: str = "big") -> str:
    return padded((project / "rules" / "telco-demo.yaml").read_text().replace("id: telco-demo", f"id: {rid}", 1))


def flask(project, *args):
    environ = {**os.environ, "RECO_DATA_DIR": str(project / "data"), "RECO_RULES_DIR": str(project / "rules"),
               "RECO_CATALOG_DIR": str(project / "catalog"), "NO_COLOR": "1",
               "RECO_MAX_RULE_FILE_BYTES": str(LIMIT)}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "rules", *args],
                          cwd=project, env=environ, capture_output=True, text=True, timeout=300)


@pytest.mark.backends("tinydb", reason="files of the rules folder; the store plays no part")
def test_the_rules_folder_refuses_big_files_at_start_and_in_the_background(make_server, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    (rules / "big.yaml").write_text(padded((rules / "telco-demo.yaml").read_text()
                                           .replace("id: telco-demo", "id: big", 1)))
    server = make_server(rules_dir=rules, env={"RECO_MAX_RULE_FILE_BYTES": str(LIMIT),
                                               "RECO_RULES_CHECK_INTERVAL": "0.2"})
    api = Client(server.url)
    status = api.get("/admin/rules").json()
    assert status["rulesetId"] == "telco-demo" and status["version"] == "1.0.0"
    assert any("big.yaml" in e and OVER.search(e) for e in status["errors"]), status["errors"]

    (rules / "versions").mkdir()                          # the watcher's reload
    (rules / "versions" / "telco-demo@2.0.0.yaml").write_text(
        padded((rules / "telco-demo.yaml").read_text().replace('version: "1.0.0"', 'version: "2.0.0"', 1)))
    found = wait_until(lambda: [e for e in api.get("/health").json()["rules"].get("errors", [])   # a reload
                                if "telco-demo@2.0.0.yaml" in e], 30)
    assert found and OVER.search(found[0]), found
    status = api.get("/admin/rules").json()
    assert status["version"] == "1.0.0"                   # 2.0.0 was not read, so it never serves


def test_lint_names_the_file_and_the_limit_without_reading_it(project):
    (project / "rules" / "big.yaml").write_text(big_ruleset(project))
    (project / "catalog" / "more.yaml").write_text(padded("productOffering: []\n"))
    done = flask(project, "lint")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(rf"^rules/big\.yaml:1:1: error: the file {OVER.pattern}", done.stdout, re.M), done.stdout
    assert re.search(rf"^catalog/more\.yaml:1:1: .*{OVER.pattern}", done.stdout, re.M), done.stdout


def test_keep_lock_and_test_refuse_big_files(project):
    working = project / "rules" / "telco-demo.yaml"
    original = working.read_text()
    cases = project / "rules" / "telco-demo.cases.yaml"
    cases_text = cases.read_text()
    cases.write_text(padded(cases_text))
    done = flask(project, "test")
    assert done.returncode == 1 and "telco-demo.cases.yaml" in done.stderr and OVER.search(done.stderr), done.stderr
    cases.write_text(cases_text)

    working.write_text(padded(original))
    done = flask(project, "keep", "telco-demo")
    assert done.returncode == 1 and "Traceback" not in done.stderr and OVER.search(done.stderr), done.stderr
    assert not (project / "rules" / "versions").exists()

    working.write_text(padded(original.replace('version: "1.0.0"', 'version: "1.2.0"')))
    lock = project / "rules" / "telco-demo.lock.json"
    before = lock.read_text()
    done = flask(project, "lock")
    assert "Traceback" not in done.stderr and "1.2.0" not in lock.read_text() and lock.read_text() == before


def test_the_studio_save_and_lint_use_the_same_limit(project):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, admin_keys=[KEY], max_rule_file_bytes=LIMIT,
                     max_body_bytes=4 * LIMIT)
    api = app.test_client()
    working = project / "rules" / "telco-demo.yaml"
    original = working.read_text()
    text = padded(original.replace('version: "1.0.0"', 'version: "1.0.1"'))
    saved = api.put("/admin/rules/telco-demo/working-copy", json={"text": text}, headers=if_match(api, AUTH))
    error = saved.get_json()
    assert saved.status_code == 413 and error["code"] == "FILE_TOO_LARGE" and OVER.search(error["message"]), error
    assert working.read_text() == original and not (project / "rules" / "versions").exists()
    linted = api.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": text}, headers=AUTH)
    assert linted.status_code == 413 and linted.get_json()["code"] == "FILE_TOO_LARGE"
    fits = api.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": original}, headers=AUTH)
    assert fits.status_code == 200 and fits.get_json()["errors"] == 0


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_rule_file_within_the_limit_can_be_saved_whatever_the_body_limit(project, encoding):
    """A rule file under RECO_MAX_RULE_FILE_BYTES serves and opens in the
    Studio; saving it back was a 413 BODY_TOO_LARGE when it was over
    RECO_MAX_BODY_BYTES (1 MiB by default, the rule limit is 10 MiB): two
    limits. The endpoints that carry a rule file's text take one at the rule
    limit (JSON-escaped), also gzip-encoded; every other body keeps its limit."""
    import gzip
    import json

    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, admin_keys=[KEY], max_rule_file_bytes=LIMIT,
                     max_body_bytes=LIMIT // 4)
    api = app.test_client()
    working = project / "rules" / "telco-demo.yaml"
    text = padded(working.read_text().replace('version: "1.0.0"', 'version: "1.0.1"'), LIMIT - 1024)
    text = text.replace("# padding\n", '# "é"\\\n', 200)       # characters JSON escapes
    headers = {**AUTH, "Content-Type": "application/json"}
    if encoding == "gzip":
        headers["Content-Encoding"] = "gzip"

    def body(value: dict) -> bytes:
        raw = json.dumps(value).encode()
        return gzip.compress(raw) if encoding == "gzip" else raw

    assert len(json.dumps({"text": text}).encode()) > LIMIT // 4
    linted = api.post("/admin/rules/lint", data=body({"rulesetId": "telco-demo", "text": text}), headers=headers)
    assert linted.status_code == 200, linted.get_json()
    saved = api.put("/admin/rules/telco-demo/working-copy", data=body({"text": text}), headers=if_match(api, headers))
    assert saved.status_code == 200, saved.get_json()
    assert working.read_text() == text
    over = api.put("/admin/rules/telco-demo/working-copy", data=body({"text": padded(text, LIMIT + 10)}),
                   headers=if_match(api, headers))
    assert over.status_code == 413 and over.get_json()["code"] == "FILE_TOO_LARGE", over.get_json()
    other = api.post("/admin/rules/explain", data=body({"cart": ["6547"], "pad": "x" * LIMIT}), headers=headers)
    assert other.status_code == 413 and other.get_json()["code"] == "BODY_TOO_LARGE", other.get_json()
