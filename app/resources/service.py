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

from marshmallow import ValidationError, fields

from ..errors import TMFError
from ..schemas.fast import FastLoader
from ..schemas.spec import is_extension_of
from ..storable import CODE as UNSUPPORTED_CHARACTER, first_unstorable
from ..store import DuplicateId, StoreError
from .merge_patch import merge_patch, without_nulls
from .query import parse_fields, parse_list_query, select_fields

SERVER_OWNED = ("id", "href")


def is_extension(resource: dict, kind: "ResourceKind") -> bool:
    """Is this stored (or sent) object a TMF subclass of the kind's type
    (its resource or _Create definition)? app.schemas.spec.is_extension_of."""
    return is_extension_of(resource, kind.own_types)


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
    # called with the validated create body and the body as sent (to name
    # attributes in errors as the client sent them); may raise TMFError; what
    # it returns (what it read of the body) is checked_new_resource's second value
    validate_create: Callable[[dict, dict], object] | None = None
    read_only: tuple[str, ...] = field(default_factory=tuple)

    @cached_property
    def own_types(self) -> frozenset[str]:
        """The @type values (lower case) of the kind itself, not a subclass."""
        return frozenset({self.type_name.lower(), f"{self.type_name.lower()}_create"})

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


TYPING = ("@type", "@schemaLocation")


def with_stored_typing(patch, current):
    """`patch` with, in every object it merges into a stored object, the
    stored @type/@schemaLocation it does not send (a null it sends counts as
    sent): a stored subclass governs its patches at every depth, so that a
    ResidentialCustomer's loyaltyTier can be patched without re-sending @type.
    Only for validation; the merge itself keeps what is stored anyway."""
    if not isinstance(patch, dict) or not isinstance(current, dict):
        return patch
    typed = {key: current[key] for key in TYPING if key in current and key not in patch}
    typed.update((key, with_stored_typing(value, current.get(key))) for key, value in patch.items())
    return typed


def unknown_deletions(schema, patch: dict) -> dict:
    """The nulls of a merge patch (RFC 7396: a null removes the name) that name
    an attribute the object cannot have, as marshmallow messages nested like
    the patch (`{"validFor": {"typo": ["Unknown field."]}}`); {} if none.

    The rule for values (app/schemas/spec.py, TmfSchema, and the served
    document's anyOf) applied to names, at every depth: an attribute of the
    object's definition, or any name when the object is a subclass (its
    @type/@schemaLocation, from the patch or, via with_stored_typing, the
    stored object). `schema` is the TmfSchema instance of the object. Needed
    because nulls are taken out before the schema load (a deletion has no
    value to type-check), which also took them out of its unknown-field check."""
    open_ = schema.is_extension(patch)
    errors: dict = {}
    for key, value in patch.items():
        field_ = schema.fields.get(key) if isinstance(key, str) else None
        if value is None:
            if field_ is None and not open_:
                errors[key] = ["Unknown field."]
        elif isinstance(value, dict) and field_ is not None:
            # an object, or one object sent for an array (OneOrMany)
            inner = field_.inner if isinstance(field_, fields.List) else field_
            if isinstance(inner, fields.Nested):
                nested = unknown_deletions(inner.schema, value)
                if nested:
                    errors[key] = nested
    return errors


def validation_error(exc: ValidationError, what: str = "request body") -> TMFError:
    return TMFError(400, f"The {what} does not match the API's schema",
                    code="INVALID_BODY", details=exc.messages)


def refuse_unstorable_text(value) -> None:
    """A string no store can hold (a NUL, an unpaired surrogate: see
    app/storable.py) anywhere in a body is a 400 naming where, on every store
    alike and before any store is reached. HTTP bodies are checked as they
    are read (app/jsonbody.py); this covers what reaches the service
    otherwise (`flask store load`)."""
    found = first_unstorable(value)
    if found is not None:
        where, why = found
        raise TMFError(400, f"{where} holds {why}, which this service accepts in no text",
                       code=UNSUPPORTED_CHARACTER, details={where: [f"Holds {why}."]})


