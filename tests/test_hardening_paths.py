"""Paths built from names stay in their folder: a rule set's `version` and
`id`, and the files found in the rules and catalog folders, never lead a
write (or a read) outside. A version is a semantic version
(MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], semver.org 2.0.0), checked at every
entry: a save over HTTP (the Rule Studio's), `flask rules keep`, `lock`,
`activate`, /admin/rules/activate, and lint; every path goes through
app.rules.model.source.contained_path (layout.py)."""
from __future__ import annotations

import re
import shutil
import sys

import pytest

import cliprocess
from app import create_app
from helpers import DEMO_CATALOG, DEMO_RULES, ROOT, Client, assert_tmf_error, if_match, demo_project

KEY = "s3cret-admin"
AUTH = {"Authorization": f"Bearer {KEY}"}
WORKING = "rules/telco-demo.yaml"


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A scratch project (rules/, catalog/, schemas) whose parent folder is
    where an escape would land; cwd is the project."""
    root = demo_project(tmp_path / "project")
    monkeypatch.chdir(root)
    return root


def client_of(project):
    app = create_app(data_dir=project / "data", rules_dir=project / "rules", catalog_dir=project / "catalog",
                     background_workers=False, admin_keys=[KEY])
    return app.test_client()


def files_outside(project) -> list[str]:
    """Every file under the test's folder that is not in the project."""
    base = project.parent
    return sorted(str(p.relative_to(base)) for p in base.rglob("*")
                  if p.is_file() and project not in p.parents and not p.name.startswith("server-"))


def with_version(text: str, version: str) -> str:
    return text.replace('version: "1.0.0"', f'version: "{version}"', 1)


def flask(project, *args, env=None):
    """`flask rules ...` in a child process (a traceback would show on stderr)."""
    import os
    environ = {**os.environ, "RECO_DATA_DIR": str(project / "data"), "RECO_RULES_DIR": str(project / "rules"),
               "RECO_CATALOG_DIR": str(project / "catalog"), "NO_COLOR": "1", **(env or {})}
    return cliprocess.run([sys.executable, "-m", "flask", "--app", str(ROOT / "wsgi.py"), "rules", *args],
                          cwd=project, env=environ, capture_output=True, text=True, timeout=300)


ESCAPES = ["a/b", "a/../../../../../../../../{outside}/PWNED", "1.0.0/../../../PWNED", "../../PWNED",
           "1.0.1\n", "01.0.1", "1.0.1-..", "1.0.1+a/b", "/tmp/PWNED",
           r"1.0.1\\..\\..\\PWNED",   # YAML's "\\" is one backslash
           "1\u0660.0.1", "1.0.1\u0661"]           # digits that only look like 0 and 1 (Arabic-Indic)


@pytest.mark.parametrize("version", ESCAPES)
def test_a_save_refuses_a_version_that_is_no_semantic_version(project, version):
    """The reported exploit: a saved version climbing out with ../ was kept
    as versions/<id>@<version>.yaml by the next save, anywhere on the disk."""
    version = version.format(outside=project.parent)
    api = client_of(project)
    original = (project / WORKING).read_text()
    (project / "rules" / "versions" / "telco-demo@a").mkdir(parents=True)   # as the first step made it
    for attempt in (version, "2.0.0"):
        text = with_version(original, attempt).replace('channel: "23"', 'channel: ["22", "23"]')
        answer = api.put("/admin/rules/telco-demo/working-copy", json={"text": text}, headers=if_match(api, AUTH))
        if attempt == version:
            error = answer.get_json()
            assert answer.status_code == 422, error
            assert error["code"] == "INVALID_VERSION" and "semantic version" in error["message"]
            assert (project / WORKING).read_text() == original
    assert files_outside(project) == []
    assert sorted(p.name for p in (project / "rules" / "versions").iterdir()) == ["telco-demo@1.0.0.cases.yaml",
                                                                               "telco-demo@1.0.0.yaml",
                                                                               "telco-demo@a"]


