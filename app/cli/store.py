"""`flask store ...`: the operator's commands for the data plane.

    flask --app wsgi store upgrade                      # apply the schema migrations
    flask --app wsgi store check                        # exit 1 unless the schema is current
    flask --app wsgi store load customer customers.jsonl
    flask --app wsgi store load product products.jsonl
    flask --app wsgi store copy tinydb:///var/lib/reco/data   # into RECO_STORE_URL

The store is the one RECO_STORE_URL names (TinyDB in RECO_DATA_DIR if unset).
"""
from __future__ import annotations
# The commands import the modules they run inside their functions, to keep
# start-up light: every `import app` (gunicorn's config, each worker, each
# test) loads this module through app/cli/__init__.py.

import json
import os
import sys
import time

import click
from flask.cli import AppGroup

from ..events.records import DISPATCHERS
from ..exactnumbers import InexactNumber, stored_float
from ..ids import id_problem
from ..jsonbody import long_integer_problem
from ..services import services
from ..storable import first_unstorable
from ..store import tinydb_directory
from ..store.base import StoreError, StoreUnavailable
from ..store.schema import NotForward
from ..textform import nfc_tree
from .output import progress_bar

store_cli = AppGroup("store", help="The data store: schema, bulk loads, copies.")

BATCH = 1000
#: collections `copy` leaves out, and why: the state of the source's running
#: processes, not data (a copied heartbeat of a dispatcher that never beats
#: again in the target made /health say delivery was stalled, for up to a day)
NOT_COPIED = {DISPATCHERS: "the heartbeats of the source's running event dispatchers, not data"}
#: What `load` accepts: TMF629 Customer and TMF637 Product, validated with
#: the API's own create schemas.
LOADABLE = {"customer": "customer", "product": "product"}


def _store():
    return services().store


@store_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True,
              help="Alembic revision to upgrade to.")
def upgrade(revision: str) -> None:
    """Create or upgrade the PostgreSQL schema (Alembic migrations). Safe to
    run again; run it once per database before starting workers of a new
    release."""
    from ..store.schema import upgrade as run_upgrade

    _move_schema(run_upgrade, revision, f"schema upgraded to {revision}")


@store_cli.command("downgrade")
@click.option("--revision", required=True, help="Alembic revision to go back to (e.g. 0006).")
def downgrade(revision: str) -> None:
    """Undo the PostgreSQL schema's migrations after REVISION, to serve an
    older release again (docs/deployment.md). Workers of this release
    refuse to start on the older schema."""
    from ..store.schema import downgrade as run_downgrade

    _move_schema(run_downgrade, revision, f"schema at revision {revision}")


def _move_schema(migrate, revision: str, done: str) -> None:
    """Run `migrate(store URL, revision)` (store.schema's upgrade or
    downgrade) on PostgreSQL and say `done`; on TinyDB say there is no
    schema; a revision on the wrong side of the current one is exit 1
    with the command to use (NotForward)."""
    if not _store().sql:          # the URL was read once, by open_store
        click.echo("RECO_STORE_URL names no PostgreSQL database; TinyDB needs no schema.")
        return
    try:
        migrate(services().settings.store_url, revision)
    except NotForward as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(done)


