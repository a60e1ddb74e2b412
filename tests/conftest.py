"""Fixtures that run the real service: a gunicorn process on loopback with its
own data directory, and a webhook listener that records notifications."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Test modules share helpers by module name (`from test_decision_log import
# answer`), and tests live in folders that mirror app/: every folder that
# holds test modules is importable, whichever test pytest happens to collect
# first (its own rootdir insertion only adds a folder when it collects a test
# there). Module basenames are unique across tests/, as pytest's default
# import mode requires anyway.
_TESTS = Path(__file__).resolve().parent
for _folder in sorted({module.parent for module in _TESTS.rglob("test_*.py")}):
    if str(_folder) not in sys.path:
        sys.path.append(str(_folder))

from fulldisk import FullDisk
from helpers import BACKENDS, Client, Listener, ServiceProcess, store_env
from pgcluster import NoPostgres, PgCluster

@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory):
    """One throw-away PostgreSQL cluster for the session (bin/pg)."""
    cluster = PgCluster(tmp_path_factory.mktemp("pg"))
    try:
        cluster.start()
    except NoPostgres as exc:
        pytest.skip(f"PostgreSQL tests need its binaries: {exc}")
    yield cluster
    cluster.destroy()


def store_url_for(backend: str, request, directory) -> str:
    """Where a test's store lives: a TinyDB directory, or a fresh database."""
    if backend == "postgresql":
        return request.getfixturevalue("pg_cluster").new_database()
    return str(directory)


@pytest.fixture(params=BACKENDS)
def store_url(request, tmp_path):
    """One parameter runs a test on each backend (the store contract)."""
    return store_url_for(request.param, request, tmp_path / "data")


@pytest.fixture(scope="session", params=BACKENDS)
def server(request, tmp_path_factory):
    """The shared service for tests that only add data of their own, once per
    backend: every end-to-end test that uses it runs on TinyDB and PostgreSQL."""
    data_dir = tmp_path_factory.mktemp("shared") / "data"
    service = ServiceProcess(data_dir, env=store_env(request)).start()
    yield service
    service.stop()


# The hubs each shared server holds, read from its store (one handle per
# server, opened on first use).
_hub_readers: dict[str, object] = {}


def _hubs_of(service: ServiceProcess) -> list[dict]:
    from app.events.records import HUBS
    from app.store import open_store
    if service.store_url not in _hub_readers:
        _hub_readers[service.store_url] = open_store(service.store_url)
    return _hub_readers[service.store_url].all(HUBS)


@pytest.fixture(autouse=True)
def _no_hub_left_on_the_shared_server(request):
    """A test on the shared `server` deletes the hubs it registers. A hub it
    leaves is notified of every later test's changes on that server, and an
    API takes at most RECO_MAX_HUBS_PER_API hubs (100): after enough leaks
    on one worker, another test's registration is a 409, in whichever test
    comes 101st. So a leak fails the test that leaked (and is deleted)."""
    if "server" not in request.fixturenames:
        yield
        return
    service = request.getfixturevalue("server")
    before = {hub["id"] for hub in _hubs_of(service)}
    yield
    left = [hub for hub in _hubs_of(service) if hub["id"] not in before]
    for hub in left:
        Client(service.url).delete(f"/tmf-api/{hub['api']}/v4/hub/{hub['id']}")
    assert not left, (f"{len(left)} hub(s) left on the shared server (delete what the test "
                      f"registers): {[(h['api'], h['callback']) for h in left]}")


@pytest.fixture
def pg_url(request):
    """A fresh PostgreSQL database (tests that are about PostgreSQL itself)."""
    return request.getfixturevalue("pg_cluster").new_database()


# What `--fast` (bin/test --fast, the edit loop) leaves out, relative to
# tests/: the real browser, PostgreSQL deployment (own clusters, two hosts,
# restarts), faults that kill or starve servers, full disks, the soak and the
# benchmark harness, and the slowest files. Tests marked `slow` are left out too.
SLOW_PATHS = (
    "browser/", "soak/", "test_bench_quick.py", "test_postgres_deployment.py",
    "test_hardening_faults.py", "test_hardening_fuzz.py", "test_full_disk_rules.py",
    "store/test_storage_faults.py", "store/test_durability.py", "store/test_store_crash.py",
    "decisions/test_decision_log_faults.py", "events/test_event_leases.py",
    "events/test_event_dispatcher_process.py", "rules/service/test_hot_reload.py",
    "rules/service/test_reload_under_load.py", "rules/service/test_worker_build_failure.py",
    "observability/test_operations_server.py", "test_setup_script.py",
    # the slowest files of a parallel run that are none of the above (many
    # CLI processes or servers each): decisions recorded and replayed, the
    # store CLI, version governance, the README followed on a fresh server
    "decisions/test_impact_recorded.py", "decisions/test_decision_privacy.py",
    "cli/test_store_cli.py", "rules/service/test_rule_governance.py", "test_readme_examples.py",
    "rules/authoring/test_line_endings.py", "test_rule_file_size.py",
)


