"""A party's recent reactions and answered items, read once per request for
the contact policies (app/rules/engine/contact.py), from the store the
service runs on.

Only the reaction types the policies read are read, each over its own
window (`kinds`: app/rules/engine/contact.py reaction_windows), so a party's
old impressions and clicks cost nothing.

PostgreSQL (`PostgresHistory`): ONE statement, one index range scan per
reaction type read, on `documents_reaction_party_type`
((doc #>> '{relatedParty,0,id}'), (doc ->> 'reactionType'),
(doc ->> 'reactionDate')) (migration 0007), and, when a maxOffersPerDay
policy needs them, answers through `decisions_party` (party_id,
decided_at) joined to `decision_items` by its primary key (migration
0004). Never a scan of either table (bench/contact_bench.py EXPLAINs it;
bench/contact_long_history.py measures a long history). On the instant path it rides in the customer look-up's
statement (`ahead` -> PostgresStore.get_along, answered by a `ReadAhead`),
so the policies cost no round trip of their own. `reactionDate` is indexed as the text the client sent: the
range is widened by a day (offsets reach ±14 h) and the exact bound is
applied after parsing.

Embedded (`EmbeddedHistory`): reactions from an index by party and type
(each list in time order) kept per worker, rebuilt when the store's
version token of the collection changes (a reaction written by any
worker: O(reactions) once per write; per request a dict look-up and two
binary searches per type); answers from the decision log's JSON Lines day files that the
window touches (a 24-hour window: two files), indexed by party per worker
(`DayFileIndex`) and brought up to date by reading only what was appended
since the last request. The index holds one or two days' answered items:
the embedded store's premise is small data.

Both add the answers still in this worker's decision-log buffer (written
within ~0.1 s); another worker's unwritten answers are not seen, so
parallel requests of one party within a flush interval can each use the
remaining per-day allowance (docs/contact-policies.md)."""
from __future__ import annotations

import bisect
import datetime as dt
import json
import os
import threading

from ..rules.engine.contact import FixedHistory, History, Offer, Reaction, in_kinds
from ..timeutil import isoformat

REACTIONS = "recommendationReaction"
_SLACK = dt.timedelta(days=1)


def _time(text) -> dt.datetime | None:
    if not isinstance(text, str):
        return text if isinstance(text, dt.datetime) else None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return when.astimezone(dt.timezone.utc) if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def _text_bound(when: dt.datetime) -> str:
    """`when` to the second, without the zone: a prefix that compares, as
    text, with the stored stamps (app.timeutil.isoformat)."""
    return isoformat(when)[:19]


def _reaction(kind, offering, channel, when, since, until) -> Reaction | None:
    when = _time(when)
    if when is None or not offering or not since < when <= until:
        return None
    return Reaction(kind, str(offering), when, channel)


def _reaction_of(doc: dict) -> Reaction | None:
    when = _time(doc.get("reactionDate"))
    offering = (doc.get("productOffering") or {}).get("id") if isinstance(doc.get("productOffering"), dict) \
        else None
    channel = doc.get("channel") if isinstance(doc.get("channel"), dict) else {}
    if when is None or not offering or not isinstance(doc.get("reactionType"), str):
        return None
    return Reaction(doc["reactionType"], str(offering), when, channel.get("id"))


def _buffer_of(decisions, party_id: str, offers_since) -> list[dict]:
    """The party's records in this worker's decision-log buffer, taken
    BEFORE the store is read: the flusher removes a batch from the buffer
    only after writing it, so every answer is then in this copy or (written
    since) in what the store read returns. Taken after the store read, an
    answer written and removed in between was in neither: the worker's next
    request did not count an answer its client already had, and the per-day
    cap let more through (a whole run, 2026-12-07: 5 counted of 8). Empty
    when no answers are read (`offers_since` None: no maxOffersPerDay)."""
    if decisions is None or offers_since is None:
        return []
    return decisions.buffered_of_party(party_id)


def _buffered(records: list[dict], since, until, written: list[Offer]) -> list[Offer]:
    """The answers of `records` (_buffer_of), but those among the `written`
    ones already read: a record written between the copy and the store
    read is in both (counted twice, it cut the per-day allowance)."""
    seen = {offer.decision for offer in written}
    found = []
    for record in records:
        when = _time(record.get("decidedAt"))
        if when is not None and since < when <= until and record.get("id") not in seen:
            found.extend(Offer(str(item.get("offeringId")), when, record.get("channelId"), record.get("id"))
                         for item in record.get("items") or [])
    return found


