"""The lifecycle every TMF managed entity shares: create with server-set id
and href, list with the guideline query, retrieve, merge-patch, delete, and
the matching notifications. APIs differ only in the spec definitions and
hooks they pass in."""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

from marshmallow import ValidationError

from ..errors import TMFError
from ..store import DuplicateId
from .merge_patch import merge_patch, without_nulls
from .query import page_of, parse_list_query, select_fields

SERVER_OWNED = ("id", "href")


@dataclass
class ResourceKind:
    api: str                      # "customerManagement"
    collection: str               # store collection, "customer"
    type_name: str                # "Customer"
    payload_name: str             # "customer" (event payload key and URL segment)
    base_path: str                # "/tmf-api/customerManagement/v4/customer"
    resource_schema: type         # spec definition of the resource
    create_schema: type
    update_schema: type | None = None
    state_attribute: str | None = "status"
    # (old, new) -> error message or None; for state machines the spec implies
    check_transition: Callable[[str | None, str | None], str | None] | None = None
    # called with the validated create body; may raise TMFError
    validate_create: Callable[[dict], None] | None = None
    read_only: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def known_attributes(self) -> set[str]:
        return set(self.resource_schema().fields) | set(SERVER_OWNED) | {"@type"}


def validation_error(exc: ValidationError, what: str = "request body") -> TMFError:
    return TMFError(400, f"The {what} does not match the API's schema",
                    code="INVALID_BODY", details=exc.messages)


class ResourceService:
    def __init__(self, kind: ResourceKind, store, events):
        self.kind = kind
        self.store = store
        self.events = events
        # Built once: schema instances are reusable, and building them per
        # request was a fifth of an instant recommendation's time.
        self.create_schema = kind.create_schema()
        self.patch_schema = (kind.update_schema or kind.create_schema)(partial=True)

    # -- reading ----------------------------------------------------------
    def list(self, args, max_page_size: int) -> tuple[list[dict], int, object]:
        query = parse_list_query(args, self.kind.known_attributes, max_page_size)
        page, total = page_of(self.store.find(self.kind.collection, query.matches), query)
        return page, total, query

    def get(self, resource_id: str) -> dict:
        resource = self.store.get(self.kind.collection, resource_id)
        if resource is None:
            raise self._not_found(resource_id)
        return resource

    def get_selected(self, resource_id: str, selected) -> dict:
        return select_fields(self.get(resource_id), selected)

    # -- writing ----------------------------------------------------------
    def new_resource(self, body: dict, base_url: str) -> dict:
        """Validated body plus the attributes the server owns."""
        try:
            data = self.create_schema.load(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        if self.kind.validate_create:
            self.kind.validate_create(data)
        resource_id = str(uuid.uuid4())
        resource = {"id": resource_id, "href": f"{base_url}{self.kind.base_path}/{resource_id}"}
        resource.update(data)
        resource.setdefault("@type", self.kind.type_name)
        return resource

    def create(self, body: dict, base_url: str) -> dict:
        return self.insert(self.new_resource(body, base_url))

    def insert(self, resource: dict) -> dict:
        """Raises DuplicateId when the id is taken."""
        def change(current: dict | None):
            if current is not None:
                raise DuplicateId(self.kind.collection, resource["id"])
            return resource, ["CreateEvent"]

        return self._write(resource["id"], change)

    def patch(self, resource_id: str, patch: dict) -> dict:
        for name in SERVER_OWNED + self.kind.read_only:
            if name in patch:
                raise TMFError(400, f"{name} cannot be changed", code="NOT_PATCHABLE")
        try:
            self.patch_schema.load(without_nulls(patch))
        except ValidationError as exc:
            raise validation_error(exc) from None

        def change(current: dict | None):
            if current is None:
                raise self._not_found(resource_id)
            merged = merge_patch(copy.deepcopy(current), patch)
            body = {k: v for k, v in merged.items() if k not in SERVER_OWNED + self.kind.read_only}
            try:
                checked = self.create_schema.load(body)
            except ValidationError as exc:
                raise validation_error(exc, "patched resource") from None
            self._check_transition(current, merged)
            result = {k: current[k] for k in SERVER_OWNED + self.kind.read_only if k in current}
            result.update(checked)
            return result, self._change_events(current, result, set(current) | set(result))

        return self._write(resource_id, change)

    def set_attributes(self, resource_id: str, values: dict) -> dict | None:
        """Server-side changes (task state, results) with their notifications."""
        def change(current: dict | None):
            if current is None:
                return None, []
            updated = {**copy.deepcopy(current), **copy.deepcopy(values)}
            # one notification: the state change when there is one (a task's
            # `done` carries its results), else the attribute change
            return updated, self._change_events(current, updated, set(values))[:1]

        return self._write(resource_id, change)

    def delete(self, resource_id: str) -> None:
        def change(current: dict | None):
            if current is None:
                raise self._not_found(resource_id)
            return None, ["DeleteEvent"]

        self._write(resource_id, change)

    def _change_events(self, before: dict, after: dict, names) -> list[str]:
        """StateChangeEvent when the state attribute changed, and
        AttributeValueChangeEvent when anything else did."""
        changed = {k for k in names if before.get(k) != after.get(k)}
        state = self.kind.state_attribute
        suffixes = []
        if state and state in changed:
            suffixes.append("StateChangeEvent")
        if changed - {state}:
            suffixes.append("AttributeValueChangeEvent")
        return suffixes

    def _write(self, resource_id: str, change) -> dict | None:
        """The one way a resource changes: `change(current or None)` returns
        (new document or None to delete, event suffixes) or raises (nothing
        is written). Inside the collection's transaction the change is
        staged, then its event recorded (app/events/records.py says why in
        this order); the change commits when the block ends, so a change
        whose event cannot be recorded is never stored (503)."""
        collection = self.kind.collection
        with self.store.transaction(collection) as tx:
            before = tx.get(resource_id)
            after, suffixes = change(before)
            if after is None and before is None:
                return None
            if after is None:
                tx.delete(resource_id)
                stored, payload = None, before
            elif before is None:
                stored = payload = tx.insert(after)
            else:
                stored = payload = tx.update(resource_id, lambda _current: after)
            if suffixes:
                self.events.record(
                    self.kind.api, collection, resource_id, before, stored,
                    [(f"{self.kind.type_name}{suffix}", self.kind.payload_name, payload)
                     for suffix in suffixes])
        return stored if stored is not None else before

    def _not_found(self, resource_id: str) -> TMFError:
        return TMFError(404, f"No {self.kind.type_name} with id {resource_id!r}",
                        code="NOT_FOUND")

    def _check_transition(self, current: dict, merged: dict) -> None:
        state = self.kind.state_attribute
        if not (state and self.kind.check_transition):
            return
        if current.get(state) != merged.get(state):
            problem = self.kind.check_transition(current.get(state), merged.get(state))
            if problem:
                raise TMFError(400, problem, code="INVALID_STATE_TRANSITION")
