"""Translation of :class:`app.store.query.Query` into SQL over ``jsonb``.

Every document is one row of ``documents(collection, id, seq, doc jsonb)``
(see the migrations).  Paths become SQL/JSON path expressions in lax mode
(PostgreSQL 15 manual, 9.16.2): ``$."relatedParty"."id"[*]`` reaches every
value the Python evaluator's :func:`app.store.query.values_at` reaches,
because lax mode unwraps arrays for member accessors and ``[*]`` unwraps (or
wraps) the last step.

* string, number, boolean and ``any`` filters are a ``jsonb @? jsonpath``
  predicate with the value as a literal inside the path (JSON string syntax
  is valid jsonpath string syntax); ``@?`` is served by the GIN
  ``jsonb_path_ops`` index for equality.  Strings compare by code point
  in jsonpath, as Python's ``str`` does.
* date-time filters and sort keys read the value through
  ``reco_instant(text)``, a SQL function that answers NULL for anything that
  is not a date-time, so a stored value never makes a query fail.

Everything client-supplied is passed as a bind parameter, never spliced
into the SQL text.
"""
from __future__ import annotations

import json
from datetime import timezone
from decimal import Decimal

from ..exactnumbers import literal as number_literal
from .query import CountBy, Filter, Query, SortKey, any_alternatives

_JSONPATH_OP = {"eq": "==", "ne": "==", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_SQL_OP = {"eq": "=", "ne": "=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def jsonpath(path) -> str:
    """``$."a"."b"[*]``: every value reached by the dotted ``path``."""
    return "$" + "".join("." + json.dumps(step) for step in path) + "[*]"


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return number_literal(value)     # exact, never through a double
    return json.dumps(str(value))


def _type_guard(kind: str) -> str:
    return {"string": "@.type() == \"string\"", "number": "@.type() == \"number\"",
            "boolean": "@.type() == \"boolean\""}.get(kind, "")


def filter_sql(flt: Filter) -> tuple[str, list]:
    """A SQL boolean expression over ``doc`` and its parameters."""
    op = _JSONPATH_OP[flt.op]
    if flt.kind == "datetime":
        sql_op = _SQL_OP[flt.op]
        clause = ("EXISTS (SELECT 1 FROM jsonb_path_query(doc, %s::jsonpath) AS v "
                  f"WHERE reco_instant(v) {sql_op} ANY(%s::timestamptz[]))")
        params = [jsonpath(flt.path), [v.astimezone(timezone.utc) for v in flt.values]]
        return (f"NOT {clause}" if flt.op == "ne" else clause), params
    if flt.kind == "any":
        wanted = [alt for v in flt.values for alt in any_alternatives(str(v))]
    else:
        wanted = list(flt.values)
    # jsonb holds no NUL character, so a value with one matches nothing
    wanted = [w for w in wanted if not (isinstance(w, str) and "\x00" in w)]
    if not wanted:  # nothing can match (a jsonpath filter cannot be a bare `false`)
        return ("TRUE" if flt.op == "ne" else "FALSE"), []
    guard = _type_guard(flt.kind)
    tests = " || ".join(f"@ {op} {_literal(w)}" for w in wanted)
    predicate = f"({guard}) && ({tests})" if guard else tests
    expression = f"{jsonpath(flt.path)} ? ({predicate})"
    clause = "doc @? %s::jsonpath"
    return (f"NOT ({clause})" if flt.op == "ne" else clause), [expression]


def sort_sql(key: SortKey) -> tuple[str, list]:
    """An ORDER BY item (NULLs, i.e. absent values, always last)."""
    first = "jsonb_path_query_first(doc, %s::jsonpath)"
    if key.kind == "datetime":
        expr = f"reco_instant({first})"
    elif key.kind == "number":
        expr = (f"(SELECT CASE WHEN jsonb_typeof(v) = 'number' THEN (v #>> '{{}}')::numeric END "
                f"FROM (SELECT {first} AS v) AS f)")
    elif key.kind == "boolean":
        expr = (f"(SELECT CASE WHEN jsonb_typeof(v) = 'boolean' THEN (v #>> '{{}}')::boolean END "
                f"FROM (SELECT {first} AS v) AS f)")
    elif key.kind == "string":
        expr = (f"(SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{{}}' END "
                f"FROM (SELECT {first} AS v) AS f) COLLATE \"C\"")
    else:  # any: the text of a scalar
        expr = (f"(SELECT CASE WHEN jsonb_typeof(v) IN ('string', 'number', 'boolean') "
                f"THEN v #>> '{{}}' END FROM (SELECT {first} AS v) AS f) COLLATE \"C\"")
    direction = "DESC" if key.descending else "ASC"
    return f"{expr} {direction} NULLS LAST", [jsonpath(key.path)]


def where_sql(collection: str, filters) -> tuple[str, list]:
    clauses, params = ["collection = %s"], [collection]
    for flt in filters:
        sql, more = filter_sql(flt)
        clauses.append(sql)
        params.extend(more)
    return " AND ".join(clauses), params


def select_sql(collection: str, query: Query) -> tuple[str, list]:
    """``SELECT doc, count(*) OVER ()``: the page and the total in one
    statement (the window count is computed before LIMIT/OFFSET)."""
    where, params = where_sql(collection, query.filters)
    order, order_params = [], []
    for key in query.sort:
        sql, more = sort_sql(key)
        order.append(sql)
        order_params.extend(more)
    order.append("seq")
    sql = (f"SELECT doc, count(*) OVER () FROM documents WHERE {where} "
           f"ORDER BY {', '.join(order)}")
    params = params + order_params
    if query.limit is not None:
        sql += " LIMIT %s"
        params.append(query.limit)
    if query.offset:
        sql += " OFFSET %s"
        params.append(query.offset)
    return sql, params


def count_sql(collection: str, count: CountBy) -> tuple[str, list]:
    """:class:`CountBy` as one ``GROUP BY`` statement: the elements come
    from ``jsonb_path_query`` (lax mode descends into arrays as
    :func:`values_at` does), each key is a ``LEFT JOIN LATERAL`` over the
    values it reaches (NULL when there is none), and an element that
    reaches one value twice counts once (the distinct rows of document id,
    element position and key values are counted)."""
    each = tuple(count.each)
    sources = ["documents"]
    params: list = []
    counted = "documents.id AS document"
    if each:
        sources.append("CROSS JOIN LATERAL jsonb_path_query(doc, %s::jsonpath) "
                       "WITH ORDINALITY AS element(value, position)")
        params.append(jsonpath(each))
        counted = "documents.id AS document, element.position"
    columns = []
    for number, key in enumerate(count.keys):
        key = tuple(key)
        inner = each and key[:len(each)] == each
        source = "element.value" if inner else "doc"
        sources.append(f"LEFT JOIN LATERAL jsonb_path_query({source}, %s::jsonpath) "
                       f"AS k{number}(value) ON true")
        params.append(jsonpath(key[len(each):] if inner else key))
        columns.append(f"k{number}.value")
    where, where_params = where_sql(collection, count.filters)
    keys = ", ".join(f"k{n}" for n in range(len(columns)))
    # the distinct (element, key values) first, then the groups
    inner = ", ".join([counted.strip("()")] + [f"{column} AS k{n}" for n, column in enumerate(columns)])
    sql = (f"SELECT {keys + ', ' if keys else ''}count(*) FROM (SELECT DISTINCT {inner} "
           f"FROM {' '.join(sources)} WHERE {where}) AS counted"
           + (f" GROUP BY {keys}" if keys else ""))
    return sql, params + where_params