class PostgresHistory:
    """One indexed statement per request (see the module docstring)."""

    REACTIONS_SQL = (
        "SELECT doc->>'reactionType', doc #>> '{productOffering,id}', doc #>> '{channel,id}', "
        "doc->>'reactionDate', NULL::timestamptz FROM documents "
        "WHERE collection = 'recommendationReaction' AND (doc #>> '{relatedParty,0,id}') = %(party)s "
        "AND (doc ->> 'reactionDate') > %(since_text)s AND (doc ->> 'reactionDate') <= %(until_text)s")
    #: one branch per reaction type asked for (`kinds`), each a range scan of
    #: documents_reaction_party_type (party, type, date) over its own window
    KIND_SQL = (
        "SELECT doc->>'reactionType', doc #>> '{productOffering,id}', doc #>> '{channel,id}', "
        "doc->>'reactionDate', NULL::timestamptz FROM documents "
        "WHERE collection = 'recommendationReaction' AND (doc #>> '{relatedParty,0,id}') = %(party)s "
        "AND (doc ->> 'reactionType') = %(kind_{n})s "
        "AND (doc ->> 'reactionDate') > %(since_text_{n})s AND (doc ->> 'reactionDate') <= %(until_text)s")
    OFFERS_SQL = (
        "SELECT NULL, i.offering_id, d.channel_id, d.id, d.decided_at "
        "FROM decisions d JOIN decision_items i ON i.decision_id = d.id "
        "WHERE d.party_id = %(party)s AND d.decided_at > %(since)s AND d.decided_at <= %(until)s")
    #: a statement with no branch (no type asked for, no answers): no rows
    NOTHING_SQL = "SELECT NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz WHERE false"

    COLUMNS = 5     # type, offering, channel, reactionDate (reactions) | decided_at (answers)

    def __init__(self, store, decisions=None):
        self.store = store
        self.decisions = decisions

    def statement(self, offers: bool, kinds: dict[str, dt.datetime] | None = None) -> str:
        """The SELECT of the read: the reactions of every type (`kinds`
        None) or one branch per type in `kinds` (in its order: the
        parameters' numbering), and the answers when `offers`; branches
        joined by UNION ALL, each planned on its own index."""
        branches = ([self.REACTIONS_SQL] if kinds is None
                    else [self.KIND_SQL.replace("{n}", str(n)) for n in range(len(kinds))])
        if offers:
            branches.append(self.OFFERS_SQL)
        return " UNION ALL ".join(branches) or self.NOTHING_SQL

    @staticmethod
    def parameters(party_id: str, since: dt.datetime, until: dt.datetime,
                   offers_since: dt.datetime | None = None,
                   kinds: dict[str, dt.datetime] | None = None) -> dict:
        found = {"party": party_id, "since": offers_since or since, "until": until,
                 "until_text": _text_bound(until + _SLACK) + "~"}
        if kinds is None:
            found["since_text"] = _text_bound(since - _SLACK)
        for n, (kind, kind_since) in enumerate(kinds.items() if kinds else ()):
            found[f"kind_{n}"] = kind
            found[f"since_text_{n}"] = _text_bound(kind_since - _SLACK)
        return found

    def read(self, party_id: str, since: dt.datetime, until: dt.datetime,
             offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None) -> History:
        buffered = _buffer_of(self.decisions, party_id, offers_since)
        with self.store.connection(write=False) as conn:
            rows = conn.execute(*self.request(party_id, since, until, offers_since, kinds=kinds)).fetchall()
        return self.history(rows, party_id, since, until, offers_since, kinds=kinds, buffered=buffered)

    def request(self, party_id: str, since: dt.datetime, until: dt.datetime,
                offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None
                ) -> tuple[str, dict]:
        """(statement, parameters) of the read `read` runs: for a caller
        that sends it in the same round trip as other reads
        (PostgresStore.get_along), then makes the History with `history`."""
        return (self.statement(offers_since is not None, kinds),
                self.parameters(party_id, since, until, offers_since, kinds))

    def ahead(self, party_id: str, since: dt.datetime, until: dt.datetime,
              offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None):
        """The read of `read`, for the caller to send in another read's
        statement (PostgresStore.get_along): ((sql, parameters, columns),
        finish) where finish(rows) is the request's source, a ReadAhead
        answering this window from the rows. The answering path calls it
        through PartyFacts.look_up."""
        buffered = _buffer_of(self.decisions, party_id, offers_since)     # before the statement is sent

        def finish(rows) -> ReadAhead:
            return ReadAhead(self, party_id, since, until, offers_since,
                             self.history(rows, party_id, since, until, offers_since, kinds=kinds,
                                          buffered=buffered), kinds=kinds)
        return (*self.request(party_id, since, until, offers_since, kinds=kinds), self.COLUMNS), finish

    def history(self, rows, party_id: str, since: dt.datetime, until: dt.datetime,
                offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None,
                buffered: list[dict]) -> History:
        """The History of the rows `request`'s statement returned, with the
        answers that were in this worker's decision-log buffer before the
        statement ran (`buffered`: _buffer_of). The exact
        bounds (each kind's own `since`) are applied here, on the parsed
        time: the statement's text ranges are a day wider."""
        history = History()
        for kind, offering, channel, reacted, decided in rows:
            if kind is None:               # an answered item: `reacted` holds the answer's id
                if offering and offers_since < decided <= until:
                    history.offers.append(Offer(offering, decided, channel, reacted))
                continue
            reaction = _reaction(kind, offering, channel, reacted, since, until)
            if reaction is not None and in_kinds(reaction, kinds):
                history.reactions.append(reaction)
        if offers_since is not None:
            history.offers.extend(_buffered(buffered, offers_since, until, history.offers))
        return history