@pytest.mark.backends("tinydb", reason="files of the rules folder; the store plays no part")
def test_the_reported_escape_over_http_writes_nothing_outside(make_server, tmp_path):
    """End to end, as reported: a/b first, then a version that climbs out,
    then any other version."""
    rules = tmp_path / "rules"
    shutil.copytree(DEMO_RULES, rules)
    server = make_server(rules_dir=rules, env={"RECO_ADMIN_KEYS": KEY})
    api = Client(server.url)
    original = (rules / "telco-demo.yaml").read_text()
    (rules / "versions" / "telco-demo@a").mkdir(parents=True)
    for version in ("a/b", f"a/../../../../../../../..{tmp_path}/PWNED"):
        answer = api.request("PUT", "/admin/rules/telco-demo/working-copy", headers=if_match(api, AUTH),
                             json={"text": with_version(original, version)})
        assert assert_tmf_error(answer, 422)["code"] == "INVALID_VERSION"
    saved = api.request("PUT", "/admin/rules/telco-demo/working-copy", headers=if_match(api, AUTH),
                        json={"text": with_version(original, "1.0.1")})
    assert saved.status_code == 200, saved.text
    assert not list(tmp_path.rglob("PWNED*"))
    assert sorted(p.name for p in (rules / "versions").iterdir()) == [
        "telco-demo@1.0.0.cases.yaml", "telco-demo@1.0.0.yaml", "telco-demo@a"]     # a kept version keeps its cases


@pytest.mark.parametrize("version", ["../../x", "a/b", "1.0.0/..", ""])
def test_activation_refuses_a_version_that_is_no_semantic_version(project, version):
    api = client_of(project)
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": version}, headers=AUTH)
    error = answer.get_json()
    assert answer.status_code == 400 and error["code"] == "INVALID_VERSION", error
    assert api.get("/admin/rules/activations", headers=AUTH).get_json() == []


def test_keep_in_a_fresh_rules_folder_names_the_line_instead_of_a_traceback(project):
    assert not (project / "rules" / "versions").exists()
    working = project / WORKING
    working.write_text(with_version(working.read_text(), "x/y"))
    done = flask(project, "keep", "telco-demo")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"rules/telco-demo\.yaml:\d+:\d+: version 'x/y' is not a semantic version", done.stderr)
    assert not (project / "rules" / "versions").exists()


def test_keep_never_writes_outside_the_versions_folder(project):
    (project / "rules" / "versions" / "telco-demo@a").mkdir(parents=True)
    working = project / WORKING
    working.write_text(with_version(working.read_text(), f"a/../../../../../../../..{project.parent}/PWNED"))
    done = flask(project, "keep", "telco-demo")
    assert done.returncode == 1 and "is not a semantic version" in done.stderr, done.stderr
    assert files_outside(project) == []


def test_lint_reports_a_bad_version_at_its_line(project):
    working = project / WORKING
    text = with_version(working.read_text(), "x/y")
    working.write_text(text)
    line = text.splitlines().index('version: "x/y"') + 1
    done = flask(project, "lint")
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert re.search(rf"^rules/telco-demo\.yaml:{line}:\d+: error: .*'x/y' is not a semantic version",
                     done.stdout, re.M), done.stdout


def test_a_rule_set_id_never_becomes_a_lock_file_outside(project):
    """`flask rules lock` named the lock file <id>.lock.json with any id."""
    working = project / WORKING
    (project / "rules" / "evil.yaml").write_text(
        working.read_text().replace("id: telco-demo", f'id: "../../{project.parent.name}-PWNED"', 1))
    done = flask(project, "lock")
    assert "Traceback" not in done.stderr, done.stderr
    assert files_outside(project) == [] and not list(project.parent.parent.glob("*PWNED*"))
    assert [p.name for p in (project / "rules").glob("*.lock.json")] == ["telco-demo.lock.json"]


@pytest.mark.parametrize("command", [("activate", "../telco-demo", "1.0.0"), ("activate", "telco-demo", "../1.0.0"),
                                     ("keep", "../telco-demo")])
