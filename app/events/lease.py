"""Leases on hub queues: how a claim stays safe when its holder hangs.

A dispatcher that claims a hub's queue (dispatcher.py, step 3) writes a
lease on it -- ``leaseId`` (a fresh uuid per claim), ``leaseUntil`` (Unix s,
the holder's clock), ``leaseOwner`` (pid) and ``leaseHost`` -- and commits:
no transaction and no row lock is held while it sends. Other dispatchers
(any worker, any host, on either store) claim only queues whose
``leaseUntil`` has passed. So:

* the holder renews its leases (one write for all of them) every
  ``seconds / 4`` while it sends; a renewal that finds another ``leaseId``,
  or no queue (the hub was deleted), ends that lease here at once;
* a sender re-reads its queue (one look-up by id) before an attempt when
  CONFIRM_SECONDS have passed since it last did (``Leases.confirm``), so a
  hub deleted while its batch is under way gets at most the notification in
  flight and those started within CONFIRM_SECONDS, not the rest of the batch
  up to the next renewal (measured before: 3 more of a slow listener's 6);
* the holder starts an attempt only while its lease has at least the
  attempt's deadline (``event_timeout_seconds``) plus MARGIN_SECONDS left,
  so an attempt it starts ends before another dispatcher may take the hub,
  even with host clocks MARGIN_SECONDS apart. A holder that was stopped
  (SIGSTOP, a VM pause, swapping) finds its lease ended when it resumes and
  sends nothing more;
* a hung holder's hubs are claimed by a live dispatcher at most
  ``seconds + event_poll_seconds`` after its last renewal (docs/events.md, "A
  hung dispatcher"), and a dead holder's at once by the next dispatcher of its host
  (release_dead_leases).

What this guarantees (docs/events.md): every notification is delivered at
least once, and the first delivery of each arrives in the order recorded,
per hub. A notification is delivered twice only when a holder sent it and
lost its lease before its outcome was written (it hung between the two, or
the store was unreachable for longer than the lease): at most the batch in
flight (dispatcher.BATCH notifications) per hub and takeover, each with the
same ``eventId`` -- the listener's idempotency key."""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from .records import QUEUES

#: the difference between host clocks a lease tolerates (NTP keeps them far
#: closer); also the least time an attempt may start with
MARGIN_SECONDS = 2.0
#: a sender confirms its lease before an attempt this long after its last
#: confirmation: a look-up by id, at most 4 per second per busy hub
CONFIRM_SECONDS = 0.25
#: this host's name, written beside a lease's owner pid: a pid means
#: something only on its own host
HOST = socket.gethostname()


def lease_seconds(settings) -> float:
    """`event_lease_seconds`, at least long enough for one attempt and the
    margins on both sides (a shorter one would never let an attempt start)."""
    return max(settings.event_lease_seconds,
               settings.event_timeout_seconds + 2 * MARGIN_SECONDS)


def new_lease(hub: dict, seconds: float, owner: int, host: str, now: float) -> dict:
    """The queue document `hub` leased to process `owner` of `host`."""
    return {**hub, "leaseId": uuid.uuid4().hex, "leaseUntil": now + seconds,
            "leaseOwner": owner, "leaseHost": host}


def released(hub: dict) -> dict:
    """The queue document with no lease."""
    return {**hub, "leaseId": None, "leaseUntil": 0.0, "leaseOwner": None, "leaseHost": None}


class Leases:
    """The leases this process holds: hub id -> (leaseId, until), by this
    host's clock. Thread-safe: the tick thread renews, senders ask."""

    def __init__(self, seconds: float, attempt_seconds: float):
        self.seconds = seconds
        self.attempt_seconds = attempt_seconds
        self._held: dict[str, tuple[str, float]] = {}
        self._mu = threading.Lock()
        self._last_renewal = 0.0

    def hold(self, hub: dict) -> None:
        with self._mu:
            self._held[hub["id"]] = (hub["leaseId"], hub["leaseUntil"])

    def drop(self, hub_id: str) -> None:
        with self._mu:
            self._held.pop(hub_id, None)

    def clear(self) -> None:
        with self._mu:
            self._held.clear()

    def lease_id(self, hub_id: str) -> str | None:
        with self._mu:
            held = self._held.get(hub_id)
        return held[0] if held else None

    def may_send(self, hub_id: str) -> bool:
        """Whether an attempt started now ends, deadline and margin included,
        before the lease does."""
        with self._mu:
            held = self._held.get(hub_id)
        return held is not None and \
            time.time() + self.attempt_seconds + MARGIN_SECONDS <= held[1]

    def confirm(self, store, hub_id: str) -> bool:
        """Whether `hub_id`'s queue still carries this process's lease (read
        from the store); a lease taken over, or a queue gone with its hub,
        ends here as a renewal would end it. A store error keeps the lease
        (the next renewal decides)."""
        lease_id = self.lease_id(hub_id)
        if lease_id is None:
            return False
        try:
            queue = store.get(QUEUES, hub_id)
        except Exception:  # noqa: BLE001 - unreachable store: the renewal decides
            return True
        if queue is not None and queue.get("leaseId") == lease_id:
            return True
        with self._mu:
            current = self._held.get(hub_id)
            if current is not None and current[0] == lease_id:
                self._held[hub_id] = (lease_id, 0.0)
        return False

    def due(self) -> bool:
        with self._mu:
            held = bool(self._held)
        return held and time.monotonic() - self._last_renewal >= self.seconds / 4

    def renew(self, store) -> int:
        """Extend every lease held to now + `seconds` in one write; a lease
        whose queue has another ``leaseId`` now, or is gone, ends here (its
        sender stops before its next attempt). Returns how many were lost."""
        self._last_renewal = time.monotonic()
        with self._mu:
            held = dict(self._held)
        if not held:
            return 0
        until = time.time() + self.seconds
        kept: set[str] = set()
        with store.transaction(QUEUES) as tx:
            for hub_id, (lease_id, _until) in held.items():
                def extend(queue, lease_id=lease_id, hub_id=hub_id):
                    if queue.get("leaseId") != lease_id:
                        return queue
                    kept.add(hub_id)
                    return {**queue, "leaseUntil": until}
                tx.update(hub_id, extend)
        lost = 0
        with self._mu:
            for hub_id, (lease_id, _until) in held.items():
                current = self._held.get(hub_id)
                if current is None or current[0] != lease_id:
                    continue                     # released meanwhile
                if hub_id in kept:
                    self._held[hub_id] = (lease_id, until)
                else:
                    self._held[hub_id] = (lease_id, 0.0)
                    lost += 1
        return lost


def release_dead_leases(store) -> int:
    """Leases held by processes of this host that no longer exist end
    now: a service killed mid-delivery redelivers as soon as it is back,
    instead of waiting out the lease. Returns how many."""
    now = time.time()
    dead = [q["id"] for q in store.find(
        QUEUES, lambda q: q.get("leaseUntil", 0.0) > now and lease_holder_gone(q))]
    if not dead:
        return 0
    with store.transaction(QUEUES) as tx:
        for hub_id in dead:
            tx.update(hub_id, lambda q: released(q) if lease_holder_gone(q) else q)
    return len(dead)


def lease_holder_gone(entry: dict) -> bool:
    """True when the process that leased the entry is known to be dead: it
    ran on this host and its pid no longer exists (or is a zombie); when in
    doubt the lease holds."""
    pid = entry.get("leaseOwner")
    if entry.get("leaseHost") != HOST or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False
