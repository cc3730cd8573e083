"""Whole-table reads: which tables a query hands over in full, with nothing bounding the rows.

A table is read in full by a SELECT when its rows reach the result (or a copy of it) and
nothing bounds them: no LIMIT / FETCH FIRST (LIMIT ALL, LIMIT NULL and a LIMIT computed by a
subquery bound nothing), no WHERE or inner-join condition that depends on its row (a WHERE
that holds for every row, as where.py and tautology.py judge it, is no bound), and no
summary (aggregates like count(*) or sum(x), per group or not, hand over figures). An
aggregate that collects its input (array_agg, string_agg, json_agg, xmlagg, ...) and an
ARRAY(subquery) fold the whole table into one value: no bound. A bound on an outer query
bounds what it reads from subqueries, CTEs and UNION arms; subqueries in WHERE, HAVING or ON
return nothing to the client and are not reads in full. table_to_xml('t', ...) reads t in full.

What is read in full by a plain SELECT (a cursor's query, a COPY query, a DO block's SELECTs)
becomes `reads_all`; by CREATE TABLE AS, SELECT INTO, CREATE [MATERIALIZED] VIEW and
INSERT ... SELECT, `copies` (the data lands where rules on the table no longer reach it).
"""

from __future__ import annotations

from wireproxy.policy.pgfacts.acc import _TABLE_XML
from wireproxy.policy.pgfacts.consteval import _const_string
from wireproxy.policy.pgfacts.nodes import _kind_reads, _parse_qualified, _rv_name, _strings, _unwrap
from wireproxy.policy.pgfacts.where import make_truth
from wireproxy.policy.truth import every_row

_COLLECTING = frozenset({"array_agg", "string_agg", "json_agg", "jsonb_agg", "json_object_agg",
                         "jsonb_object_agg", "xmlagg", "json_agg_strict", "jsonb_agg_strict",
                         "json_object_agg_strict", "jsonb_object_agg_strict",
                         "json_object_agg_unique", "jsonb_object_agg_unique",
                         "json_object_agg_unique_strict", "jsonb_object_agg_unique_strict",
                         "range_agg", "multirange_agg"})
_COLLECTING_NODES = frozenset({"JsonArrayAgg", "JsonObjectAgg"})
_SUMMARY = frozenset({"count", "sum", "avg", "min", "max", "bool_and", "bool_or", "every",
                      "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop", "var_samp",
                      "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy", "regr_count",
                      "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
                      "regr_syy", "bit_and", "bit_or", "bit_xor", "percentile_cont",
                      "percentile_disc", "mode", "any_value", "range_intersect_agg"})


class Reads(set):
    """Tables read in full; `unless`: tables read in full if the catalog confirms the atoms
    (tautology.catalog_atom) that alone bound them (`WHERE id IS NOT NULL` on a NOT NULL id)."""

    def __init__(self):
        super().__init__()
        self.unless: dict[str, tuple] = {}


def full_reads(select: dict, scope: frozenset[str], variables: frozenset[str], bounded: bool = False) -> Reads:
    """Tables `select` (a SelectStmt body) reads in full; `bounded` when an outer query bounds it."""
    out = Reads()
    _select(select, scope, variables, bounded, out)
    return out


def record_reads(acc, reads: Reads, field: str) -> None:
    """Into the facts being collected: `field` (reads_all or copies), and what the catalog decides."""
    getattr(acc, field).update(reads)
    acc.catalog_reads.extend((field, table, atoms) for table, atoms in reads.unless.items())


def _limited(sel: dict) -> bool:
    limit = sel.get("limitCount")
    if limit is None:
        return False
    if type(limit) is dict and "A_Const" in limit:
        _kind_reads[0] += 1
        return not limit["A_Const"].get("isnull")
    return type(limit) is dict and "ParamRef" in limit


def _select(sel: dict, scope: frozenset[str], variables, bounded: bool, out: set[str]) -> None:
    if sel.get("op") not in (None, "SETOP_NONE"):
        bounded = bounded or _limited(sel)
        for arm in ("larg", "rarg"):
            if type(sel.get(arm)) is dict:
                _select(sel[arm], scope, variables, bounded, out)
        return
    # LIMIT applies after aggregation: json_agg(...) LIMIT 1 still folds every row into one
    own = not _collects(sel) and (bounded or _limited(sel) or _summary(sel))
    with_clause = sel.get("withClause")
    if type(with_clause) is dict:
        names = [c["CommonTableExpr"].get("ctename", "") for c in with_clause.get("ctes") or ()
                 if type(c) is dict and "CommonTableExpr" in c]
        inner_scope = scope | frozenset(names)
        for item in with_clause.get("ctes") or ():
            query = (item.get("CommonTableExpr") or {}).get("ctequery") if type(item) is dict else None
            if type(query) is dict and "SelectStmt" in query:
                # a CTE is bounded by what bounds the query that uses it (a WHERE on it too)
                _select(query["SelectStmt"], inner_scope, variables, own or _row_filtered(sel, None, variables), out)
        scope = inner_scope
    items = sel.get("fromClause") or []
    for item in items:
        _from_item(item, sel, items, scope, variables, own, out, ())
    _targets(sel.get("targetList") or [], scope, variables, own, out)