def test_the_cli_refuses_names_that_are_no_id_or_version(project, command):
    done = flask(project, *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(r"is not a semantic version|may only use letters", done.stderr), done.stderr
    assert not (project / "data" / "active-rulesets.json").exists()


def test_a_rule_file_linked_from_outside_the_folder_is_not_read(project):
    """A symbolic link in rules/ (or catalog/) to a file elsewhere is no rule
    (or catalog) file: nothing outside the folders is read or served."""
    elsewhere = project.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "other.yaml").write_text((project / WORKING).read_text().replace("id: telco-demo", "id: other", 1))
    (project / "rules" / "other.yaml").symlink_to(elsewhere / "other.yaml")
    (elsewhere / "secret.yaml").write_text("offerings: [{id: 'SECRET'}]\n")
    (project / "catalog" / "secret.yaml").symlink_to(elsewhere / "secret.yaml")
    api = client_of(project)
    status = api.get("/admin/rules", headers=AUTH).get_json()
    assert status["rulesets"] == ["telco-demo"], status
    assert "SECRET" not in api.get("/admin/rules/vocabulary", headers=AUTH).get_data(as_text=True)
    assert "other" not in flask(project, "lint").stdout


def test_contained_path_follows_links_and_dots(tmp_path):
    from app.rules.repository.layout import UnsafeName, contained_path

    folder = tmp_path / "rules"
    (folder / "versions").mkdir(parents=True)
    (folder / "out").symlink_to(tmp_path)
    assert contained_path(folder, "versions/x@1.0.0.yaml") == folder / "versions" / "x@1.0.0.yaml"
    for name in ("../x.yaml", "versions/../../x.yaml", "out/x.yaml", str(tmp_path / "x.yaml"), "a\0b", "", "."):
        with pytest.raises(UnsafeName):
            contained_path(folder, name)


def test_the_studio_lint_reads_nothing_linked_from_outside_the_folder(project):
    """The Studio's lint of unsaved text copies the rules folder to check the
    text as saved: the copy followed links, so a kept version linked from
    elsewhere was read (the lint compared it: "... is also telco-demo
    1.0.0, with other content") and a link to a folder copied that whole
    folder on every lint. The copy keeps links as links; its lint, like
    `flask rules lint`, reads no file outside the rules folder."""
    elsewhere = project.parent / "elsewhere"
    (elsewhere / "tree").mkdir(parents=True)
    (elsewhere / "tree" / "big.bin").write_bytes(b"\0" * 1024)
    text = (project / WORKING).read_text()
    (elsewhere / "kept.yaml").write_text(text.replace("priority: 40", "priority: 41", 1))
    (project / "rules" / "versions").mkdir(exist_ok=True)
    (project / "rules" / "versions" / "telco-demo@1.0.0.yaml").symlink_to(elsewhere / "kept.yaml")
    (project / "rules" / "tree").symlink_to(elsewhere / "tree", target_is_directory=True)
    copied = []
    real_copy = shutil.copyfile

    def watching_copy(src, dst, **kwargs):
        copied.append(str(src))
        return real_copy(src, dst, **kwargs)

    api = client_of(project)
    import unittest.mock
    with unittest.mock.patch("shutil.copyfile", watching_copy):
        answer = api.post("/admin/rules/lint", json={"rulesetId": "telco-demo", "text": text}, headers=AUTH)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert "kept.yaml" not in answer.get_data(as_text=True)
    assert [p["code"] for p in answer.get_json()["problems"] if p["code"] == "version-not-bumped"] == []
    assert not [src for src in copied if "big.bin" in src or "kept.yaml" in src], copied
    assert "version-not-bumped" not in flask(project, "lint").stdout       # as the CLI sees the folder



def test_a_version_with_digits_that_only_look_ascii_never_serves(project):
    """Semantic Versioning's digits are ASCII: "1\u0660.0.0" (a 1 and an
    Arabic-Indic zero) passed the check, sorted as 10.0.0 (int() reads any
    Unicode digit) and served as the highest version, shown as "1٠.0.0"."""
    lookalike = "1\u0660.0.0"
    text = with_version((project / WORKING).read_text(), lookalike)
    (project / "rules" / "versions").mkdir(exist_ok=True)
    (project / "rules" / "versions" / "telco-demo@ten.yaml").write_text(text, encoding="utf-8")
    api = client_of(project)
    status = api.get("/admin/rules", headers=AUTH).get_json()
    assert status["version"] == "1.0.0", status
    assert any("semantic version" in error or "version" in error for error in status["errors"]), status
    answer = api.post("/admin/rules/activate", json={"rulesetId": "telco-demo", "version": lookalike}, headers=AUTH)
    assert answer.status_code == 400 and answer.get_json()["code"] == "INVALID_VERSION", answer.get_json()
