"""Rule files with CRLF line endings (git's autocrlf on Windows, and every
browser's textarea, which posts CRLF): line endings never change a version's
identity. Saving the in-service version's text unchanged but for its line
endings, through the Rule Studio's endpoint, was a 409 "bump `version`"; the
content hash the lock file and lint use already ignored them, and so do the
CLI's lint, lock and keep (checked here so that it stays so)."""
from __future__ import annotations

import shutil
import sys

import pytest

import cliprocess
from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, if_match, demo_project

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
SAVE = "/admin/rules/telco-demo/working-copy"


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch copy of the tests' demo rules and catalog; cwd is its root."""
    root = demo_project(tmp_path)
    monkeypatch.chdir(root)
    return root


def client_of(project):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules",
                     catalog_dir=project / "catalog", background_workers=False, admin_keys=[KEY])
    return app.test_client()


def test_saving_the_served_version_with_crlf_line_endings_is_no_change(project):
    working = project / "rules" / "telco-demo.yaml"
    text = working.read_bytes().decode("utf-8")
    assert "\r" not in text
    client = client_of(project)
    saved = client.put(SAVE, json={"text": crlf(text)}, headers=if_match(client, AUTH))
    assert saved.status_code == 200, saved.get_json()
    assert client.get("/admin/rules", headers=AUTH).get_json()["version"] == "1.0.0"


def test_a_crlf_file_saved_byte_for_byte_is_no_change(project):
    working = project / "rules" / "telco-demo.yaml"
    working.write_bytes(crlf(working.read_text()).encode())          # as git autocrlf checks it out
    client = client_of(project)
    text = working.read_bytes().decode("utf-8")
    saved = client.put(SAVE, json={"text": text}, headers=if_match(client, AUTH))
    assert saved.status_code == 200, saved.get_json()
    saved = client.put(SAVE, json={"text": text.replace("\r\n", "\n")}, headers=if_match(client, AUTH))
    assert saved.status_code == 200, saved.get_json()


def test_a_real_change_in_crlf_text_is_still_refused(project):
    working = project / "rules" / "telco-demo.yaml"
    original = working.read_bytes()
    client = client_of(project)
    changed = crlf(original.decode()).replace('channel: "23"', 'channel: ["22", "23"]')
    refused = client.put(SAVE, json={"text": changed}, headers=if_match(client, AUTH))
    assert refused.status_code == 409
    assert "save it as" in refused.get_json()["message"]
    assert working.read_bytes() == original


def test_lint_of_unsaved_crlf_text_finds_what_lf_text_finds(project):
    client = client_of(project)
    text = (project / "rules" / "telco-demo.yaml").read_text()
    broken = text.replace('channel: "23"', 'channel: "23"\n    nonsense: 1', 1)

    def lint(body):
        response = client.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": body},
                               headers=AUTH)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    for sample in (text, broken):
        assert lint(crlf(sample)) == lint(sample)


def _cli(project, *args):
    env = {"RECO_RULES_DIR": str(project / "rules"), "RECO_CATALOG_DIR": str(project / "catalog"),
           "RECO_DATA_DIR": str(project / "data"), "PATH": "/usr/bin:/bin"}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "rules", *args],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_cli_lint_lock_and_keep_ignore_line_endings(project):
    lf = _cli(project, "lint")
    lock = (project / "rules" / "telco-demo.lock.json").read_text()
    for path in [*(project / "rules").glob("*.*"), *(project / "catalog").glob("*.yaml")]:
        path.write_bytes(crlf(path.read_text()).encode())
    linted = _cli(project, "lint")
    assert (linted.returncode, linted.stdout) == (lf.returncode, lf.stdout), linted.stderr
    locked = _cli(project, "lock")
    assert locked.returncode == 0 and "already recorded" in locked.stdout, locked.stdout + locked.stderr
    assert (project / "rules" / "telco-demo.lock.json").read_text().replace("\r\n", "\n") == lock
    kept = _cli(project, "keep")
    assert kept.returncode == 0, kept.stderr
    working = project / "rules" / "telco-demo.yaml"
    working.write_bytes(working.read_bytes().replace(b"\r\n", b"\n"))
    again = _cli(project, "keep")                 # the kept CRLF copy is the same version
    assert again.returncode == 0, again.stderr
