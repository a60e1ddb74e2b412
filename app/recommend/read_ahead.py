"""Whether an instant answer reads the party's contact-policy history ahead,
in the customer look-up's statement (PostgresStore.get_along), or only when
the policies ask for it (then a statement of its own, after the rules ran).

Reading ahead costs the history's index reads (about 0.15 ms of database
time, BENCHMARKS.md "Contact policies") on every request that names a
party, also when its rules propose nothing a policy covers; reading on need
costs a round trip of its own (0.3-0.56 ms more CPU per request than the
read ahead, same section) on every request that does need it. Which is
cheaper depends on the traffic, so the choice follows it: per version (its
content hash) and per worker, an exponentially weighted share of the recent
requests naming a party whose evaluation read the history (`weight` 1/32:
about the last 32 requests); read ahead while that share is at least
`threshold` (0.25: where the two costs above break even). A version starts
by reading ahead (one round trip for requests that propose items, the
usual case). Both ways observe the need, so the share follows the traffic
either way. The answer never depends on the choice: the policies read the
same window, ahead or on need (app/contact/history.py ReadAhead)."""
from __future__ import annotations


class ReadAheadChoice:
    """The per-worker choice (see the module docstring). Shared by the
    worker's threads without a lock: a lost update moves a share by one
    observation, which only delays the choice by a request."""

    def __init__(self, threshold: float = 0.25, weight: float = 1 / 32, versions: int = 64):
        self.threshold = threshold
        self.weight = weight
        self.versions = versions          # at most this many versions remembered (oldest dropped)
        self._share: dict[str, float] = {}

    def wanted(self, version: str) -> bool:
        """True: read the history ahead for a request answered by `version`."""
        return self._share.get(version, 1.0) >= self.threshold

    def observe(self, version: str, needed: bool) -> None:
        """A request answered by `version` read the history (`needed`) or not."""
        share = self._share.get(version)
        if share is None:
            if len(self._share) >= self.versions:
                self._share.pop(next(iter(self._share)), None)
            share = 1.0
        self._share[version] = share + self.weight * ((1.0 if needed else 0.0) - share)


class Watched:
    """A request's history source that notes whether the policies read it."""

    __slots__ = ("source", "asked")

    def __init__(self, source):
        self.source = source
        self.asked = False

    def read(self, party_id, since, until, offers_since, *, kinds=None):
        self.asked = True
        return self.source.read(party_id, since, until, offers_since, kinds=kinds)
