"""Every example of README.md and of the guides in docs/ that call the service,
followed in order on a fresh server, shows what the document says (a newcomer
pastes them; an example that no longer works is a defect). The `curl` and
`flask` lines of a document's `sh` blocks run in order, like a newcomer pasting
them: `B=`/`L=` set variables,
`<customer id>`-style placeholders take the id of the latest resource of that
kind the examples created, and a line that references a query waits until
it is done ("done a moment later"). Each answer must have the status the
document states (`# 204`, `#   -> 400 ...`), else a 2xx; a JSON list answer
must not be empty (an example that lists nothing shows nothing). curl itself
is not needed: its few options used here are read and sent with requests."""
from __future__ import annotations

import re
import shlex
import sys
import time

import pytest
import requests

import cliprocess
from helpers import PATIENCE, ROOT

#: an sh block, also one indented in a list item (docs/deployment.md's steps)
FENCE = re.compile(r"^[ \t]*```sh\n(.*?)^[ \t]*```", re.S | re.M)
PLACEHOLDER = re.compile(r"<([a-z ]+ id)>")
EXPECTED = re.compile(r"#\s*(?:->\s*)?(\d{3})\b")
#: Each document whose `sh` blocks call the service, and the fewest `curl` lines
#: it holds: a section moved away or emptied fails here instead of passing unseen.
DOCUMENTS = {"README.md": 4, "docs/api.md": 26}
#: documents whose examples need more than a fresh server (a database to
#: create, gunicorn to start) and that another test runs: document -> test
RUN_ELSEWHERE = {"docs/deployment.md": "tests/test_deployment_guide.py"}
KINDS = {"customer": "customer id", "product": "product id", "queryProductRecommendation": "query id",
         "hub": "hub id", "salesLead": "lead id"}


def readme_commands(text: str) -> list[tuple[str, int | None]]:
    """(command, stated status) for each command line of the sh blocks, in order."""
    commands: list[tuple[str, int | None]] = []
    for block in FENCE.findall(text):
        lines = block.splitlines()
        index = 0
        while index < len(lines):
            line = lines[index]
            # a `\` line end or an open quote continues the command, as in a shell
            while (line.endswith("\\") or not _balanced(line)) and index + 1 < len(lines):
                index += 1
                line = (line[:-1] if line.endswith("\\") else line) + "\n" + lines[index]
            index += 1
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                match = EXPECTED.match(stripped)
                if match and commands:
                    commands[-1] = (commands[-1][0], int(match.group(1)))
                continue
            command, _, comment = _split_comment(stripped)
            match = EXPECTED.match(comment.strip()) if comment else None
            commands.append((command, int(match.group(1)) if match else None))
    return commands


def _balanced(line: str) -> bool:
    if line.lstrip().startswith("#"):
        return True
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return False
    return True


def _split_comment(line: str) -> tuple[str, str, str]:
    """Split off a trailing `# comment` that is outside quotes."""
    quote = None
    for position, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and position and line[position - 1] == " ":
            return line[:position].rstrip(), "#", line[position:]
    return line, "", ""


class Walkthrough:
    def __init__(self, server):
        self.server = server
        self.variables: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        self.session = requests.Session()

    def expand(self, command: str) -> str:
        def placeholder(match):
            name = match.group(1)
            assert name in self.ids, f"the document uses <{name}> before an example creates one: {command}"
            return self.ids[name]
        command = PLACEHOLDER.sub(placeholder, command)
        for name, value in sorted(self.variables.items(), key=lambda item: -len(item[0])):
            command = command.replace("$" + name, value)
        return command.replace("http://127.0.0.1:8080", self.server.url)

    def run(self, command: str, expected: int | None) -> None:
        if re.match(r"^[A-Z]+=", command):
            name, value = command.split("=", 1)
            self.variables[name] = self.expand(value)
            return
        if "<query id>" in command and "query id" in self.ids:
            self.wait_done(self.ids["query id"])
        expanded = self.expand(command)
        if command.startswith("curl "):
            self.curl(expanded, expected, command)
        elif command.startswith(".venv/bin/flask "):
            args = shlex.split(expanded)[1:]
            done = cliprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=self.server.env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
            assert done.stdout.strip(), command
        # bin/serve, bin/test and the like are the set-up, done by the fixture

    def curl(self, expanded: str, expected: int | None, command: str) -> None:
        words = shlex.split(expanded)[1:]
        method, headers, data, url = None, {}, None, None
        index = 0
        while index < len(words):
            word = words[index]
            if word.startswith("-X"):
                method = word[2:] or words[index + 1]
                index += 0 if word[2:] else 1
            elif word == "-H":
                name, _, value = words[index + 1].partition(":")
                headers[name.strip()] = value.strip()
                index += 1
            elif word == "-d":
                data = words[index + 1]
                index += 1
            elif word in ("-o", "-w"):
                index += 1
            elif word.startswith("-"):
                assert set(word[1:]) <= set("si"), f"curl option {word} is not understood here"
            else:
                url = word
            index += 1
        method = method or ("POST" if data is not None else "GET")
        response = self.session.request(method, url, headers=headers,
                                        data=data.encode() if data is not None else None, timeout=30)
        if expected is not None:
            assert response.status_code == expected, (command, response.status_code, response.text[:500])
            return
        assert 200 <= response.status_code < 300, (command, response.status_code, response.text[:500])
        body = response.json() if response.content else None
        if isinstance(body, list):
            assert body, f"the example lists nothing: {command}"
        if method == "POST" and isinstance(body, dict) and "id" in body:
            kind = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            if kind in KINDS:
                self.ids[KINDS[kind]] = body["id"]

    def wait_done(self, query_id: str) -> None:
        url = f"{self.server.url}/tmf-api/recommendationManagement/v4/queryProductRecommendation/{query_id}"
        deadline = time.time() + PATIENCE
        while time.time() < deadline:
            if self.session.get(url, timeout=30).json().get("state") in ("done", "terminatedWithError"):
                return
            time.sleep(0.1)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_examples_in_order_on_a_fresh_server(make_server, document):
    commands = readme_commands((ROOT / document).read_text())
    curls = sum(command.startswith("curl ") for command, _ in commands)
    assert curls >= DOCUMENTS[document], f"{document}: {curls} curl examples found"
    server = make_server()
    server.env = dict(server.env, FLASK_APP="wsgi", RECO_BACKGROUND_WORKERS="false", NO_COLOR="1")
    walkthrough = Walkthrough(server)
    for command, expected in commands:
        walkthrough.run(command, expected)


def test_every_document_with_examples_is_run():
    """A new guide with `curl` or `flask` examples must be added to DOCUMENTS
    (or RUN_ELSEWHERE, naming the test that runs them), so they run."""
    documents = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
    with_examples = {str(path.relative_to(ROOT)) for path in documents
                     if any(command.startswith(("curl ", ".venv/bin/flask "))
                            for command, _ in readme_commands(path.read_text()))}
    assert with_examples == set(DOCUMENTS) | set(RUN_ELSEWHERE)
    for document, test in RUN_ELSEWHERE.items():
        assert document in (ROOT / test).read_text(encoding="utf-8"), (document, test)
