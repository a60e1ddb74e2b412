"""Marshmallow schemas generated from the official TMF Swagger definitions.

Hand-copying 150 definitions would drift from the contract; generating them
keeps validation, parsing and the served OpenAPI document equal to the spec.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, validate

from ..timeutil import DateTimeOutOfRange, parse_datetime

SPEC_DIR = Path(__file__).resolve().parent.parent / "spec"


class TmfSchema(Schema):
    """Strict by default, open for TMF polymorphism.

    An object whose `@type` names a subclass (anything but this definition's
    own type) or that carries `@schemaLocation` may hold extension attributes;
    anything else with an unknown attribute is a typo and fails.
    """

    tmf_types: frozenset[str] = frozenset()
    #: False for definitions that are no TMF entity (the hub's
    #: EventSubscriptionInput): no @type/@schemaLocation extension there.
    polymorphic: bool = True
    #: JSON Schema constraints across attributes that the service checks in
    #: its own code (e.g. which @type a salesLead with a recommendation has);
    #: the served document adds them (app/api/tmf.py, _TmfConverter).
    document_constraints: tuple[dict, ...] = ()

    class Meta:
        unknown = RAISE

    def is_extension(self, data: Mapping) -> bool:
        """May `data` (an object of this definition) hold extension
        attributes? (is_extension_of, when the definition is polymorphic)"""
        return self.polymorphic and is_extension_of(data, self.tmf_types)

    def _deserialize(self, data, *, error_store, many=False, partial=None,
                     unknown=RAISE, index=None):
        if not many and isinstance(data, Mapping) and self.is_extension(data):
            unknown = INCLUDE
        return super()._deserialize(data, error_store=error_store, many=many,
                                    partial=partial, unknown=unknown, index=index)


def is_extension_of(data: Mapping, own_types: frozenset[str]) -> bool:
    """Is `data` a TMF subclass of a type named by `own_types` (lower case),
    so that it may hold attributes the type does not define: it carries a
    non-empty @schemaLocation, or its @type names another type (compared
    case-insensitively)? TMF630 part 2, polymorphism and extension; the
    PostgreSQL store's attribute index repeats the @schemaLocation test in
    SQL (migration 0002)."""
    if data.get("@schemaLocation"):
        return True
    declared = data.get("@type")
    return isinstance(declared, str) and declared.lower() not in own_types


class DateTimeString(fields.String):
    """Keeps the client's text but insists that it is a date-time."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment = parse_datetime(text)
        except DateTimeOutOfRange as exc:
            raise ValidationError(str(exc)) from None
        if moment is None:
            raise ValidationError("Not a valid ISO 8601 date-time.")
        return text


