"""The life of a TMF699 salesLead: the spec's SalesLeadStateType values and
which changes between them make sense.

    acknowledged --> inProgress <--> pending
         |               |              |
         +---------------+--------------+--> accepted | rejected | cancelled  (final)

`acknowledged` is where a lead starts (the default at creation): it was
received but nobody works on it yet. `inProgress` and `pending` (waiting for
the prospect or for information) alternate while the lead is worked. The
outcome is final: `accepted` (qualified, it goes on as a sale), `rejected`
(disqualified) or `cancelled` (withdrawn). A lead never returns to
`acknowledged`, and a decided lead is not reopened: a new interest is a new lead.
"""
from __future__ import annotations

STATUSES = ("acknowledged", "inProgress", "pending", "accepted", "rejected", "cancelled")
INITIAL_STATUS = "acknowledged"
FINAL_STATUSES = ("accepted", "rejected", "cancelled")

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "acknowledged": ("inProgress", "pending") + FINAL_STATUSES,
    "inProgress": ("pending",) + FINAL_STATUSES,
    "pending": ("inProgress",) + FINAL_STATUSES,
    "accepted": (),
    "rejected": (),
    "cancelled": (),
}


def check_transition(old: str | None, new: str | None) -> str | None:
    """None when a lead may go from `old` to `new`, else why not (the message
    of the 400 TMF error)."""
    if new is None:
        return "status cannot be removed from a salesLead"
    if old is None or old == new:
        return None
    allowed = TRANSITIONS.get(old)
    if allowed is None:  # a status the spec does not know: only the schema's concern
        return None
    if new in allowed:
        return None
    if not allowed:
        return f"A salesLead cannot go from {old} to {new}: {old} is final"
    return (f"A salesLead cannot go from {old} to {new}; "
            f"from {old} it can go to {', '.join(allowed)}")


def stamp_new_lead(lead: dict, now: str) -> dict:
    """The attributes the service owns at creation."""
    lead["creationDate"] = now
    lead.setdefault("status", INITIAL_STATUS)
    lead.setdefault("statusChangeDate", now)
    return lead


def stamp_status_change(current: dict, patch: dict, now: str) -> dict:
    """The merge patch with `statusChangeDate` set when it changes the status
    and the client did not date the change itself."""
    if ("status" in patch and patch["status"] != current.get("status")
            and "statusChangeDate" not in patch):
        return {**patch, "statusChangeDate": now}
    return patch
