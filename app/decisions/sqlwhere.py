"""The optional filters of the decision log's SQL reads (the funnel and the
recorded answers): each a condition with one ``%s`` placeholder, kept only
when its value is given."""
from __future__ import annotations


def conditions(*pairs: tuple[str, object]) -> tuple[list[str], list]:
    """(condition, value) pairs -> (the conditions, their parameters) of the
    pairs whose value is not None, in order: ``conditions(("a >= %s", 1),
    ("b = %s", None))`` is ``(["a >= %s"], [1])``."""
    kept = [(sql, value) for sql, value in pairs if value is not None]
    return [sql for sql, _ in kept], [value for _, value in kept]