class OneOrMany(fields.List):
    """An array that also takes a single object, as the TMF680 user guide's
    samples send `channel` and `shoppingCart`; stored as the spec's array.
    A single object's errors are its own (`channel.id`), not those of an
    array item 0 the client never sent (`channel.0.id`)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, Mapping):
            return super()._deserialize(value, attr, data, **kwargs)
        try:
            return super()._deserialize([value], attr, data, **kwargs)
        except ValidationError as error:
            if isinstance(error.messages, dict) and set(error.messages) == {0}:
                raise ValidationError(error.messages[0]) from None
            raise


class SpecSchemas:
    """All definitions of one Swagger document as TmfSchema classes."""

    #: Definitions of the TMF630 notification pattern, not TMF entities.
    NOT_POLYMORPHIC = ("EventSubscription", "EventSubscriptionInput")

    def __init__(self, spec_file: str, prefix: str, required_overrides: dict | None = None,
                 added_properties: dict | None = None, removed_properties: dict | None = None,
                 added_definitions: dict | None = None):
        """`required_overrides`, `added_properties`, `removed_properties` and
        `added_definitions` correct the spec where its own user guide or this
        service's contract contradicts it; each use says why at the call site."""
        self.spec = json.loads((SPEC_DIR / spec_file).read_text(encoding="utf-8"))
        self.definitions: dict = self.spec["definitions"]
        self.definitions.update(added_definitions or {})
        for name, extra in (added_properties or {}).items():
            self.definitions[name].setdefault("properties", {}).update(extra)
        for name, removed in (removed_properties or {}).items():
            for prop in removed:
                self.definitions[name].get("properties", {}).pop(prop, None)
        self.prefix = prefix
        self.required_overrides = required_overrides or {}
        # The class of a definition is built when it is first asked for (by
        # an API module, or a Nested field of a class in use), not here: a
        # spec has 30-110 definitions and the service uses fewer; building
        # all 318 at import cost create_app 0.04 s of its 0.49 s of CPU
        # (medians of 7, load 20), in every worker and `flask` command.
        #: the classes built so far, by definition name
        self.classes: dict[str, type[TmfSchema]] = {}
        self._building = threading.Lock()   # one class per name, whichever thread asks first

    def __getitem__(self, name: str) -> type[TmfSchema]:
        """The schema class of definition `name` (KeyError: no such object definition)."""
        built = self.classes.get(name)
        if built is not None:
            return built
        definition = self.definitions[name]
        if not (definition.get("type") == "object" or "properties" in definition):
            raise KeyError(name)
        with self._building:
            built = self.classes.get(name)
            if built is None:
                built = self.classes[name] = self._build(name, definition)
        return built

    def properties(self, name: str) -> dict:
        return self.definitions[name].get("properties", {})

    def _build(self, name: str, definition: dict) -> type[TmfSchema]:
        required = set(self.required_overrides.get(name, definition.get("required", [])))
        attrs = {}
        for prop, prop_def in definition.get("properties", {}).items():
            field = self._field(prop_def, required=prop in required)
            if field is not None:
                attrs[prop] = field
        base = name.split("_")[0]
        attrs["tmf_types"] = frozenset({name.lower(), base.lower()})
        attrs["polymorphic"] = (name not in self.NOT_POLYMORPHIC
                                and definition.get("additionalProperties") is not False)
        attrs["__doc__"] = definition.get("description", name)
        return type(f"{self.prefix}_{name}", (TmfSchema,), attrs)

    def _field(self, prop: dict, required: bool = False, inner: bool = False):
        kwargs = {"required": required} if not inner else {}
        if prop.get("description"):
            kwargs["metadata"] = {"description": prop["description"]}
        if "$ref" in prop:
            target = prop["$ref"].rsplit("/", 1)[-1]
            target_def = self.definitions.get(target, {})
            if "enum" in target_def:
                choices = [value.strip() for value in target_def["enum"]]
                return fields.String(validate=validate.OneOf(choices), **kwargs)
            if not target_def:  # "Any"
                return fields.Raw(allow_none=True, **kwargs)
            return fields.Nested(lambda target=target: self[target](), **kwargs)
        kind = prop.get("type")
        if kind == "array":
            item = self._field(prop.get("items", {}), inner=True)
            if "$ref" in prop.get("items", {}) and isinstance(item, fields.Nested):
                return OneOrMany(item, **kwargs)
            return fields.List(item, **kwargs)
        if kind == "string":
            if prop.get("format") == "date-time":
                return DateTimeString(**kwargs)
            if "enum" in prop:
                return fields.String(validate=validate.OneOf(prop["enum"]), **kwargs)
            if "minLength" in prop:
                return fields.String(validate=validate.Length(min=prop["minLength"]), **kwargs)
            return fields.String(**kwargs)
        if kind == "integer":
            return fields.Integer(strict=True, **kwargs)
        if kind == "number":
            return fields.Float(allow_nan=False, **kwargs)
        if kind == "boolean":
            return fields.Boolean(**kwargs)
        if kind == "object":
            return fields.Dict(**kwargs)
        return fields.Raw(allow_none=True, **kwargs)