@store_cli.command("check")
def check() -> None:
    """Exit 0 when workers can serve every stored document, else say why:
    exit 1 when the schema is not current, when a collection cannot be read
    at all (TinyDB: a file cut short or not JSON), or (TinyDB) when the store holds
    documents it holds back (a hand-edited file: a number no double keeps
    exactly, NaN, a key that is not the document's id), each named by
    collection and key; the service serves the others. On PostgreSQL the
    numbers are checked by `store copy`, which reads every document."""
    store = _store()
    from ..store import StoreUnavailable

    try:
        store.check_schema()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    held = 0
    health = store.health()
    # a collection file it cannot read at all (cut short, not JSON): no worker serves it
    unreadable = dict(health.get("errors") or {})
    for name, why in sorted(unreadable.items()):
        click.echo(f"{name}: cannot be read ({why})", err=True)
    if unreadable:
        click.echo(f"{store.backend}: not ready: {len(unreadable)} collections cannot be read "
                   "(listed above); restore them from a backup or fix them by hand")
        sys.exit(1)
    # PostgreSQL: a number check would read every document; `store copy` does it
    for name in [] if store.sql else sorted(health.get("collections") or {}):
        for key, why in store.held_back(name).items():
            held += 1
            click.echo(f"{name}/{key!r}: {why}; held back (not served, kept as it is)",
                       err=True)
    if held:
        click.echo(f"{store.backend}: ready, but {held} documents are held back (listed "
                   "above): the service serves the others; fix or remove these by hand")
        sys.exit(1)
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
    reco = services()
    service = reco.resources[LOADABLE[kind]]
    # as the API does (no client's host in a stored link): relative unless a public base is set
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


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _resource(service, line: str, base: str) -> dict:
    """The stored resource of one JSON line; ValueError says what is wrong."""
    from ..errors import TMFError

    try:
        # as request bodies are read: numbers keep their value, NaN is no
        # number, text is stored in NFC
        body = nfc_tree(json.loads(line, parse_float=stored_float,
                                   parse_constant=_no_constant))
    except InexactNumber as exc:
        raise ValueError(str(exc)) from None
    except ValueError as exc:
        too_long = long_integer_problem(exc)
        raise ValueError(f"the line {too_long}" if too_long else f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    given_id = body.pop("id", None)
    body.pop("href", None)
    if given_id is not None and id_problem(given_id):
        raise ValueError(id_problem(given_id))
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
    URL) into this service's store (RECO_STORE_URL), keeping ids.

    As `load` does for lines, a document that cannot be copied is reported
    (`collection/id: why`) and skipped, and the others are copied: a string
    no store can hold (a NUL, a lone surrogate: app/storable.py), a
    resource id outside the id alphabet (app/ids.py), or anything else the
    target refuses, or a document the source holds back (a hand-edited
    TinyDB file: a number no double keeps exactly, which `load` and the API
    refuse too; NaN or Infinity; a key that is not the document's id).
    Text is copied in Unicode NFC, as the API and `load`
    store it (app/textform.py), so that filters find documents an older
    version stored in another form. Documents whose id is already in the target are left as
    they are and counted. The last line gives the counts; exit status 1 when
    any document was skipped or the copy stopped (the target unreachable:
    what was copied stays, and running the copy again is safe)."""
    from ..store import open_store

    reco = services()
    target = reco.store
    resource_collections = set(reco.resources)
    counts = {"copied": 0, "present": 0, "skipped": 0}
    collections, name = 0, None
    missing = _missing_directory(source)
    if missing:
        click.echo(f"cannot read the source: {missing}; nothing copied", err=True)
        sys.exit(1)
    try:
        with open_store(source) as origin:
            # every collection, also those the source cannot read (each is
            # then named below), and no listing at all from a source that
            # does not answer: never "copied 0 documents" for a broken source
            health = origin.health()
            errors = dict(health.get("errors") or {})
            if "_store" in errors:
                click.echo(f"cannot read the source: {errors['_store']}; nothing copied",
                           err=True)
                sys.exit(1)
            names = sorted(set(health.get("collections") or {}) | set(errors))
            for name in names:
                if name in NOT_COPIED:
                    click.echo(f"{name}: not copied ({NOT_COPIED[name]})")
                    continue
                try:
                    docs = origin.all(name)
                except StoreUnavailable:
                    raise
                # a corrupt collection file of the source, or (PostgreSQL) a
                # document Python's json cannot read (an integer of more than
                # 4,300 digits, which jsonb keeps)
                except (StoreError, ValueError) as exc:
                    click.echo(f"{name}: cannot be read ({exc}); collection skipped", err=True)
                    counts["skipped"] += 1
                    continue
                # documents the source holds back (a hand-edited TinyDB file: a
                # number a double would alter, NaN, a key that is not the id)
                held = origin.held_back(name)
                for key, why in held.items():
                    counts["skipped"] += 1
                    click.echo(f"{name}/{key!r}: {why}; skipped", err=True)
                if held and origin.sql:    # a database serves them: leave them out here
                    docs = [doc for doc in docs
                            if not (isinstance(doc, dict) and doc.get("id") in held)]
                with progress_bar(f"copying {name}", len(docs)) as advance:
                    for start in range(0, len(docs), BATCH):
                        chunk = docs[start:start + BATCH]
                        _copy_chunk(target, name, chunk, name in resource_collections, counts)
                        advance(len(chunk))
                collections += 1
                click.echo(f"{name}: {len(docs)} documents"
                           + (f", {len(held)} held back" if held else ""))
    except StoreUnavailable as exc:
        click.echo(f"copy stopped at collection {name!r}: {exc}", err=True)
        click.echo(_copy_summary(counts, collections) + "; stopped before the end (running "
                   "the copy again is safe: what is already copied is left as it is)")
        sys.exit(1)
    click.echo(_copy_summary(counts, collections))
    if counts["skipped"]:
        sys.exit(1)


def _missing_directory(source: str) -> str | None:
    """For a TinyDB source (a path, ``tinydb://path`` or ``tinydb:path``):
    why it is no store, when its directory does not exist (opening it
    would make an empty one, and a mistyped path would copy nothing in
    silence). None for any other source, and for a location open_store
    refuses (it says why)."""
    try:
        path = tinydb_directory(source)
    except StoreError:
        return None
    if path and not os.path.isdir(path):
        return f"no TinyDB store directory at {path}"
    return None


def _copy_summary(counts: dict, collections: int) -> str:
    return (f"copied {counts['copied']} documents of {collections} collections; "
            f"{counts['present']} already present, {counts['skipped']} skipped")


def _copy_problem(doc, is_resource: bool) -> str | None:
    """Why a source document cannot be copied, found before the target is
    asked (so the answer is the same whatever the target store)."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    if is_resource:
        problem = id_problem(doc.get("id"))
        if problem:
            return problem
    found = first_unstorable(doc)
    if found:
        return f"{found[0]} holds {found[1]}, which no store accepts"
    return None


def _copy_chunk(target, name: str, chunk: list, is_resource: bool, counts: dict) -> None:
    """Insert the storable documents of `chunk` (one statement); when the
    target refuses the batch for a document, each one alone, so that only
    the refused one is skipped (and named)."""
    good = []
    for doc in chunk:
        problem = _copy_problem(doc, is_resource)
        if problem is None:
            try:                # in NFC, as the API and `load` store text
                doc = nfc_tree(doc)
            except ValueError as exc:      # two keys that are one in NFC
                problem = str(exc)
        if problem:
            _skip(name, doc, problem, counts)
        else:
            good.append(doc)
    try:
        present = len(target.insert_many(name, good))
    except StoreUnavailable:
        raise
    except (StoreError, ValueError, TypeError):
        for doc in good:
            try:
                present_one = len(target.insert_many(name, [doc]))
            except StoreUnavailable:
                raise
            except (StoreError, ValueError, TypeError) as exc:
                _skip(name, doc, f"the target store refused it ({exc})", counts)
                continue
            counts["present"] += present_one
            counts["copied"] += 1 - present_one
        return
    counts["present"] += present
    counts["copied"] += len(good) - present


def _skip(name: str, doc, why: str, counts: dict) -> None:
    counts["skipped"] += 1
    doc_id = doc.get("id") if isinstance(doc, dict) else None
    click.echo(f"{name}/{doc_id!r}: {why}; skipped", err=True)
