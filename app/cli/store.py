"""`flask store ...`: the operator's commands for the data plane.

    flask --app wsgi store upgrade                      # apply the schema migrations
    flask --app wsgi store check                        # exit 1 unless the schema is current
    flask --app wsgi store load customer customers.jsonl
    flask --app wsgi store load product products.jsonl
    flask --app wsgi store copy tinydb:///var/lib/reco/data   # into RECO_STORE_URL

The store is the one RECO_STORE_URL names (TinyDB in RECO_DATA_DIR if unset).
"""
from __future__ import annotations

import json
import os
import sys
import time

import click
from flask import current_app
from flask.cli import AppGroup

from ..textform import nfc_tree
from .output import progress_bar

store_cli = AppGroup("store", help="The data store: schema, bulk loads, copies.")

BATCH = 1000
#: What `load` accepts: TMF629 Customer and TMF637 Product, validated with
#: the API's own create schemas.
LOADABLE = {"customer": "customer", "product": "product"}


def _store():
    return current_app.extensions["reco"].store


@store_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True,
              help="Alembic revision to upgrade to.")
def upgrade(revision: str) -> None:
    """Create or upgrade the PostgreSQL schema (Alembic migrations). Safe to
    run again; run it once per database before starting workers of a new
    release."""
    from ..store.schema import upgrade as run_upgrade

    url = current_app.extensions["reco"].settings.store_url
    if not url or not url.lower().startswith(("postgresql:", "postgres:")):
        click.echo("RECO_STORE_URL names no PostgreSQL database; TinyDB needs no schema.")
        return
    run_upgrade(url, revision)
    click.echo(f"schema upgraded to {revision}")


@store_cli.command("check")
def check() -> None:
    """Exit 0 when workers can serve against this store, else say why."""
    store = _store()
    from ..store import StoreUnavailable

    checker = getattr(store, "check_schema", None)
    try:
        if checker:
            checker()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{store.backend}: ready")


@store_cli.command("load")
@click.argument("kind", type=click.Choice(sorted(LOADABLE)))
@click.argument("path", type=click.File("r", encoding="utf-8"))
@click.option("--base-url", default=None,
              help="Base of the stored href links (default RECO_PUBLIC_BASE_URL, else "
                   "relative links, as the API stores them).")
def load(kind: str, path, base_url: str | None) -> None:
    """Bulk-load TMF629 customers or TMF637 products from a JSON Lines file
    (one resource per line, e.g. a CRM or inventory export).

    Each line is checked with the same schema as the API's POST; a line that
    fails is reported with its number and skipped, the others are loaded. A
    line's `id` is kept (so products' relatedParty still names their
    customer); a line without one gets a new UUID. Ids already stored are
    reported and left as they are. No notifications are sent. Exit status 1
    when any line was not loaded."""
    reco = current_app.extensions["reco"]
    service = reco.resources[LOADABLE[kind]]
    # as the API does (issue 12 item 9): relative links unless a public base is set
    base = (base_url or reco.settings.public_base_url or "").rstrip("/")
    started = time.monotonic()
    loaded = bad = 0
    batch: list[tuple[int, dict]] = []

    def flush() -> None:
        nonlocal loaded, bad
        if not batch:
            return
        skipped = set(reco.store.insert_many(service.kind.collection, [doc for _n, doc in batch]))
        for position, (number, doc) in enumerate(batch):
            if position in skipped:
                bad += 1
                click.echo(f"{path.name}:{number}: id {doc['id']!r} is already stored; "
                           "line skipped", err=True)
            else:
                loaded += 1
        batch.clear()

    # the bar counts bytes read: a file's lines are not known before reading it
    with progress_bar(f"loading {kind}", _size(path)) as advance:
        for number, line in enumerate(path, start=1):
            advance(len(line.encode("utf-8")))
            if not line.strip():
                continue
            try:
                batch.append((number, _resource(service, line, base)))
            except ValueError as exc:
                bad += 1
                click.echo(f"{path.name}:{number}: {exc}", err=True)
            if len(batch) >= BATCH:
                flush()
        flush()
    seconds = time.monotonic() - started
    click.echo(f"{loaded} {kind} records loaded, {bad} lines skipped, in {seconds:.1f} s "
               f"({loaded / max(seconds, 1e-9):,.0f}/s)")
    if bad:
        sys.exit(1)


def _size(handle) -> int | None:
    """Bytes of an opened file, None for a pipe (the bar then has no end)."""
    try:
        return os.fstat(handle.fileno()).st_size or None
    except (OSError, ValueError, AttributeError):
        return None


def _resource(service, line: str, base: str) -> dict:
    """The stored resource of one JSON line; ValueError says what is wrong."""
    from ..errors import TMFError

    try:
        body = nfc_tree(json.loads(line))      # stored in NFC, as through the API
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    given_id = body.pop("id", None)
    body.pop("href", None)
    if given_id is not None and (not isinstance(given_id, str) or not given_id.strip()
                                 or len(given_id) > 200):
        raise ValueError("id must be a non-empty string of at most 200 characters")
    try:
        resource = service.new_resource(body, base)
    except TMFError as exc:
        details = f": {json.dumps(exc.details, sort_keys=True)}" if exc.details else ""
        raise ValueError(f"{exc.message}{details}") from None
    if given_id is not None:
        resource["id"] = given_id
        resource["href"] = f"{base}{service.kind.base_path}/{given_id}"
    return resource


@store_cli.command("copy")
@click.argument("source")
def copy(source: str) -> None:
    """Copy every collection of the store at SOURCE (a TinyDB directory or
    URL) into this service's store (RECO_STORE_URL), keeping ids. Documents
    whose id is already in the target are left as they are and counted."""
    from ..store import open_store

    target = _store()
    copied = skipped = 0
    with open_store(source) as origin:
        names = origin.collections()
        for name in names:
            docs = origin.all(name)
            with progress_bar(f"copying {name}", len(docs)) as advance:
                for start in range(0, len(docs), BATCH):
                    chunk = docs[start:start + BATCH]
                    dup = len(target.insert_many(name, chunk))
                    skipped += dup
                    copied += len(chunk) - dup
                    advance(len(chunk))
            click.echo(f"{name}: {len(docs)} documents")
    click.echo(f"copied {copied} documents of {len(names)} collections; "
               f"{skipped} already present")
