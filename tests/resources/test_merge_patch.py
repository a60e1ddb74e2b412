"""app/resources/merge_patch.py without a server: RFC 7386 JSON Merge Patch.

The cases are the RFC's own (Appendix A, "Example Test Cases"), plus what
the PATCH endpoints rely on: the target is never changed in place, and
`without_nulls` leaves exactly the part of a patch that must type-check."""
from __future__ import annotations

import copy

import pytest

from app.resources.merge_patch import merge_patch, without_nulls

# RFC 7386, Appendix A: (original, patch, result)
RFC_7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("original, patch, result", RFC_7386_APPENDIX_A)
def test_rfc_7386_appendix_a(original, patch, result):
    assert merge_patch(original, patch) == result


def test_the_target_and_the_patch_are_not_changed():
    target = {"name": "ann", "contactMedium": [{"mediumType": "email"}], "x": {"y": 1}}
    patch = {"x": {"y": None, "z": [1]}, "name": None}
    before_target, before_patch = copy.deepcopy(target), copy.deepcopy(patch)
    merged = merge_patch(target, patch)
    merged["contactMedium"][0]["mediumType"] = "phone"
    merged["x"]["z"].append(2)
    assert target == before_target and patch == before_patch


def test_without_nulls_keeps_what_must_type_check():
    patch = {"name": None, "status": "approved", "party": {"id": "p1", "role": None}, "list": [None, 1]}
    assert without_nulls(patch) == {"status": "approved", "party": {"id": "p1"}, "list": [None, 1]}
    assert without_nulls("text") == "text"
