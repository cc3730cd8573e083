"""Small readers of pglast's JSON parse tree (see the package doc for its shape)."""

from __future__ import annotations

import json

from pglast.parser import ParseError, parse_sql_json

from wireproxy.policy.facttypes import SqlParseError


def parse_pg(sql: str) -> str:
    """pglast's JSON parse tree of `sql`; SqlParseError when PostgreSQL's grammar rejects it."""
    try:
        return parse_sql_json(sql)
    except ParseError as exc:
        raise SqlParseError(str(exc.args[0]) if exc.args else str(exc)) from None
    except (ValueError, UnicodeError) as exc:
        raise SqlParseError(f"invalid SQL text: {exc}") from None



def _parse_json(text: str) -> dict:
    return json.loads(parse_pg(text))


def _unwrap(node: dict) -> tuple[str, dict]:
    (key, body), = node.items()
    return key, body


def _strings(items) -> list[str]:
    """[{"String": {"sval": "a"}}, ...] -> ["a", ...]"""
    out = []
    for item in items or ():
        if type(item) is dict and "String" in item:
            out.append(item["String"].get("sval", ""))
    return out


def _rv_name(rv: dict) -> str:
    schema = rv.get("schemaname")
    rel = rv.get("relname", "")
    return f"{schema}.{rel}" if schema else rel


# Counts every read of a constant's value. Facts whose extraction read none are the same for
# every text of the same shape (the parse tree with constants' values blanked out: see
# shape_key), so the cache can share them: pgbench's `... WHERE aid = 48213` is judged once.
# A global counter is safe even with threads: a read is never missed, at worst over-counted.
_reads = [0]
_kind_reads = [0]   # reads of a constant's kind only (NULL or not): the JSON shape keeps kinds
# The text being judged holds no constant a value-range check could fire on (keys.py,
# special_constants): those checks may then look at kinds without counting it; the facts are
# marked range_sensitive, and a text of the same normalized form gets them only when it is
# plain too (facts.extract).
_plain = [False]
_range_skips = [0]


def _range_kind_read() -> None:
    if _plain[0]:
        _range_skips[0] += 1
    else:
        _kind_reads[0] += 1


def _const(node) -> object:
    """The value of an A_Const node; raises _NotConst for anything else."""
    if type(node) is not dict or "A_Const" not in node:
        raise _NotConst
    _reads[0] += 1
    c = node["A_Const"]
    if c.get("isnull"):
        return None
    if "boolval" in c:
        return bool(c["boolval"].get("boolval", False))
    if "ival" in c:
        return int(c["ival"].get("ival", 0))
    if "fval" in c:
        return float(c["fval"].get("fval", "0"))
    if "sval" in c:
        return c["sval"].get("sval", "")
    if "bsval" in c:
        return c["bsval"].get("bsval", "")
    raise _NotConst


def _defelems(items) -> list[tuple[str, object]]:
    out = []
    for item in items or ():
        if type(item) is dict and "DefElem" in item:
            d = item["DefElem"]
            out.append((d.get("defname", ""), d.get("arg")))
    return out


def _def_bool(arg) -> bool | None:
    """PostgreSQL's defGetBoolean: no argument means true; None when it cannot tell."""
    if arg is None:
        return True
    key, body = _unwrap(arg)
    if key == "Boolean":
        return bool(body.get("boolval", False))
    if key == "Integer":
        return bool(body.get("ival", 0))
    if key == "String":
        text = body.get("sval", "").lower()
        if text in ("true", "on"):
            return True
        if text in ("false", "off"):
            return False
    return None


def _def_string(arg) -> str | None:
    if arg is None:
        return None
    key, body = _unwrap(arg)
    if key == "String":
        return body.get("sval", "")
    if key == "List":
        items = _strings(body.get("items"))
        return items[0] if items else None
    return None


def _parse_qualified(text: str) -> str | None:
    """'Public."Users"' -> 'public.Users' (a regclass literal, folded as PostgreSQL folds it)."""
    parts: list[str] = []
    buf: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        ch = text[i]
        if ch == '"':
            j = i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    return None
                if text[k + 1:k + 2] == '"':
                    buf.append(text[j:k] + '"')
                    j = k + 2
                    continue
                buf.append(text[j:k])
                i = k + 1
                break
            continue
        if ch == ".":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch.lower())
        i += 1
    parts.append("".join(buf))
    parts = [p.strip() for p in parts]
    if not all(parts):
        return None
    return ".".join(parts[-2:])



class _NotConst(Exception):
    pass

