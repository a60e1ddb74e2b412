"""RFC 7386 JSON Merge Patch, the PATCH format the TMF specs list first."""
from __future__ import annotations

import copy


def merge_patch(target, patch):
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def without_nulls(patch):
    """The patch with its deletions removed, which is what must type-check."""
    if isinstance(patch, dict):
        return {key: without_nulls(value) for key, value in patch.items() if value is not None}
    return patch