class ReadAhead:
    """One request's history, read before the rules ran (in the customer
    look-up's round trip: app/recommend/facts.py), answering the policies'
    `read` from memory when it asks for that party within the window read
    (FixedHistory's filtering; with `kinds`, only types read ahead, each
    from no earlier than it was read); any other read (another party, a
    wider window or another type: a reload between the look-up and the
    evaluation brought other policies) goes to the `source`, so the answer
    never depends on the read ahead being right."""

    def __init__(self, source, party_id: str, since: dt.datetime, until: dt.datetime,
                 offers_since: dt.datetime | None, history: History, *,
                 kinds: dict[str, dt.datetime] | None = None):
        self.source = source
        self.party_id = party_id
        self.since, self.until, self.offers_since = since, until, offers_since
        self.kinds = kinds
        self.fixed = FixedHistory(history)

    def read(self, party_id: str, since: dt.datetime, until: dt.datetime,
             offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None) -> History:
        covered = (party_id == self.party_id and since >= self.since and until <= self.until
                   and (offers_since is None
                        or (self.offers_since is not None and offers_since >= self.offers_since))
                   and self._covers(kinds))
        if covered:
            return self.fixed.read(party_id, since, until, offers_since, kinds=kinds)
        return self.source.read(party_id, since, until, offers_since, kinds=kinds)

    def _covers(self, kinds: dict[str, dt.datetime] | None) -> bool:
        if self.kinds is None:
            return True                       # every type was read from `since`
        if kinds is None:
            return False
        return all(kind in self.kinds and kind_since >= self.kinds[kind] for kind, kind_since in kinds.items())


