"""Sending a hub's claimed notifications: one POST each (http.py) to its
callback, checked against the allow-list at send time (allowlist.py), on the
hub's kept connection, in order, stopping at the first failure or when the
lease no longer leaves time for an attempt (lease.py). What each attempt
came to (outcomes.py) is returned, never raised."""
from __future__ import annotations

import json
import logging
import threading
import time

from ..observability.metrics import count_delivery
from .allowlist import CallbackPolicy, CallbackRejected
from .eventlog import Item
from .http import DeliveryError, Session, post_json
from .lease import CONFIRM_SECONDS, Leases
from .outcomes import NOT_SENT

log = logging.getLogger(__name__)


class Sender:
    """Sends batches for one dispatcher process; one kept connection per
    hub (http.Session), closed when unused (close_sessions). `stopping` set:
    no new attempt starts."""

    def __init__(self, store, settings, policy: CallbackPolicy, leases: Leases):
        self.store = store
        self.settings = settings
        self.policy = policy
        self.leases = leases
        self.stopping = threading.Event()
        self._sessions: dict[str, Session] = {}    # hub id -> its kept connection

    def forget_sessions(self) -> None:
        """In a forked child: the parent's sockets are not ours."""
        self._sessions = {}

    def send_batch(self, hub: dict, items: list[Item]) -> list[tuple[Item, object]]:
        """A hub's notifications one after the other, stopping at the first
        failure (the rest wait behind it, unsent) or when the lease no longer
        leaves time for an attempt (lease.py: it ran out, was taken over, or
        the hub was deleted meanwhile, found by the renewal or by the
        sender's own confirmation every CONFIRM_SECONDS); returns (item,
        outcome) for every item, in order."""
        outcomes = []
        failed = False
        session = self._sessions.setdefault(hub["id"], Session())
        confirmed = time.monotonic()                # the claim itself confirmed it
        for item in items:
            if not failed and time.monotonic() - confirmed >= CONFIRM_SECONDS:
                confirmed = time.monotonic()
                failed = not self.leases.confirm(self.store, hub["id"])
            if failed or self.stopping.is_set() or not self.leases.may_send(hub["id"]):
                outcomes.append((item, NOT_SENT))
                failed = True
                continue
            error = self.attempt({"id": f"{item.notification['eventId']}.{hub['id']}",
                                  "callback": hub["callback"], "notification": item.notification,
                                  "traceHeaders": item.trace_headers}, session)
            failed = error is not None
            outcomes.append((item, error))
        return outcomes

    def attempt(self, entry: dict, session: Session | None = None) -> str | None:
        """One POST of ``entry["notification"]`` to ``entry["callback"]``
        (on the hub's kept connection, `session`, when it has one): None
        when the listener answered 2xx, else why not."""
        try:
            address = self.policy.check(entry["callback"])
            body = json.dumps(entry["notification"], separators=(",", ":")).encode("utf-8")
            status = post_json(entry["callback"], body,
                               deadline_seconds=self.settings.event_timeout_seconds,
                               max_response_bytes=self.settings.event_max_response_bytes,
                               address=address, headers=entry.get("traceHeaders"),
                               session=session)
            if 200 <= status < 300:
                count_delivery("delivered")
                return None
            count_delivery("rejected")
            return f"listener answered {status}"
        except CallbackRejected as exc:
            count_delivery("not_allowed")
            return f"callback no longer allowed: {exc}"
        except DeliveryError as exc:
            count_delivery("error")
            return str(exc)[:300]
        except Exception as exc:  # noqa: BLE001 - keep the notification, whatever happened
            log.exception("delivery of %s failed", entry["id"])
            count_delivery("error")
            return type(exc).__name__

    def close_sessions(self, idle_seconds: float, busy: set[str]) -> None:
        """Close the kept connections unused for `idle_seconds` (0: all) of
        hubs not in `busy` (those with a batch under way)."""
        now = time.monotonic()
        for hub_id, session in list(self._sessions.items()):
            if hub_id not in busy and now - session.used >= idle_seconds:
                self._sessions.pop(hub_id, None)
                session.close()
