"""One settings object (app/config.py): every RECO_* variable the code reads
is a setting (or listed as the service's own), a bad value stops the start
with a line naming it, and docs/configuration.md's table is the one the
fields write."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from app.config import INTERNAL_VARIABLES, Settings, SettingsError
from app.config_table import END, START, render
from tests.helpers import ROOT

SOURCES = [*sorted((ROOT / "app").rglob("*.py")), ROOT / "gunicorn.conf.py", ROOT / "wsgi.py",
           *sorted(p for p in (ROOT / "bin").iterdir() if p.is_file())]
VARIABLE = re.compile(r"\bRECO_[A-Z][A-Z0-9_]*\b")


def _env(**values) -> dict:
    """This process's environment without any RECO_ setting, plus values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECO_")}
    return {**env, **values}


def test_every_reco_variable_the_code_names_is_a_setting_or_the_services_own():
    settings = {Settings.variable(name) for name in Settings.model_fields}
    named = {}
    for path in SOURCES:
        for variable in VARIABLE.findall(path.read_text(encoding="utf-8", errors="replace")):
            named.setdefault(variable, path.relative_to(ROOT))
    unknown = {v: str(p) for v, p in named.items() if v not in settings and v not in INTERNAL_VARIABLES}
    assert not unknown, f"add these to app/config.py Settings (or INTERNAL_VARIABLES): {unknown}"
    # both undocumented before
    assert {"RECO_API_KEYS", "RECO_PROTECT_READS", "RECO_SECRET_KEY", "RECO_BIND"} <= settings
    assert not settings & set(INTERNAL_VARIABLES)


def test_no_module_reads_a_reco_variable_beside_the_settings():
    """os.environ reads of RECO_ names are the settings' job; the only
    others are the service's own process plumbing."""
    reads = re.compile(r"environ(?:\.get\(|\[)\s*\"(RECO_[A-Z0-9_]+)\"")
    found = {m for path in SOURCES for m in reads.findall(path.read_text(encoding="utf-8", errors="replace"))}
    assert found <= set(INTERNAL_VARIABLES), found - set(INTERNAL_VARIABLES)


@pytest.mark.parametrize("variable, value, words", [
    ("RECO_MAX_PAGE_SIZE", "abc", "valid integer"),
    ("RECO_MAX_PAGE_SIZE", "0", "greater than or equal to 1"),
    ("RECO_EVENT_TIMEOUT_SECONDS", "-1", "greater than 0"),
    ("RECO_DECISION_LOG", "maybe", "valid boolean"),
    ("RECO_EVENT_DISPATCHER", "thread", "'process' or 'workers'"),
    ("RECO_LOG_LEVEL", "loud", "'DEBUG'"),
    ("RECO_EVENT_DISPATCHER_NICE", "40", "less than or equal to 19"),
])
def test_a_bad_value_is_an_error_naming_the_variable(variable, value, words):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert f"{variable}={value!r}" in str(caught.value) and words in str(caught.value)


def test_values_are_read_typed_and_empty_is_unset(tmp_path):
    settings = Settings.from_env({
        "RECO_API_KEYS": " a, b ,", "RECO_PROTECT_READS": "yes", "RECO_RULESET": "shop",
        "RECO_LOG_LEVEL": "debug", "RECO_DATA_DIR": str(tmp_path), "RECO_MAX_PAGE_SIZE": "",
        "RECO_CALLBACK_ALLOWED_HOSTS": "*", "RECO_SECRET_KEY": "s3cret"})
    assert settings.api_keys == ["a", "b"] and settings.protect_reads is True
    assert settings.ruleset_id == "shop" and settings.log_level == "DEBUG"
    assert settings.data_dir == tmp_path and settings.max_page_size == 1000
    assert settings.callback_allowed_hosts == ["*"]
    assert settings.secret_key.get_secret_value() == "s3cret" and "s3cret" not in repr(settings)
    # overrides win over the environment; an unknown one is refused
    assert Settings.from_env({"RECO_MAX_PAGE_SIZE": "5"}, max_page_size=7).max_page_size == 7
    with pytest.raises(TypeError, match="unknown setting 'max_pages'"):
        Settings.from_env({}, max_pages=3)


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "flask", "--app", "wsgi", "routes"],
    [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
], ids=["flask", "gunicorn"])
def test_the_service_refuses_to_start_with_a_bad_value_and_says_which(command, tmp_path):
    env = _env(RECO_DATA_DIR=str(tmp_path), RECO_MAX_PAGE_SIZE="lots", RECO_BIND="127.0.0.1:0")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "RECO_MAX_PAGE_SIZE='lots': Input should be a valid integer" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_committed_configuration_table_is_the_one_the_settings_write():
    done = subprocess.run([sys.executable, "-m", "app.config_table", "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{done.stderr}\nrun: python -m app.config_table"
    document = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{Settings.variable(name)}` |" in document


def test_a_stale_table_is_found_and_rewritten(tmp_path):
    stale = tmp_path / "configuration.md"
    stale.write_text(f"# Configuration\n\nText kept.\n\n{START}\n| `RECO_OLD` | 1 | gone |\n{END}\nAfter.\n",
                     encoding="utf-8")
    command = [sys.executable, "-m", "app.config_table", "--document", str(stale)]
    checked = subprocess.run([*command, "--check"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert checked.returncode == 1 and "stale" in checked.stderr
    assert subprocess.run(command, cwd=ROOT, timeout=300).returncode == 0
    assert stale.read_text(encoding="utf-8") == (
        f"# Configuration\n\nText kept.\n\n{START}\n{render()}{END}\nAfter.\n")
    row = next(line for line in render().splitlines() if line.startswith("| `RECO_MAX_BODY_BYTES`"))
    assert "| `1048576` |" in row and "| `RECO_DATA_DIR` | `instance/data` |" in render()
