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
from .query import page_of, parse_fields, parse_list_query, select_fields

SERVER_OWNED = ("id", "href")


def is_extension(resource: dict, kind: "ResourceKind") -> bool:
    """Is this stored (or sent) object a TMF subclass of the kind's type: it
    carries @schemaLocation, or its @type names another type (TMF630 part 2,
    polymorphism and extension)? Mirrors TmfSchema._is_extension."""
    if resource.get("@schemaLocation"):
        return True
    declared = resource.get("@type")
    return isinstance(declared, str) and declared.lower() not in (
        kind.type_name.lower(), f"{kind.type_name.lower()}_create")


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

    @cached_property
    def server_owned(self) -> tuple[str, ...]:
        """Attributes only the service sets: id, href, and what the spec's
        resource definition has but its _Create one lacks (TMF630: "the
        attributes not in the _Create definition are set by the server"),
        e.g. creationDate of a salesLead, recommendationItem of a query."""
        computed = set(self.resource_schema().fields) - set(self.create_schema().fields)
        return SERVER_OWNED + tuple(sorted(computed - set(SERVER_OWNED)))

    def refuse_server_owned(self, body: dict) -> None:
        """A 400 that says the server sets them, whatever @type or
        @schemaLocation the body carries (an extension must not smuggle an
        id or a link in as an "extension attribute")."""
        sent = [name for name in self.server_owned if name in body]
        if sent:
            raise TMFError(400, f"{', '.join(sent)} {'is' if len(sent) == 1 else 'are'} set by "
                                f"the server; do not send {'it' if len(sent) == 1 else 'them'} "
                                f"(the created {self.type_name} is in the answer, its href "
                                f"also in Location)", code="SERVER_OWNED_ATTRIBUTE",
                           details={name: ["Set by the server; do not send it."] for name in sent})


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
        self._extension_names: tuple[object, set[str]] | None = None

    # -- reading ----------------------------------------------------------
    def list(self, args, max_page_size: int) -> tuple[list[dict], int, object]:
        query = parse_list_query(args, self.known_attributes(), max_page_size)
        page, total = page_of(self.store.find(self.kind.collection, query.matches), query)
        return page, total, query

    def known_attributes(self) -> set[str]:
        """The kind's attributes plus the extension attributes of the stored
        subclasses (a ResidentialCustomer's loyaltyTier), so that filters,
        `sort` and `fields=` work on what a subclass stored. Scanned without
        copying, and kept until the collection changes."""
        version = self.store.version(self.kind.collection)
        cached = self._extension_names
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        names = set(self.kind.known_attributes)

        def collect(document: dict) -> bool:
            if is_extension(document, self.kind):
                names.update(key for key in document if isinstance(key, str))
            return False

        self.store.find(self.kind.collection, collect)
        self._extension_names = (version, names)
        return names

    def get(self, resource_id: str) -> dict:
        resource = self.store.get(self.kind.collection, resource_id)
        if resource is None:
            raise TMFError(404, f"No {self.kind.type_name} with id {resource_id!r}",
                           code="NOT_FOUND")
        return resource

    def get_selected(self, resource_id: str, args) -> dict:
        """The resource with the `fields=` of `args` applied; a subclass's own
        attributes can be selected too."""
        resource = self.get(resource_id)
        known = set(self.kind.known_attributes)
        if is_extension(resource, self.kind):
            known.update(resource)
        return select_fields(resource, parse_fields(args, known))

    # -- writing ----------------------------------------------------------
    def new_resource(self, body: dict, base_url: str, stored: bool = True) -> dict:
        """Validated body plus the attributes the server owns (no id and href
        for a resource that will not be stored, e.g. an instant answer).
        `base_url` is RECO_PUBLIC_BASE_URL or "" (links stored relative), never
        a value from the request (app/api/tmf.py, base_url)."""
        self.kind.refuse_server_owned(body)
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
        owned = self.kind.server_owned + self.kind.read_only
        for name in owned:
            if name in patch:
                why = "is set by the server and " if name in self.kind.server_owned else ""
                raise TMFError(400, f"{name} {why}cannot be changed", code="NOT_PATCHABLE")
        # A stored subclass governs its patches: its @type and @schemaLocation
        # open the schema for its extension attributes without being re-sent.
        current = self.get(resource_id)
        typed = {key: current[key] for key in ("@type", "@schemaLocation")
                 if key in current and key not in patch}
        try:
            self.patch_schema.load({**typed, **without_nulls(patch)})
        except ValidationError as exc:
            raise validation_error(exc) from None
        # A null removes an attribute (RFC 7396): only one the resource can have.
        removable = set(self.patch_schema.fields) | (set(current) if is_extension(current, self.kind)
                                                     else set())
        unknown = sorted(key for key, value in patch.items() if value is None and key not in removable)
        if unknown:
            raise validation_error(ValidationError({key: ["Unknown field."] for key in unknown}))
        before: dict = {}

        def change(current: dict) -> dict:
            before.update(copy.deepcopy(current))
            merged = merge_patch(current, patch)
            body = {k: v for k, v in merged.items() if k not in owned}
            try:
                checked = self.create_schema.load(body)
            except ValidationError as exc:
                raise validation_error(exc, "patched resource") from None
            self._check_transition(current, merged)
            result = {k: current[k] for k in owned if k in current}
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
