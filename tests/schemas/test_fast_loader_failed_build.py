"""A FastLoader whose struct or shape fails to build (app/schemas/fast.py)
leaves nothing half-built behind in the tables every loader of the process
shares: a later loader of the same schema gets the complete struct and
shape, or the same failure (marshmallow only), never a partial one.

A partial shape is a silent wrong answer: the outer object's shape without
its nested part skips the nested objects' checks, so the fast path keeps
an attribute marshmallow refuses, or drops one marshmallow keeps. A partial
struct table (a struct naming one that was never defined) costs the fast
path of that schema for the rest of the process."""
from __future__ import annotations

import pytest
from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, missing

from app.schemas import fast
from app.schemas.fast import FastLoader


@pytest.fixture(autouse=True)
def generator(monkeypatch):
    """A fresh struct generator and shape table, as in a new process."""
    fresh = fast._Generator()
    monkeypatch.setattr(fast, "_GENERATOR", fresh)
    monkeypatch.setattr(fast, "_SHAPES", {})
    return fresh


def nesting():
    """(Outer, Inner): Outer nests Inner; each refuses unknown attributes."""
    class Inner(Schema):
        name = fields.String(required=True)

    class Outer(Schema):
        id = fields.String(required=True)
        inner = fields.Nested(Inner)

    return Outer, Inner


def test_a_nested_shape_that_cannot_be_built_leaves_no_outer_shape():
    Outer, Inner = nesting()
    Inner.opts.unknown = INCLUDE            # the lenient pass cannot stand for it
    shapes = {}
    with pytest.raises(TypeError, match="Inner does not refuse"):
        fast._shape(Outer, shapes)
    assert shapes == {}
    with pytest.raises(TypeError, match="Inner does not refuse"):
        fast._shape(Outer, shapes)          # the same error, not the partial shape


def test_a_second_loader_is_unsure_where_the_first_was():
    """Inner keeps the attributes it does not declare (INCLUDE): no shape,
    so marshmallow answers; a second loader must not take the fast path
    with the outer shape alone (it would drop `extra`)."""
    Outer, Inner = nesting()
    Inner.opts.unknown = INCLUDE
    body = {"id": "o1", "inner": {"name": "n", "extra": 1}}
    expected = Outer().load(body)
    assert expected["inner"]["extra"] == 1
    for _ in range(2):
        loader = FastLoader(Outer())
        assert loader.decode(body) is None
        assert loader.load(body) == expected


def test_a_shape_that_failed_once_is_complete_the_second_time():
    """The nested shape fails on the first build only; the second loader
    then checks the nested object: a name Inner does not declare is refused
    as marshmallow refuses it, not silently dropped."""
    Outer, Inner = nesting()
    Inner.opts.unknown = INCLUDE
    assert FastLoader(Outer()).decode({"id": "o1"}) is None     # the failed build
    Inner.opts.unknown = RAISE
    loader = FastLoader(Outer())
    assert loader.decode({"id": "o1", "inner": {"name": "n"}}) == {"id": "o1", "inner": {"name": "n"}}
    typo = {"id": "o1", "inner": {"name": "n", "nmae": "n"}}
    assert loader.decode(typo) is None
    with pytest.raises(ValidationError) as refused:
        loader.load(typo)
    assert refused.value.messages == {"inner": {"nmae": ["Unknown field."]}}
    shape = fast._SHAPES[Outer]
    assert [(key, child.known, how) for key, child, how in shape.nested] == \
        [("inner", frozenset({"name"}), "one")]


def test_a_struct_that_failed_once_does_not_strand_the_structs_built_on_the_way():
    """Node nests Leaf, which nests Node back; Node's struct fails (a load
    default) after Leaf's, which names Node's, was built. Once the default
    is gone, both get the fast path."""
    class Node(Schema):
        leaf = fields.Nested(lambda: Leaf())
        label = fields.String(load_default="none")

    class Leaf(Schema):
        name = fields.String(required=True)
        node = fields.Nested(Node)

    assert FastLoader(Node()).decode({"label": "x"}) is None       # the failed build
    Node._declared_fields["label"].load_default = missing
    body = {"name": "l", "node": {"label": "x", "leaf": {"name": "m"}}}
    assert FastLoader(Leaf()).decode(body) == Leaf().load(body)
    assert FastLoader(Node()).decode(body["node"]) == Node().load(body["node"])
    assert FastLoader(Node()).decode({"label": "x", "leaf": {"name": "m", "x": 1}}) is None
