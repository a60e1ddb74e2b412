"""The admin API's fields (app/schemas/admin.py), without HTTP: strict JSON
types, one message per attribute whatever is wrong with it, the first
refused attribute in declared order, undeclared attributes ignored."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError, validate

from app.schemas.admin import (AdminArguments, Object, Text, TextList, TrueFalse, WholeNumber, first_refusal,
                               optional)


class Body(AdminArguments):
    name = Text(required=True)
    count = optional(WholeNumber, validate=validate.Range(0, 10, error="`count` must be 0 to 10"))
    flag = optional(TrueFalse)
    context = optional(Object)
    ids = optional(TextList, item_refusal="`ids` must be a list of ids (text)")


def refusal(data: dict) -> str:
    schema = Body()
    with pytest.raises(ValidationError) as caught:
        schema.load(data)
    return first_refusal(schema, caught.value.messages)


def test_valid_values_load_and_optional_ones_default_to_none():
    assert Body().load({"name": "a", "other": 1}) == {"name": "a", "count": None, "flag": None, "context": None,
                                                     "ids": None}
    assert Body().load({"name": "a", "count": 3, "flag": False, "context": {"k": [1]}, "ids": ["x"]}) == {
        "name": "a", "count": 3, "flag": False, "context": {"k": [1]}, "ids": ["x"]}


@pytest.mark.parametrize("data, message", [
    ({}, "`name` must be text"),
    ({"name": None}, "`name` must be text"),
    ({"name": 1}, "`name` must be text"),
    ({"name": "a", "count": True}, "`count` must be a whole number"),
    ({"name": "a", "count": 2.0}, "`count` must be a whole number"),
    ({"name": "a", "count": "2"}, "`count` must be a whole number"),
    ({"name": "a", "count": 11}, "`count` must be 0 to 10"),
    ({"name": "a", "flag": 1}, "`flag` must be true or false"),
    ({"name": "a", "flag": "true"}, "`flag` must be true or false"),
    ({"name": "a", "context": []}, "`context` must be an object"),
    ({"name": "a", "ids": "x"}, "`ids` must be a list"),
    ({"name": "a", "ids": ["x", 2]}, "`ids` must be a list of ids (text)"),
])
def test_each_wrong_value_is_refused_naming_its_attribute(data, message):
    assert refusal(data) == message


def test_the_first_refused_attribute_in_declared_order_is_named():
    assert refusal({"ids": 1, "flag": 1, "name": 1}) == "`name` must be text"
    assert refusal({"name": "a", "ids": 1, "flag": 1}) == "`flag` must be true or false"
