"""The gthread worker, with its own error answers in the TMF Error body.

Gunicorn refuses some requests before Flask sees them: a request line or
headers over the limits of gunicorn.conf.py (414, 431), malformed HTTP (400).
It answers those with a small HTML page; clients of a TMF API expect the TMF
Error body for every error, so this worker writes that instead.

It also replaces itself, as gunicorn's max_requests does, when the rule
service says its retired rule versions passed their memory budget
(RuleService.recycle_wanted; durable-rules cannot free them in place): it
answers the request in hand with "Connection: close", stops accepting,
finishes what is in flight and exits; the arbiter starts a fresh worker."""
from __future__ import annotations

import json

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from .errors import error_body
from .services import services


def write_tmf_error(sock, status_int: int, reason: str, mesg: str) -> None:
    body = json.dumps(error_body(status_int, mesg or reason, reason=reason)).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\n"
            "Connection: close\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


class TmfThreadWorker(ThreadWorker):
    def init_process(self):
        # gunicorn's Worker.handle_error() calls util.write_error(); this
        # process is a worker of its own, so replacing it here is local to it.
        util.write_error = write_tmf_error
        super().init_process()

    def run(self):
        # the app (and its rule engine) was built in init_process: a worker
        # whose build durable-rules refused, even after retries, serves
        # nothing its siblings could not; it leaves and the arbiter forks a
        # fresh one (exit code 0: a boot error, 3, would stop the arbiter)
        if _exit_wanted(self.wsgi):
            self.log.error("Worker %s cannot build its rule set (%s); exiting so that it is replaced",
                           self.pid, services(self.wsgi).rules.build_failure)
            return
        super().run()

    def handle_request(self, req, conn):
        if self.alive and _exit_wanted(self.wsgi):
            self.log.error("Worker %s lost its rule set (%s); exiting so that it is replaced", self.pid,
                           services(self.wsgi).rules.build_failure)
            self.alive = False

        if self.alive and _recycle_wanted(self.wsgi):
            self.log.info("Replacing worker %s: retired rule versions hold %s rules (budget %s)", self.pid,
                          services(self.wsgi).rules.retired_rules,
                          services(self.wsgi).rules.retired_budget)
            self.alive = False           # this response closes its connection; then a graceful exit
        return super().handle_request(req, conn)


def _exit_wanted(app) -> bool:
    reco = getattr(app, "extensions", {}).get("reco")
    return bool(reco is not None and reco.rules.exit_wanted)


def _recycle_wanted(app) -> bool:
    reco = getattr(app, "extensions", {}).get("reco")
    return bool(reco is not None and reco.rules.recycle_wanted)
