"""Contact policies at answer time: which proposed offerings a party's
recent history suppresses, and how many items it may still be offered
today (docs/contact-policies.md).

The history is read ONCE per evaluation, through the `history` source the
caller put on the Context (app/contact/history.py reads the store; a case
file gives a fixed one), and only when the rule set declares a policy and
the query names a party: an anonymous query has no history and is never
suppressed. The rules package knows nothing of stores: a source is any
object with

    read(party_id, since, until, offers_since, *, kinds=None) -> History

`since`/`until` bound the reactions (aware UTC datetimes, since < t <=
until); `offers_since` bounds the answered items the same way, None when
none are needed (only maxOffersPerDay reads them, over 24 hours).
`kinds` ({reaction type: since}, `reaction_windows`) narrows the reactions
to the types the policies read, each over its own window (`shown` over the
longest maxImpressions window, `rejected` over the longest
pauseAfterRejected one, `accepted` over the longest stopAfterAccepted one;
no other type); None reads every type since `since` (a caller that wants
the whole history, e.g. a case context made from it). A source may return
more than asked; `evaluate` never looks at anything else."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from ..model.catalog import Catalog
from ..model.contact import ContactPolicy
from ...timeutil import isoformat

DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Reaction:
    """A recommendationReaction as the policies read it."""
    type: str                      # shown | clicked | accepted | rejected
    offering: str                  # productOffering.id
    time: dt.datetime              # reactionDate, aware UTC
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """One item of a recorded answer to the party."""
    offering: str
    time: dt.datetime              # decidedAt, aware UTC
    channel: str | None = None
    decision: str | None = None    # the answer's id: one answer is counted once


@dataclass
class History:
    reactions: list[Reaction] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)


class FixedHistory:
    """A history given in full (a regression case's `history:`): `read`
    returns the events in the window asked for (`kinds`: the types asked
    for, each in its own window)."""

    # given in full: nothing to read along the customer's look-up
    ahead = None

    def __init__(self, history: History):
        self.history = history

    def read(self, party_id: str, since: dt.datetime, until: dt.datetime,
             offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None) -> History:
        return History([r for r in self.history.reactions if since < r.time <= until and in_kinds(r, kinds)],
                       [o for o in self.history.offers if offers_since < o.time <= until]
                       if offers_since is not None else [])


def in_kinds(reaction: Reaction, kinds: dict[str, dt.datetime] | None) -> bool:
    """Whether `reaction` is among the `kinds` asked for ({type: since},
    since < time; None: every type)."""
    if kinds is None:
        return True
    since = kinds.get(reaction.type)
    return since is not None and reaction.time > since


def _days(days: float) -> str:
    number = f"{days:g}"
    return f"{number} day" if number == "1" else f"{number} days"


def lookback(policies: tuple[ContactPolicy, ...]) -> dt.timedelta:
    """How far back the reactions are read: the longest window declared
    (answered items: 24 hours)."""
    return max((dt.timedelta(days=p.days) for p in policies if p.kind != "maxOffersPerDay"),
               default=dt.timedelta(0))


#: the reaction type each policy kind reads (maxOffersPerDay reads answers)
READS = {"maxImpressions": "shown", "pauseAfterRejected": "rejected", "stopAfterAccepted": "accepted"}


def reaction_windows(policies: tuple[ContactPolicy, ...], when: dt.datetime) -> dict[str, dt.datetime]:
    """{reaction type: since} of the read `evaluate` makes at `when`: each
    type a policy reads (READS), from `when` minus the longest `days` of
    the policies reading it. A party's `clicked` reactions and its old
    impressions are never read (a stopAfterAccepted default of 3,650 days
    made the read fetch ten years of every type: a party with 900
    reactions made an instant answer several times slower,
    bench/contact_long_history.py). The edges are the ones `_reason`
    applies (since < time), so no policy misses a reaction it counts."""
    found: dict[str, dt.datetime] = {}
    for policy in policies:
        kind = READS.get(policy.kind)
        if kind is not None:
            since = when - dt.timedelta(days=policy.days)
            found[kind] = min(since, found.get(kind, since))
    return dict(sorted(found.items()))


def window(policies: tuple[ContactPolicy, ...], when: dt.datetime
           ) -> tuple[dt.datetime, dt.datetime, dt.datetime | None]:
    """(since, until, offers_since) of the one read `evaluate` makes at
    `when`: the arguments of `source.read` after the party id, with
    `kinds=reaction_windows(policies, when)` (a caller that reads the
    history ahead, in the same round trip as the customer, asks for
    exactly this)."""
    needs_offers = any(p.kind == "maxOffersPerDay" for p in policies)
    return when - lookback(policies), when, (when - DAY if needs_offers else None)


@dataclass
class ContactVerdict:
    """The outcome for one request: `suppressed` {offering: why} and
    `remaining` items the per-day cap leaves (None: no cap), `cap_reason`
    the text for the items it cuts."""
    suppressed: dict[str, str]
    remaining: int | None = None
    cap_reason: str = ""
    skipped: str | None = None     # why nothing was evaluated (anonymous query)

    def cut(self, items: list) -> tuple[list, list]:
        """(kept, cut) of the ranked items under the per-day cap."""
        if self.remaining is None or len(items) <= self.remaining:
            return items, []
        return items[: max(0, self.remaining)], items[max(0, self.remaining):]


def evaluate(policies: tuple[ContactPolicy, ...], party_id: str | None, source, when: dt.datetime,
             channel: str | None, offerings, catalog: Catalog) -> ContactVerdict:
    """The verdict for the proposed `offerings` of one request evaluated at
    `when`: one `source.read` (none for an anonymous query or without a
    source, none when no rule proposed an offering or no policy covers
    the ones proposed). The first policy in file order that suppresses an
    offering names it."""
    if not party_id:
        return ContactVerdict({}, skipped="anonymous query: contact policies need a party")
    if source is None:
        return ContactVerdict({}, skipped="no history source: contact policies not evaluated")
    if not offerings:
        return ContactVerdict({}, skipped="no rule proposed an offering: nothing to read")
    if not any(p.kind == "maxOffersPerDay" for p in policies) and not any(
            p.applies_to(offering, catalog) for offering in offerings for p in policies):
        return ContactVerdict({}, skipped="no policy covers the proposed offerings: nothing to read")
    history = source.read(party_id, *window(policies, when), kinds=reaction_windows(policies, when))
    suppressed: dict[str, str] = {}
    for offering in offerings:
        if offering in suppressed:
            continue
        for policy in policies:
            if policy.kind != "maxOffersPerDay" and policy.applies_to(offering, catalog):
                why = _reason(policy, offering, history, when, channel)
                if why is not None:
                    suppressed[offering] = why
                    break
    remaining, cap_reason = None, ""
    for policy in policies:
        if policy.kind == "maxOffersPerDay":
            offered = sum(1 for offer in history.offers if offer.time > when - DAY)
            left = max(0, policy.count - offered)
            if remaining is None or left < remaining:
                remaining = left
                cap_reason = (f"offered {offered} items in the last 24 hours, at most {policy.count} "
                              f"a day (policy {policy.id})")
    return ContactVerdict(suppressed, remaining, cap_reason)


def _reason(policy: ContactPolicy, offering: str, history: History, when: dt.datetime,
            channel: str | None) -> str | None:
    since = when - dt.timedelta(days=policy.days)
    if policy.kind == "maxImpressions":
        shown = sum(1 for r in history.reactions
                    if r.type == READS[policy.kind] and r.offering == offering and r.time > since
                    and (not policy.per_channel or channel is None or r.channel == channel))
        if shown >= policy.count:
            where = f" on channel {channel}" if policy.per_channel and channel is not None else ""
            times = "once" if shown == 1 else f"{shown} times"
            return f"shown {times} in {_days(policy.days)}{where} (policy {policy.id})"
        return None
    wanted = READS[policy.kind]
    last = max((r.time for r in history.reactions
                if r.type == wanted and r.offering == offering and r.time > since), default=None)
    if last is None:
        return None
    stamp = isoformat(last)
    if wanted == "rejected":
        return f"rejected at {stamp}, paused for {_days(policy.days)} (policy {policy.id})"
    return f"accepted at {stamp}, not offered again (policy {policy.id})"