# The files with the longest single tests, started first in a parallel run
# (bin/test), longest first: pytest-xdist hands out tests in collection order,
# so a long test collected last starts when the other workers are running
# out of tests, and the run waits for it with cores idle. Whole files move,
# in their own order, so module fixtures are still set up once. From
# `bin/test --durations=150` (docs/testing.md, "How long it takes").
FIRST_PATHS = (
    "rules/engine/test_generated_scale.py", "test_deployment_guide.py",
    "rules/service/test_rule_governance.py", "sales/test_sales_api.py",
    "experiments/test_experiments_http.py", "test_hardening_fuzz.py", "test_hardening_faults.py",
    "test_readme_examples.py", "decisions/test_impact_recorded.py",
    "decisions/test_decision_privacy.py", "test_full_disk_rules.py", "store/test_durability.py",
    "rules/service/test_reload_under_load.py", "rules/engine/test_set_membership.py",
    "rules/authoring/test_line_endings.py", "test_rule_file_size.py",
    "experiments/test_experiments_cli.py",
    # 10-30 s each and collected last (top-level files, late in the
    # alphabet): they were the last tests of a run, one worker each
    "test_postgres_deployment.py", "test_warmdispatcher.py", "test_setup_script.py",
    # files whose tests are one xdist_group (a module's shared server): a
    # group goes to one worker as a whole, so a large one handed out last
    # would run alone at the end
    "test_hardening_nasties.py", "test_unrepresentable_numbers.py",
    "observability/test_operations_server.py", "test_hardening_abuse.py", "test_contact_policies.py",
    "browser/test_studio.py", "decisions/test_time_range_order.py",
    "experiments/test_anonymous_login_arm.py", "experiments/test_experiments_newcomer_review.py",
)


def _first(item) -> int:
    """The item's file's place in FIRST_PATHS; len(FIRST_PATHS) for the rest."""
    where = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
    return next((n for n, path in enumerate(FIRST_PATHS) if where == path), len(FIRST_PATHS))


def pytest_addoption(parser):
    parser.addoption("--fast", action="store_true",
                     help="the edit loop (bin/test --fast): leave out the browser, PostgreSQL "
                          "deployment, fault, soak and slow tests")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--fast"):
        if os.environ.get("PYTEST_XDIST_WORKER"):     # a worker of a parallel run
            items.sort(key=_first)          # stable: every other test keeps its place
        return
    kept, left_out = [], []
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(_TESTS).as_posix()
        slow = item.get_closest_marker("slow") or where.startswith(SLOW_PATHS)
        (left_out if slow else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "backends(*names, reason): the stores a make_server test runs on, when "
        "not both; the reason says why the test is about one backend")


def pytest_generate_tests(metafunc):
    """`backend` (and so `make_server`) runs each test on both stores unless
    the test (or its module) is marked `backends("tinydb", reason=...)`."""
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        if marker is not None and not marker.kwargs.get("reason"):
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: backends() needs a reason")
        metafunc.parametrize("backend", list(marker.args) if marker else BACKENDS)


@pytest.fixture
def backend(request) -> str:
    return request.param


class ServerFactory:
    """Starts fresh services (for tests that kill, reconfigure or count) on
    the test's backend. Each `data_dir` is one store: on PostgreSQL a new
    database of the session cluster, and the SAME database whenever a server
    is started again on that data_dir (a restart after a kill). Two servers
    share one database (two hosts) with `store_of=<first server>`; an
    explicit RECO_STORE_URL in `env` is used as given."""

    def __init__(self, backend: str, request, tmp_path):
        self.backend = backend
        self._request = request
        self._tmp_path = tmp_path
        self._databases: dict = {}
        self.started: list[ServiceProcess] = []

    def store_url(self, data_dir) -> str:
        """The store of `data_dir` (for tests that prepare or inspect it
        with app.store.open_store while no server runs)."""
        if self.backend != "postgresql":
            return str(data_dir)
        if data_dir not in self._databases:
            self._databases[data_dir] = store_url_for("postgresql", self._request, data_dir)
        return self._databases[data_dir]

    def __call__(self, store_of: ServiceProcess | None = None, **kwargs) -> ServiceProcess:
        kwargs.setdefault("data_dir", self._tmp_path / f"data{len(self.started)}")
        env = dict(kwargs.pop("env", None) or {})
        if self.backend == "postgresql" and "RECO_STORE_URL" not in env:
            env["RECO_STORE_URL"] = (store_of.store_url if store_of
                                     else self.store_url(kwargs["data_dir"]))
        service = ServiceProcess(env=env, **kwargs).start()
        self.started.append(service)
        return service


@pytest.fixture
def make_server(backend, request, tmp_path):
    """A ServerFactory on the test's backend (both, unless marked)."""
    factory = ServerFactory(backend, request, tmp_path)
    yield factory
    for service in factory.started:
        service.stop()


@pytest.fixture
def full_disk(backend, tmp_path):
    """A full disk under the store of make_server's backend (tests/fulldisk.py)."""
    disk = FullDisk(backend, tmp_path)
    yield disk
    disk.free()


@pytest.fixture
def listener():
    receiver = Listener()
    yield receiver
    receiver.close()


@pytest.fixture
def api(server):
    return Client(server.url)