def _from_item(item, sel: dict, items, scope, variables, own: bool, out: set[str], on: tuple) -> None:
    if type(item) is not dict or len(item) != 1:
        return
    key, body = _unwrap(item)
    if key == "RangeVar":
        name = _rv_name(body)
        if (body.get("schemaname") or name not in scope) and not own:
            filtered = _row_filtered(sel, body, variables, items, on)
            if filtered is False:
                out.add(name)
            elif filtered is not True:
                out.unless[name] = filtered
    elif key == "RangeSubselect":
        sub = (body.get("subquery") or {}).get("SelectStmt")
        alias = {"relname": (body.get("alias") or {}).get("aliasname") or ""}
        if type(sub) is dict:
            _select(sub, scope, variables, own or _row_filtered(sel, alias, variables, items, on), out)
    elif key == "JoinExpr":
        quals = body.get("quals")
        join = body.get("jointype", "JOIN_INNER")
        left_on = on + ((quals,) if quals is not None and join in ("JOIN_INNER", "JOIN_RIGHT") else ())
        right_on = on + ((quals,) if quals is not None and join in ("JOIN_INNER", "JOIN_LEFT") else ())
        _from_item(body.get("larg"), sel, items, scope, variables, own, out, left_on)
        _from_item(body.get("rarg"), sel, items, scope, variables, own, out, right_on)
    elif key == "RangeFunction":
        _targets(body.get("functions") or [], scope, variables, own, out)


def _row_filtered(sel: dict, rv: dict | None, variables, items=(), on: tuple = ()) -> bool | tuple:
    """Does the WHERE (and the ON of inner joins over it) depend on the rows of `rv`? True,
    False, or the catalog atoms that would make it hold for every row (then it is no bound)."""
    conditions = [c for c in (sel.get("whereClause"), *on) if c is not None]
    if not conditions:
        return False
    if rv is None:   # a CTE: any row-dependent condition of the outer query
        return True
    others = [i for i in items if not (type(i) is dict and i.get("RangeVar") is rv)]
    truth = make_truth(rv, others, variables)
    truth.assume_ranges = True   # `id > -2147483649` reads every integer row
    if all(every_row(truth.truth(c)) for c in conditions):
        return False
    if not truth.atoms:
        return True
    assuming = make_truth(rv, others, variables)
    assuming.assume_atoms = True
    if all(every_row(assuming.truth(c)) for c in conditions):
        return tuple(sorted(assuming.atoms))
    return True


def _summary(sel: dict) -> bool:
    """Figures, not rows: aggregates (per group too: what BI tools send), nothing collecting,
    no window function (a window keeps every row)."""
    found = False
    stack: list = list(sel.get("targetList") or [])
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            if "SubLink" in v and len(v) == 1:
                continue
            if len(v) == 1 and next(iter(v)) in _COLLECTING_NODES:
                return False
            call = v.get("FuncCall") if len(v) == 1 else None
            if type(call) is dict:
                name = (_strings(call.get("funcname")) or [""])[-1]
                if call.get("over") is not None or name in _COLLECTING:
                    return False
                if name in _SUMMARY or call.get("agg_star"):
                    found = True
            stack.extend(x for x in v.values() if type(x) in (dict, list))
    return found


def _collects(sel: dict) -> bool:
    """A collecting aggregate in the result columns (not inside a subquery of them)."""
    stack: list = list(sel.get("targetList") or [])
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            if len(v) == 1:
                key = next(iter(v))
                if key == "SubLink":
                    continue
                if key in _COLLECTING_NODES:
                    return True
                if key == "FuncCall" and (_strings(v[key].get("funcname")) or [""])[-1] in _COLLECTING:
                    return True
            stack.extend(x for x in v.values() if type(x) in (dict, list))
    return False


def _targets(targets, scope, variables, own: bool, out: set[str]) -> None:
    """Subqueries and export functions in the result columns: their data reaches the client."""
    stack: list = list(targets)
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(v)
            continue
        if type(v) is not dict:
            continue
        if len(v) == 1 and "SubLink" in v:
            link = v["SubLink"]
            sub = (link.get("subselect") or {}).get("SelectStmt")
            if type(sub) is dict and link.get("subLinkType") in ("EXPR_SUBLINK", "ARRAY_SUBLINK"):
                _select(sub, scope, variables, False, out)
            continue
        call = v.get("FuncCall") if len(v) == 1 else None
        if type(call) is dict:
            name = (_strings(call.get("funcname")) or [""])[-1]
            args = call.get("args") or []
            if name in _TABLE_XML and args:
                text = _const_string(args[0])
                table = _parse_qualified(text) if text is not None else None
                if table:
                    out.add(table)
        stack.extend(x for x in v.values() if type(x) in (dict, list))
