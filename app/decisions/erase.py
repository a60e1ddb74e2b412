"""Erasing one person from the decision log (GDPR art. 17, right to
erasure): their recorded answers, their reactions and their stored TMF680
queries. The person is named by a customer id or an engaged party id; when
the store knows the TMF629 customer, both of its ids are erased (a query
may have named either). Sales leads are not touched: they are the sales
team's records, deleted through TMF699 if need be.

Answers still in a running worker's buffer are written within a flush
interval; run the erase again after that to be sure none arrived late."""
from __future__ import annotations

from dataclasses import dataclass

from ..recommend.query import KIND as QUERIES
from .metrics import ERASED
from .reactions import KIND as REACTIONS


@dataclass
class Erased:
    party_ids: list[str]
    decisions: int
    reactions: int
    queries: int


def erase_party(services, party_id: str) -> Erased:
    ids = {party_id}
    customer = services.recommender.parties.customer({"id": party_id})
    if customer is not None:
        ids.add(str(customer["id"]))
        engaged = (customer.get("engagedParty") or {}).get("id")
        if engaged is not None:
            ids.add(str(engaged))
    decisions = 0
    if services.decisions is not None:
        for one in sorted(ids):
            decisions += services.decisions.sink.erase_party(one)
        ERASED.inc(decisions)
    reactions = _delete_all(services, REACTIONS.collection, ids)
    queries = _delete_all(services, QUERIES.collection, ids)
    return Erased(sorted(ids), decisions, reactions, queries)


def _delete_all(services, collection: str, ids: set[str]) -> int:
    """Delete, with their DeleteEvent, the documents whose relatedParty names one of `ids`."""
    service = services.resources[collection]
    found = services.store.find_by(collection, ("relatedParty", "id"), sorted(ids))
    for document in found:
        service.delete(document["id"])
    return len(found)
