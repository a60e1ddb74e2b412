"""The gthread worker, with its own error answers in the TMF Error body.

Gunicorn refuses some requests before Flask sees them: a request line or
headers over the limits of gunicorn.conf.py (414, 431), malformed HTTP (400).
It answers those with a small HTML page; clients of a TMF API expect the TMF
Error body for every error, so this worker writes that instead.

It also has itself replaced when the rule service says its retired rule
versions passed their memory budget (RuleService.recycle_wanted;
durable-rules cannot free them in place), without a moment when no worker
accepts: exiting first, as gunicorn's max_requests does, left a one-worker
host with nobody to answer while the replacement built its rules (requests
of 2-6 s in bench/activation_load.py, the whole of a compile). So the worker
asks the arbiter for one more worker (SIGTTIN), keeps serving while that one
builds, and once it accepts requests and serves the version this one serves
(the served-versions files, rules/service/workers.py) asks for one fewer
(SIGTTOU): the arbiter then stops its oldest worker gracefully, this one when it is the oldest (a
one-worker host, or siblings that passed the budget together). If another,
older worker was stopped instead, this one asks again after RECYCLE_RETRY_S.
A replacement not ready within REPLACEMENT_WAIT_S is not waited for longer.
The gthread pool answers requests in several threads at once: one of them at a
time takes a step of the replacement, or a second thread, reading the state
while the first was still logging or reading the files, sent the same signal
again (the arbiter counts each SIGTTIN and SIGTTOU it handles: one more
replacement than asked for, or one more worker stopped)."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from .errors import error_body
from .observability.logs import hold_log_context, release_log_context
from .rules.service.workers import HOST_BUILD_EXITS
from .services import services, services_of

# seconds a worker over its memory budget waits for its replacement to serve
# before it asks the arbiter to stop the oldest worker anyway
REPLACEMENT_WAIT_S = 120.0
# seconds after asking for one fewer worker before a worker that is still
# here (another, older one was stopped) asks for a replacement again
RECYCLE_RETRY_S = 30.0
# seconds between two looks at the served-versions files while waiting
READY_CHECK_S = 0.25
# seconds between two looks, by a worker staying without rules, for a sibling that serves
STAYING_CHECK_S = 1.0


def write_tmf_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps(error_body(status_int, mesg or reason, reason=reason)).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class TmfThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # held by the thread taking a step of the replacement (_replace_when_ready)
        self._replacing = threading.Lock()

    def init_process(self):
        # gunicorn's Worker.handle_error() calls util.write_error(); this
        # process is a worker of its own, so replacing it here is local to it.
        util.write_error = write_tmf_error
        super().init_process()

    def run(self):
        # the app (and its rule engine) was built in init_process: a worker
        # whose build durable-rules refused, even after retries, serves
        # nothing its siblings could not; it leaves and the arbiter forks a
        # fresh one (exit code 0: a boot error, 3, would stop the arbiter),
        # unless every worker of the host keeps failing (_leave_for_build_failure)
        if _exit_wanted(self.wsgi) and self._leave_for_build_failure("cannot build"):
            return
        reco = services_of(self.wsgi)
        if reco is not None:     # a worker being replaced waits for this (_replace_when_ready)
            reco.rules.served.mark_accepting()
        super().run()

    def handle(self, conn):
        """One request of `conn` (gunicorn runs this in a pool thread): the
        request's log context (bound by the app, app/observability) stays
        bound until gunicorn is done with it, body written, so gunicorn's
        own lines about it (a connection reset while writing, "Error
        handling request") carry its id, and is cleared then."""
        token = hold_log_context()
        try:
            return super().handle(conn)
        finally:
            release_log_context(token)

    def handle_request(self, req, conn):
        if self.alive and _exit_wanted(self.wsgi):
            if self._leave_for_build_failure("lost"):
                self.alive = False
        elif self._staying_since is not None:
            self._staying_since = None       # it serves again: a later loss is decided afresh

        if self.alive and _recycle_wanted(self.wsgi):
            self._replace_when_ready(time.time())
        return super().handle_request(req, conn)

    _staying_since: float | None = None   # when this worker chose to stay without rules (monotonic)
    _stay_checked_at = 0.0

    def _leave_for_build_failure(self, what: str) -> bool:
        """Log and return True when this worker, which serves nothing because
        durable-rules refused its build, should leave to be replaced. When the
        host's workers have left too often in a row with nobody serving
        (rules/service/workers.py HOST_BUILD_EXITS) it stays instead, answering
        503 with the refusal in /health while its rule service retries, and
        returns False; a staying worker leaves as soon as a sibling serves
        (looked at every STAYING_CHECK_S), not to answer 503 beside it."""
        rules = services(self.wsgi).rules
        now = time.monotonic()
        if self._staying_since is not None:
            if now - self._stay_checked_at < STAYING_CHECK_S:
                return False
            self._stay_checked_at = now
            if not rules.served.sibling_serves():
                return False
            self.log.error("Worker %s serves nothing (%s) and a sibling serves now; exiting so that it is "
                           "replaced", self.pid, rules.build_failure)
            return True
        if rules.served.leave_after_build_failure():
            self.log.error("Worker %s %s its rule set (%s); exiting so that it is replaced", self.pid,
                           what, rules.build_failure)
            return True
        self._staying_since = self._stay_checked_at = now
        self.log.error("Worker %s cannot build its rule set (%s) and %s workers of this host left in a row "
                       "without any build succeeding: staying, answering 503 and retrying (GET /health "
                       "rules.buildFailure)", self.pid, rules.build_failure, HOST_BUILD_EXITS)
        return False

    _asked_at: float | None = None       # when this worker sent SIGTTIN (epoch seconds)
    _next_look = 0.0                     # when it looks at the served-versions files next
    _retry_at = 0.0                      # after a SIGTTOU that stopped another worker

    def _replace_when_ready(self, now: float) -> None:
        """One step of the replacement (called per request while the budget
        is passed; a clock read between steps). A thread that finds another
        one taking a step returns at once: its request is not held up."""
        if not self._replacing.acquire(blocking=False):
            return
        try:
            self._replace_step(now)
        finally:
            self._replacing.release()

    def _replace_step(self, now: float) -> None:
        if now < self._next_look or now < self._retry_at:
            return
        self._next_look = now + READY_CHECK_S
        rules = services(self.wsgi).rules
        if self._asked_at is None:
            self.log.info("Replacing worker %s: retired rule versions hold %s rules (budget %s); "
                          "serving until the replacement serves", self.pid, rules.retired_rules,
                          rules.retired_budget)
            self._asked_at = now
            os.kill(self.ppid, signal.SIGTTIN)
            return
        # the replacement must serve what this worker serves: a version
        # activated while it was building is not taken back from clients
        serving = rules.served_hash
        ready = rules.served.serving_since(self._asked_at, serving)
        if not ready and now - self._asked_at < REPLACEMENT_WAIT_S:
            return
        self.log.info("Worker %s: replacement %s serves; asking the arbiter to stop its oldest worker",
                      self.pid, ready or "(none ready, waited too long)")
        os.kill(self.ppid, signal.SIGTTOU)
        self._asked_at = None
        self._retry_at = now + RECYCLE_RETRY_S


def _exit_wanted(app) -> bool:
    reco = services_of(app)
    return bool(reco is not None and reco.rules.exit_wanted)


def _recycle_wanted(app) -> bool:
    reco = services_of(app)
    return bool(reco is not None and reco.rules.recycle_wanted)
