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
            raise TMFError(404, f"No {self.kind.type_name} with id {resource_id!r}",
                           code="NOT_FOUND")
        return resource

    def get_selected(self, resource_id: str, selected) -> dict:
        return select_fields(self.get(resource_id), selected)

    # -- writing ----------------------------------------------------------
    def new_resource(self, body: dict, base_url: str, stored: bool = True) -> dict:
        """Validated body plus the attributes the server owns (no id and href
        for a resource that will not be stored, e.g. an instant answer)."""
        try:
            data = self.create_schema.load(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        if self.kind.validate_create:
            self.kind.validate_create(data)
        resource = self.identify({}, base_url) if stored else {}
        resource.update(data)
        resource.setdefault("@type", self.kind.type_name)
        return resource

    def identify(self, resource: dict, base_url: str) -> dict:
        """Give a resource about to be stored its id and href (in place)."""
        resource_id = str(uuid.uuid4())
        resource["id"] = resource_id
        resource["href"] = f"{base_url}{self.kind.base_path}/{resource_id}"
        return resource

    def create(self, body: dict, base_url: str) -> dict:
        resource = self.store.insert(self.kind.collection, self.new_resource(body, base_url))
        self.publish("CreateEvent", resource)
        return resource

    def insert(self, resource: dict) -> dict:
        stored = self.store.insert(self.kind.collection, resource)
        self.publish("CreateEvent", stored)
        return stored

    def patch(self, resource_id: str, patch: dict) -> dict:
        for name in SERVER_OWNED + self.kind.read_only:
            if name in patch:
                raise TMFError(400, f"{name} cannot be changed", code="NOT_PATCHABLE")
        try:
            self.patch_schema.load(without_nulls(patch))
        except ValidationError as exc:
            raise validation_error(exc) from None
        before: dict = {}

        def change(current: dict) -> dict:
            before.update(copy.deepcopy(current))
            merged = merge_patch(current, patch)
            body = {k: v for k, v in merged.items() if k not in SERVER_OWNED + self.kind.read_only}
            try:
                checked = self.create_schema.load(body)
            except ValidationError as exc:
                raise validation_error(exc, "patched resource") from None
            self._check_transition(current, merged)
            result = {k: current[k] for k in SERVER_OWNED + self.kind.read_only if k in current}
            result.update(checked)
            return result

        updated = self.store.update(self.kind.collection, resource_id, change)
        if updated is None:
            raise TMFError(404, f"No {self.kind.type_name} with id {resource_id!r}",
                           code="NOT_FOUND")
        state = self.kind.state_attribute
        changed = {k for k in set(before) | set(updated) if before.get(k) != updated.get(k)}
        if state and state in changed:
            self.publish("StateChangeEvent", updated)
        if changed - {state}:
            self.publish("AttributeValueChangeEvent", updated)
        return updated

    def set_attributes(self, resource_id: str, values: dict) -> dict | None:
        """Server-side changes (task state, results) with their notifications."""
        before: dict = {}

        def change(current: dict) -> dict:
            before.update(copy.deepcopy(current))
            current.update(values)
            return current

        updated = self.store.update(self.kind.collection, resource_id, change)
        if updated is None:
            return None
        state = self.kind.state_attribute
        if state and before.get(state) != updated.get(state):
            self.publish("StateChangeEvent", updated)
        elif any(before.get(k) != updated.get(k) for k in values):
            self.publish("AttributeValueChangeEvent", updated)
        return updated

    def delete(self, resource_id: str) -> None:
        removed = self.store.delete(self.kind.collection, resource_id)
        if removed is None:
            raise TMFError(404, f"No {self.kind.type_name} with id {resource_id!r}",
                           code="NOT_FOUND")
        self.publish("DeleteEvent", removed)

    def _check_transition(self, current: dict, merged: dict) -> None:
        state = self.kind.state_attribute
        if not (state and self.kind.check_transition):
            return
        if current.get(state) != merged.get(state):
            problem = self.kind.check_transition(current.get(state), merged.get(state))
            if problem:
                raise TMFError(400, problem, code="INVALID_STATE_TRANSITION")

    def publish(self, suffix: str, resource: dict) -> None:
        self.events.publish(self.kind.api, f"{self.kind.type_name}{suffix}",
                            self.kind.payload_name, resource)