class ResourceService:
    def __init__(self, kind: ResourceKind, store, events):
        self.kind = kind
        self.store = store
        self.events = events
        # Built once: schema instances are reusable, and building them per
        # request was a fifth of an instant recommendation's time.
        self.create_schema = kind.create_schema()
        # valid create bodies skip marshmallow; any other goes through it
        self.create_loader = FastLoader(self.create_schema)
        self.patch_schema = (kind.update_schema or kind.create_schema)(partial=True)
        self.resource_schema = kind.resource_schema()
        self._extension_names: tuple[object, set[str]] | None = None

    # -- reading ----------------------------------------------------------
    def list(self, args, max_page_size: int) -> tuple[list[dict], int, object]:
        query = parse_list_query(args, self.known_attributes(), max_page_size,
                                 self.resource_schema)
        page, total = self.store.query(self.kind.collection, query)
        return [select_fields(resource, query.fields) for resource in page], total, query

    def known_attributes(self) -> set[str]:
        """The kind's attributes plus the extension attributes of the stored
        subclasses (a ResidentialCustomer's loyaltyTier), so that filters,
        `sort` and `fields=` work on what a subclass stored. Asked of the
        store (Store.attribute_names: PostgreSQL answers from names recorded
        at write time, never reading the collection), and kept until the
        collection changes where the store can tell (TinyDB)."""
        version = self.store.version(self.kind.collection)
        cached = self._extension_names
        if version is not None and cached is not None and cached[0] == version:
            return cached[1]
        names = set(self.kind.known_attributes)
        names |= self.store.attribute_names(
            self.kind.collection, lambda declared, located: is_extension(
                {"@type": declared, "@schemaLocation": located}, self.kind))
        self._extension_names = (version, names)
        return names

    def find(self, resource_id: str) -> dict | None:
        """The stored resource, or None. A subclass may know more than the
        store (app/decisions/service.py: recorded instant answers)."""
        return self.store.get(self.kind.collection, resource_id)

    def recorded(self, resource_id: str) -> dict | None:
        """The decision-log record of an answer with this id, or None: a
        plain collection records none (app/decisions/service.py does, with
        the decision log on)."""
        return None

    def get(self, resource_id: str) -> dict:
        resource = self.store.get(self.kind.collection, resource_id)
        if resource is None:
            raise self._not_found(resource_id)
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
    def new_resource(self, body: dict, base_url: str, stored: bool = True, *,
                     text_checked: bool = False) -> dict:
        """Validated body plus the attributes the server owns (no id and href
        for a resource that will not be stored, e.g. an instant answer).
        `base_url` is RECO_PUBLIC_BASE_URL or "" (links stored relative), never
        a value from the request (app/api/tmf.py, base_url). `text_checked`:
        the body is app.jsonbody.read_json_object's, whose parse already
        refused every string no store holds, with the same 400."""
        return self.checked_new_resource(body, base_url, stored, text_checked=text_checked)[0]

    def checked_new_resource(self, body: dict, base_url: str, stored: bool = True, *,
                             text_checked: bool = False) -> tuple[dict, object]:
        """new_resource, and what the kind's validate_create read of the body
        (None without one): a caller that answers at once uses it instead of
        reading the body again. With `text_checked` the body is not walked a
        second time for unstorable text (27 µs of thread CPU for an instant
        recommendation's body, py-spy over bench/instant_inprocess.py)."""
        self.kind.refuse_server_owned(body)
        if not text_checked:
            refuse_unstorable_text(body)
        try:
            data = self.create_loader.load(body)
        except ValidationError as exc:
            raise validation_error(exc) from None
        checked = self.kind.validate_create(data, body) if self.kind.validate_create else None
        resource = self.identify({}, base_url) if stored else {}
        resource.update(data)
        resource.setdefault("@type", self.kind.type_name)
        return resource, checked

    def identify(self, resource: dict, base_url: str) -> dict:
        """Give a resource about to be stored its id and href (in place)."""
        resource_id = str(uuid.uuid4())
        resource["id"] = resource_id
        resource["href"] = f"{base_url}{self.kind.base_path}/{resource_id}"
        return resource

    def create(self, body: dict, base_url: str, *, text_checked: bool = False) -> dict:
        return self.insert(self.new_resource(body, base_url, text_checked=text_checked))

    def insert(self, resource: dict) -> dict:
        """Raises DuplicateId when the id is taken."""
        def change(current: dict | None):
            if current is not None:
                raise DuplicateId(self.kind.collection, resource["id"])
            return resource, ["CreateEvent"]

        return self._write(resource["id"], change)

    def patch(self, resource_id: str, patch: dict, *, text_checked: bool = False) -> dict:
        """Merge `patch` (RFC 7396) into the stored resource; `text_checked`
        as for new_resource (the patch is read_json_object's)."""
        owned = self.kind.server_owned + self.kind.read_only
        for name in owned:
            if name in patch:
                why = "is set by the server and " if name in self.kind.server_owned else ""
                raise TMFError(400, f"{name} {why}cannot be changed", code="NOT_PATCHABLE")
        # A stored subclass governs its patches: its @type and @schemaLocation
        # open the schema for its extension attributes without being re-sent.
        if not text_checked:
            refuse_unstorable_text(patch)
        typed = with_stored_typing(patch, self.get(resource_id))
        try:
            self.patch_schema.load(without_nulls(typed))
        except ValidationError as exc:
            raise validation_error(exc) from None
        # A null removes an attribute (RFC 7396): only one the object can have.
        unknown = unknown_deletions(self.patch_schema, typed)
        if unknown:
            raise validation_error(ValidationError(unknown))

        def change(current: dict | None):
            if current is None:
                raise self._not_found(resource_id)
            merged = merge_patch(copy.deepcopy(current), patch)
            body = {k: v for k, v in merged.items() if k not in owned}
            try:
                checked = self.create_schema.load(body)
            except ValidationError as exc:
                raise validation_error(exc, "patched resource") from None
            self._check_transition(current, merged)
            result = {k: current[k] for k in owned if k in current}
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
        is written). The change and its event record are written in ONE
        store transaction over the resource's collection and EVENTS
        (PostgreSQL: one SQL transaction; TinyDB: the journal that replaces
        both files all-or-nothing, see TinyDBStore.transactions), so an
        acknowledged change always has its event and a change that did not
        commit has none. A change whose event cannot be written is refused
        (503 EVENT_NOT_RECORDED) and nothing is stored."""
        collection = self.kind.collection
        events_collection = self.events.COLLECTION      # the bus (app.events) owns its name
        try:
            with self.store.transactions(collection, events_collection) as txns:
                tx = txns[collection]
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
                        self.kind.api, collection, resource_id,
                        [(f"{self.kind.type_name}{suffix}", self.kind.payload_name, payload)
                         for suffix in suffixes], into=txns[events_collection])
        except StoreError as exc:
            # the commit failed on the event collection's file (TinyDB names it)
            if getattr(exc, "collection", None) == events_collection:
                raise self.events.not_recorded(collection, resource_id, exc) from None
            raise
        if suffixes:
            self.events.wake()
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
