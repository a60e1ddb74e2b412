"""docs/deployment.md's steps, run as an operator pastes them, against a
throw-away PostgreSQL cluster on loopback: its `sql` block creates the role
and the database, its `sh` blocks upgrade and check the schema, load
customers and products, copy a TinyDB store and start gunicorn, which must
then be ready and serve what was loaded, with links on the documented public
base URL. Each command must succeed (exit 0).

The guide's hosts are changed: the database host `db.internal:5432` becomes
the cluster's loopback address and the listening address `0.0.0.0:8080` a
free loopback port (tests only target loopback); a host the guide names that
is not substituted fails here rather than being contacted. So is the name of
the role and database `reco`, which the throw-away cluster's own superuser
already has (bin/pg): the guide's SQL and URL use `reco_guide` instead. The files the commands name (customers.jsonl, products.jsonl,
instance/data) are made in the working directory first, as an operator
would have them."""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from urllib.parse import urlsplit

import psycopg
import pytest
import requests

from helpers import ROOT, free_port, wait_until

from app.store import open_store

pytestmark = pytest.mark.backends("postgresql", reason="the guide deploys on PostgreSQL")

GUIDE = ROOT / "docs" / "deployment.md"
#: a fenced block, indented as in a list item: (indent, language, body)
FENCE = re.compile(r"^([ \t]*)```(sh|sql)\n(.*?)^\1```", re.S | re.M)
DATABASE_HOST = "db.internal:5432"
DATABASE_URL = f"postgresql://reco:change-me@{DATABASE_HOST}/reco"
ROLE = "reco_guide"
LISTEN_ADDRESS = "0.0.0.0:8080"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def guide_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each sh and sql block, in order, dedented."""
    return [(language, textwrap.dedent(body)) for _indent, language, body in FENCE.findall(text)]


def shell_commands(block: str) -> list[list[str]]:
    """The words of each command of an sh block (`\\` continues a line,
    `# ...` is a comment)."""
    return [words for words in (shlex.split(line, comments=True)
                                for line in block.replace("\\\n", " ").splitlines()) if words]


def customer(n: int) -> dict:
    return {"id": f"crm-{n}", "name": f"Customer {n}",
            "engagedParty": {"id": f"party-{n}", "@referredType": "Individual"}}


def prepare_files(workdir) -> None:
    """The files the guide's commands name, relative to where they run."""
    (workdir / "customers.jsonl").write_text("".join(json.dumps(customer(n)) + "\n" for n in (1, 2)))
    (workdir / "products.jsonl").write_text("".join(json.dumps({
        "id": f"prod-{n}", "status": "active", "name": f"Plan {n}", "productOffering": {"id": "7001"},
        "relatedParty": [{"id": "crm-1", "role": "customer", "@referredType": "Customer"}]}) + "\n"
        for n in (1, 2)))
    with open_store(workdir / "instance" / "data") as tinydb:      # the TinyDB store `store copy` reads
        tinydb.insert("customer", {**customer(3), "href": "/tmf-api/customerManagement/v4/customer/crm-3"})
    # `flask --app wsgi` and `gunicorn -c gunicorn.conf.py wsgi:app` name files of the checkout
    for name in ("wsgi.py", "gunicorn.conf.py"):
        (workdir / name).symlink_to(ROOT / name)


def loopback_only(words: list[str]) -> None:
    """Every database URL and listening address a command names is on loopback."""
    for word in words:
        value = word.split("=", 1)[1] if re.match(r"^[A-Z_]+=", word) else word
        if value.startswith(("postgresql://", "postgres://")):
            assert urlsplit(value).hostname in LOOPBACK, f"not substituted: {word}"
        if word.startswith("RECO_BIND="):
            assert value.rsplit(":", 1)[0] in LOOPBACK, f"not substituted: {word}"


def test_the_deployment_guide_runs_as_written_on_postgresql(pg_cluster, tmp_path):
    text = GUIDE.read_text(encoding="utf-8")
    assert DATABASE_URL in text and LISTEN_ADDRESS in text, "the guide's hosts changed: update this test"
    database = urlsplit(pg_cluster.url)
    port = free_port()
    text = text.replace(DATABASE_URL, f"postgresql://{ROLE}:change-me@127.0.0.1:{database.port}/{ROLE}")
    text = text.replace(LISTEN_ADDRESS, f"127.0.0.1:{port}")
    blocks = guide_blocks(text)
    assert [language for language, _ in blocks] == ["sql", "sh", "sh", "sh"], blocks

    workdir = tmp_path / "deploy"
    workdir.mkdir()
    prepare_files(workdir)
    env = {key: value for key, value in os.environ.items() if not key.startswith("RECO_") or
           key in ("RECO_RULES_DIR", "RECO_CATALOG_DIR")}
    env.update({"PYTHONPATH": str(ROOT), "RECO_DATA_DIR": str(tmp_path / "data"), "NO_COLOR": "1"})
    server = None
    ran = []
    try:
        for language, body in blocks:
            if language == "sql":                       # step 1, as the cluster's superuser
                with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
                    for statement in filter(str.strip, body.split(";")):
                        conn.execute(re.sub(r"\breco\b", ROLE, statement))
                ran.append("sql")
                continue
            for words in shell_commands(body):
                loopback_only(words)
                if words[0] == "export":
                    env.update(word.split("=", 1) for word in words[1:])
                    continue
                assignments = [w for w in words if re.match(r"^[A-Z_]+=", w)]
                command = words[len(assignments):]
                tool = command[0].removeprefix(".venv/bin/")
                assert command[0] == f".venv/bin/{tool}" and tool in ("flask", "gunicorn"), command
                run_env = {**env, **dict(a.split("=", 1) for a in assignments)}
                argv = [sys.executable, "-m", tool, *command[1:]]
                if tool == "gunicorn":                  # step 4: the service, until it is ready
                    server = subprocess.Popen(argv, cwd=workdir, env=run_env, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
                    ran.append("gunicorn")
                    continue
                done = subprocess.run(argv, cwd=workdir, env=run_env, capture_output=True, text=True,
                                      timeout=300)
                assert done.returncode == 0, (command, done.stdout, done.stderr)
                ran.append(" ".join(command[3:5]))
        assert ran == ["sql", "store upgrade", "store check", "store load", "store load", "store copy",
                       "gunicorn"], ran

        base = f"http://127.0.0.1:{port}"

        def ready():
            assert server.poll() is None, server.stdout.read()
            try:
                return requests.get(f"{base}/health/ready", timeout=30).status_code == 200
            except requests.RequestException:       # not listening yet, or its workers still booting
                return False

        wait_until(ready, timeout=180)
        customers = "/tmf-api/customerManagement/v4/customer"
        for loaded in ("crm-1", "crm-2", "crm-3"):              # two loaded, one copied
            got = requests.get(f"{base}{customers}/{loaded}", timeout=30)
            assert got.status_code == 200, got.text
        body = {key: value for key, value in customer(4).items() if key != "id"}
        created = requests.post(f"{base}{customers}", json=body, timeout=30)
        assert created.status_code == 201, created.text
        new_id = created.json()["id"]
        assert created.json()["href"] == f"https://reco.example.com{customers}/{new_id}"   # RECO_PUBLIC_BASE_URL
        owned = requests.get(f"{base}/tmf-api/productInventory/v4/product", params={"relatedParty.id": "crm-1"},
                             timeout=30)
        assert owned.headers["X-Total-Count"] == "2"
        assert requests.get(f"{base}/health", timeout=30).json()["store"]["backend"] == "postgresql"
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        with psycopg.connect(pg_cluster.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {ROLE} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {ROLE}")
