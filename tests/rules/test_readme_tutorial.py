"""The tutorial "Changing a rule" (docs/rules-tutorial.md), followed step by
step on a scratch copy of the demo, prints what the tutorial shows (a product
manager follows it to the letter). The edits are the tutorial's own YAML
snippets (steps 3 and 8) and JSON context (step 6); every `$ flask rules ...`
line runs through the CLI, and each output line the tutorial shows (except
`...`) must appear in that command's output, in order."""
from __future__ import annotations

import re
import shutil

import pytest

from app import create_app
from rulehelpers import DEMO_CATALOG, DEMO_RULES, ROOT

TUTORIAL = "docs/rules-tutorial.md"
#: From the tutorial's title to the next title of its level, or the end of the file.
SECTION = re.compile(r"^# Changing a rule.*?(?=^# |\Z)", re.S | re.M)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def tutorial_blocks() -> list[tuple[str, str]]:
    section = SECTION.search((ROOT / TUTORIAL).read_text())
    assert section, f"{TUTORIAL} has no section '# Changing a rule'"
    text = section.group(0)
    return [(lang, body) for lang, body in FENCE.findall(text)]


def commands_of(block: str) -> list[tuple[str, list[str]]]:
    """($ command, shown output lines) of a console block."""
    found: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            found.append((line[2:].split("  #")[0].strip(), []))
        elif found:
            found[-1][1].append(line)
    return found


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copytree(DEMO_RULES, tmp_path / "rules")
    shutil.copytree(DEMO_CATALOG, tmp_path / "catalog")
    shutil.copytree(ROOT / "app" / "rules" / "schemas", tmp_path / "app" / "rules" / "schemas")
    (tmp_path / "instance").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path


def _replace_item(text: str, start: str, stop: str, new: str) -> str:
    """Replace the YAML list item that begins with `start` up to `stop`."""
    begin = text.index(start)
    end = text.index(stop, begin)
    return text[:begin] + new.rstrip("\n") + "\n\n" + text[end:]


def test_the_tutorial_shows_what_it_says(project):
    app = create_app(data_dir=project / "instance" / "data", rules_dir=project / "rules",
                     catalog_dir=project / "catalog", background_workers=False)
    runner = app.test_cli_runner()
    blocks = tutorial_blocks()
    yaml_snippets = [body for lang, body in blocks if lang == "yaml"]
    rule_edit, case_edit = yaml_snippets[0], yaml_snippets[1]
    context = next(body for lang, body in blocks if lang == "json")
    rules_file = project / "rules" / "telco-demo.yaml"
    cases_file = project / "rules" / "telco-demo.cases.yaml"
    checked = 0
    for lang, body in blocks:
        if lang == "yaml" and body is rule_edit:            # step 3: bump, then edit R6
            text = rules_file.read_text().replace('version: "1.0.0"', 'version: "1.1.0"', 1)
            rules_file.write_text(_replace_item(text, "  - id: R6\n", "  - id: R7\n", body))
        elif lang == "yaml" and body is case_edit:          # step 8: replace the old case
            cases_file.write_text(_replace_item(cases_file.read_text(),
                                                "  - name: R6-no-fiber-upsell-outside-store\n",
                                                "  - name: R7-", body))
        elif lang == "json" and body is context:            # step 6: where the tutorial says
            (project / "instance" / "fiber-web.json").write_text(body)
        for command, shown in commands_of(body):
            words = command.split()
            assert words[:2] == ["flask", "rules"], command
            tail = None
            if "|" in words:
                pipe = words.index("|")
                assert words[pipe + 1:] == ["tail", "-1"], command
                words, tail = words[:pipe], 1
            result = runner.invoke(args=words[1:])
            assert result.exception is None or isinstance(result.exception, SystemExit), \
                (command, result.output, result.exception)
            lines = result.output.splitlines()[-tail:] if tail else result.output.splitlines()
            position = 0
            for expected in (line for line in shown if line.strip() and line.strip() != "..."):
                matches = [i for i in range(position, len(lines)) if lines[i].rstrip() == expected.rstrip()]
                assert matches, f"{command}: the tutorial shows {expected!r}; output:\n{result.output}"
                position = matches[0] + 1
                checked += 1
    assert checked >= 30    # the tutorial's outputs were found and compared
