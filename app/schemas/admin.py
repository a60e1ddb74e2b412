"""Fields and the base schema of the admin API's arguments (/admin/rules,
/admin/experiments): marshmallow schemas that flask-smorest parses each
request's body and query with and documents in the OpenAPI document.

Strict like the JSON that the Rule Studio and scripts send, not lenient
like a form: a text is a JSON string, a whole number a JSON integer (not
`"5"`, `2.5` or `true`), a flag `true` or `false` (not `"no"` or `0`), so
that what the document states is what is refused. Each field refuses with
one plain message naming its attribute: "`text` must be text", the same
whether it is missing, null or of another type; the API answers the first
refused attribute, in the order the schema declares them, as a 400 TMF
Error (app/api/admin_arguments.py, INVALID_BODY or INVALID_QUERY).

Attributes a schema does not declare are ignored (EXCLUDE), as the admin
API has always done: the Studio may send more than an endpoint reads."""
from __future__ import annotations

import typing

from marshmallow import EXCLUDE, INCLUDE, Schema, fields

#: the error keys a field may raise for a value of the wrong kind
_WRONG_VALUE = ("required", "null", "invalid")


class _Refusing:
    """A field whose refusal names its attribute: "`<name>` must be <what>"
    (or `refusal`), for a value that is missing (when required), null (when
    not nullable) or of another type. Messages given in `error_messages`
    (e.g. a range's) stay as given."""

    what = "valid"

    def __init__(self, *args, refusal: str | None = None, **kwargs):
        self._given_messages = set(kwargs.get("error_messages") or ())
        self.refusal = refusal
        super().__init__(*args, **kwargs)

    def _bind_to_schema(self, field_name, parent):
        super()._bind_to_schema(field_name, parent)
        message = self.refusal or f"`{self.data_key or self.name}` must be {self.what}"
        for key in _WRONG_VALUE:
            if key not in self._given_messages:
                self.error_messages[key] = message


class Text(_Refusing, fields.String):
    """A JSON string."""

    what = "text"


class WholeNumber(_Refusing, fields.Integer):
    """A JSON integer: not a float (2.5, and 2.0, which JSON tells apart),
    a string or a boolean (Python's bool is an int)."""

    what = "a whole number"

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: typing.Any) -> int:
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return super()._validated(value)


class TrueFalse(_Refusing, fields.Boolean):
    """A JSON `true` or `false`, nothing that merely reads as one."""

    what = "true or false"

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Object(_Refusing, fields.Dict):
    """A JSON object."""

    what = "an object"


class TextList(_Refusing, fields.List):
    """A JSON array of strings; `item_refusal` for an item that is not one."""

    what = "a list"

    def __init__(self, *, item_refusal: str, **kwargs):
        super().__init__(Text(refusal=item_refusal), **kwargs)


def optional(field_class, **kwargs):
    """An attribute that may be left out or null (then None)."""
    return field_class(load_default=None, allow_none=True, **kwargs)


def first_refusal(schema: Schema, messages: dict) -> str:
    """The message of the first refused attribute in `schema`'s declared
    order (marshmallow collects every attribute's messages; an answer names
    one), `messages` as ValidationError.messages holds them: {attribute:
    [message] or {item index: [message]}}."""
    for name, field in schema.fields.items():
        key = field.data_key or name
        if key in messages:
            return _first(messages[key])
    return _first(messages)


def _first(node) -> str:
    while isinstance(node, (dict, list)) and node:
        node = next(iter(node.values())) if isinstance(node, dict) else node[0]
    return str(node)


class AdminArguments(Schema):
    """Base of the admin API's argument schemas: undeclared attributes are
    ignored (see the module's docstring)."""

    #: True: an empty request body reads as {} (app/api/admin_arguments.py)
    body_optional = False

    class Meta:
        unknown = EXCLUDE


class AdminAnswer(Schema):
    """Base of the admin API's answer schemas, which document the answers
    (the views build and send them; smorest passes a Response through
    unchanged). Answers may carry more than a schema lists (a newer
    service's additions): a client ignores what it does not know."""

    class Meta:
        unknown = INCLUDE      # documented as additionalProperties: true