class EmbeddedHistory:
    """The TinyDB store's reaction index and the JSON Lines day files."""

    # no statement to send along the customer's look-up: the index is in
    # memory (PostgresHistory.ahead is the read-ahead of the SQL store)
    ahead = None

    def __init__(self, store, decisions=None):
        self.store = store
        self.decisions = decisions
        self._days: dict[dt.date, DayFileIndex] = {}
        self._reactions: dict[str, dict[str, list[Reaction]]] = {}
        self._reactions_version = None
        self._lock = threading.Lock()

    def read(self, party_id: str, since: dt.datetime, until: dt.datetime,
             offers_since: dt.datetime | None, *, kinds: dict[str, dt.datetime] | None = None) -> History:
        buffered = _buffer_of(self.decisions, party_id, offers_since)     # before the day files
        by_type = self._reactions_of(party_id)
        history = History()
        for kind, kind_since in (kinds.items() if kinds is not None
                                 else ((kind, since) for kind in by_type)):
            history.reactions.extend(_between(by_type.get(kind, ()), max(since, kind_since), until))
        if offers_since is not None:
            history.offers.extend(self._logged(party_id, offers_since, until))
            history.offers.extend(_buffered(buffered, offers_since, until, history.offers))
        return history

    def _reactions_of(self, party_id: str) -> dict[str, list[Reaction]]:
        """The party's reactions by type, each list in time order, from a
        per-worker index of the collection rebuilt when the store's version
        token of the collection changes (a write by any process); without
        a token, the store's own look-up."""
        version = self.store.version(REACTIONS)
        if version is None:
            return _by_type(r for doc in self.store.find_by(REACTIONS, ("relatedParty", "id"), [party_id])
                            if (r := _reaction_of(doc)) is not None)
        with self._lock:
            if version != self._reactions_version:
                by_party: dict[str, list[Reaction]] = {}
                for doc in self.store.all(REACTIONS):
                    reaction = _reaction_of(doc)
                    parties = doc.get("relatedParty")
                    if reaction is None or not isinstance(parties, list):
                        continue
                    for party in {p.get("id") for p in parties if isinstance(p, dict)}:
                        if isinstance(party, str):
                            by_party.setdefault(party, []).append(reaction)
                self._reactions = {party: _by_type(found) for party, found in by_party.items()}
                self._reactions_version = version
            return self._reactions.get(party_id, {})

    def _logged(self, party_id: str, since, until) -> list[Offer]:
        directory = self.decisions.sink.directory if self.decisions is not None else None
        if directory is None:
            return []
        found = []
        days = []
        day = since.date()
        while day <= until.date():
            days.append(day)
            day += dt.timedelta(days=1)
        with self._lock:
            for old in [d for d in self._days if d not in days]:
                del self._days[old]         # out of every window from now on (time moves forward)
            for day in days:
                index = self._days.get(day)
                if index is None:
                    index = self._days[day] = DayFileIndex(directory / f"{day.isoformat()}.jsonl")
                found.extend(o for o in index.offers_of(party_id) if since < o.time <= until)
        return found


def _by_type(reactions) -> dict[str, list[Reaction]]:
    """{reaction type: reactions of that type in time order}."""
    found: dict[str, list[Reaction]] = {}
    for reaction in reactions:
        found.setdefault(reaction.type, []).append(reaction)
    for listed in found.values():
        listed.sort(key=_at)
    return found


def _at(reaction: Reaction) -> dt.datetime:
    return reaction.time


def _between(reactions, since: dt.datetime, until: dt.datetime) -> list[Reaction]:
    """The reactions (in time order) with since < time <= until: two
    binary searches, so a party's old reactions cost nothing per request."""
    return reactions[bisect.bisect_right(reactions, since, key=_at):bisect.bisect_right(reactions, until, key=_at)]


class DayFileIndex:
    """The answered items of one JSON Lines day file by party, kept per
    worker and brought up to date by reading only the bytes appended since
    the last read (the log only appends; erase and purge replace or remove
    the file, which a new inode or a shorter file shows: then it is read
    again from the start). A line cut by a crash is skipped, as the log's
    own reads do."""

    def __init__(self, path):
        self.path = path
        self.inode = None
        self.offset = 0
        self.by_party: dict[str, list[Offer]] = {}

    def offers_of(self, party_id: str) -> list[Offer]:
        self._refresh()
        return self.by_party.get(party_id, [])

    def _refresh(self) -> None:
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            self.inode, self.offset, self.by_party = None, 0, {}
            return
        if stat.st_ino != self.inode or stat.st_size < self.offset:
            self.inode, self.offset, self.by_party = stat.st_ino, 0, {}
        if stat.st_size == self.offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read(stat.st_size - self.offset)
        whole = data.rfind(b"\n") + 1          # a line still being written waits for the next read
        self.offset += whole
        for line in data[:whole].splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or not isinstance(record.get("partyId"), str):
                continue
            when = _time(record.get("decidedAt"))
            if when is None:
                continue
            self.by_party.setdefault(record["partyId"], []).extend(
                Offer(str(item.get("offeringId")), when, record.get("channelId"), record.get("id"))
                for item in record.get("items") or [] if isinstance(item, dict))


def history_source(store, decisions=None):
    """The history source for the service's store: PostgresHistory on a
    store that speaks SQL (PostgreSQL: the Store interface's `sql` feature),
    else EmbeddedHistory. `decisions` is the DecisionLog (None when
    RECO_DECISION_LOG is off: then no answer is counted)."""
    if store.sql:
        return PostgresHistory(store, decisions)
    return EmbeddedHistory(store, decisions)
