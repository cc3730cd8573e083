"""Handlers of statements that read, write and run data: SELECT, DML, COPY, EXPLAIN, PREPARE..."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wireproxy.policy.pgfacts.acc import _Acc
from wireproxy.policy.pgfacts.bounds import full_reads, record_reads
from wireproxy.policy.pgfacts.nodes import _defelems, _def_bool, _kind_reads, _rv_name, _unwrap
from wireproxy.policy.pgfacts.where import condition_truth, make_truth
from wireproxy.policy.truth import TRUE, every_row, t_and

if TYPE_CHECKING:
    from wireproxy.policy.pgfacts.walker import _Extractor

def _h_select(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    into = b.get("intoClause")
    if type(into) is dict and type(into.get("rel")) is dict:
        ex.target(into["rel"], acc)
    limit = b.get("limitCount")
    if limit is not None:  # LIMIT ALL is a NULL constant (its null-ness is part of the shape)
        if type(limit) is dict and "A_Const" in limit:
            _kind_reads[0] += 1
            acc.has_limit = not limit["A_Const"].get("isnull")
        else:
            acc.has_limit = True
    record_reads(acc, full_reads(b, scope, ex.vars), "reads_all" if acc.kind == "select" else "copies")
    ex.walk(b, acc, scope)


def _h_update_delete(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation") or {}
    if acc.kind == "update" and rv.get("relname") == "pg_settings" and rv.get("schemaname") in (None, "pg_catalog"):
        acc.flags.update(("set_role", "search_path"))  # UPDATE pg_settings calls set_config
    where = b.get("whereClause")
    if where is not None:
        acc.has_where = True
        items = b.get("usingClause") or b.get("fromClause") or []
        truth, checks, atoms = condition_truth(rv, items, ex.vars, where)
        acc.taut = every_row(truth)
        acc.where_checks.update(checks)
        acc.where_catalog = atoms
    ex.walk(b, acc, scope)


def _h_merge(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation") or {}
    name = _rv_name(rv)
    join = b.get("joinCondition")
    truth = make_truth(rv, [b.get("sourceRelation")], ex.vars, joined=join)
    join_truth = truth.truth(join) if join is not None else TRUE
    for item in b.get("mergeWhenClauses") or ():
        clause = item.get("MergeWhenClause") or {}
        kind = {"CMD_UPDATE": "update", "CMD_DELETE": "delete", "CMD_INSERT": "insert"}.get(clause.get("commandType"))
        if kind is None:
            continue
        action = _Acc(kind, "MERGE action")
        ex.out.append(action)
        action.targets.add(name)
        action.tables.add(name)
        if kind == "insert":
            continue
        cond = clause.get("condition")
        cond_truth = truth.truth(cond) if cond is not None else None
        if clause.get("matchKind") == "MERGE_WHEN_MATCHED":
            action.has_where = True
            action.taut = every_row(join_truth if cond_truth is None else t_and(join_truth, cond_truth))
        else:  # NOT MATCHED BY SOURCE: every target row the source does not match
            action.has_where = cond is not None
            action.taut = cond_truth is not None and every_row(cond_truth)
        if action.taut:
            action.where_checks.update(truth.used)
    ex.walk(b, acc, scope, via="MERGE")


def _h_insert(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    _copied_query(ex, b.get("selectStmt"), acc, scope, b.get("withClause"))
    ex.walk(b, acc, scope)


def _copied_query(ex: _Extractor, query, acc: _Acc, scope, with_clause=None) -> None:
    """INSERT ... SELECT, CREATE TABLE AS, CREATE VIEW: what the query reads in full is copied
    (`with_clause`: the CTEs of an INSERT, which its query reads)."""
    if type(query) is dict and type(query.get("SelectStmt")) is dict:
        select = query["SelectStmt"]
        if type(with_clause) is dict and "withClause" not in select:
            select = {**select, "withClause": with_clause}
        record_reads(acc, full_reads(select, scope, ex.vars), "copies")


def _h_view(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    _copied_query(ex, b.get("query"), acc, scope)
    ex.walk(b, acc, scope)


def _h_copy(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("is_program"):
        acc.flags.add("copy_program")
    elif b.get("filename") is not None:
        acc.flags.add("copy_file")
    ex.walk(b, acc, scope, via="COPY query")



def _h_explain(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    analyze = False
    for name, arg in _defelems(b.get("options")):
        if name.lower() in ("analyze", "analyse") and _def_bool(arg) is not False:
            analyze = True  # unreadable values count as true: fail closed
    query = b.get("query")
    if type(query) is dict and len(query) == 1:
        key, body = _unwrap(query)
        if analyze:   # the plan is returned, the rows are not
            quiet, ex.quiet = ex.quiet, True
            try:
                ex.statement(key, body, "EXPLAIN ANALYZE", scope)
            finally:
                ex.quiet = quiet
        else:
            ex.walk(query, acc, scope, nest=False)


def _h_prepare(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("name") or ""
    _named_query(ex, b, acc, scope, f"PREPARE {acc.name}")


def _named_query(ex: _Extractor, b: dict, acc: _Acc, scope, via: str) -> None:
    """PREPARE and DECLARE: the query they name is judged as a statement of its own."""
    query = b.get("query")
    if type(query) is dict and len(query) == 1:
        key, body = _unwrap(query)
        start = len(ex.out)
        ex.statement(key, body, via, scope)
        acc.inner = [a for a in ex.out[start:]]
    ex.walk(b, acc, scope, skip=("query",))


def _h_declare(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("portalname") or ""
    acc.flags.add("cursor")
    _named_query(ex, b, acc, scope, f"DECLARE {acc.name}")


def _h_fetch(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("portalname") or ""
    acc.flags.add("fetch")


def _h_execute(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.name = b.get("name") or ""
    ex.walk(b, acc, scope)


def _h_deallocate(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("deallocate")
    acc.name = None if b.get("isall") else (b.get("name") or "")


def _h_discard(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("target") == "DISCARD_ALL":
        acc.flags.add("deallocate")


def _h_create_table_as(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    into = b.get("into") or {}
    if type(into.get("rel")) is dict:
        ex.target(into["rel"], acc)
    _copied_query(ex, b.get("query"), acc, scope)
    ex.walk(b, acc, scope, via="CREATE TABLE AS")


def _h_call(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    call = b.get("funccall")
    if type(call) is dict:
        ex.funccall(call, acc)
    ex.walk(b, acc, scope)


HANDLERS = {
    "SelectStmt": _h_select,
    "InsertStmt": _h_insert,
    "ViewStmt": _h_view,
    "UpdateStmt": _h_update_delete,
    "DeleteStmt": _h_update_delete,
    "MergeStmt": _h_merge,
    "CopyStmt": _h_copy,
    "ExplainStmt": _h_explain,
    "PrepareStmt": _h_prepare,
    "ExecuteStmt": _h_execute,
    "DeallocateStmt": _h_deallocate,
    "DiscardStmt": _h_discard,
    "DeclareCursorStmt": _h_declare,
    "FetchStmt": _h_fetch,
    "CreateTableAsStmt": _h_create_table_as,
    "CallStmt": _h_call,
}
