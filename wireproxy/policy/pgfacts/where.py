"""WHERE analysis: does a condition hold for every row, none, or depend on the row?"""

from __future__ import annotations

from wireproxy.policy.pgfacts.consteval import _ConstEval, _const_string
from wireproxy.policy.pgfacts.nodes import _NotConst, _reads, _strings, _unwrap
from wireproxy.policy.pgfacts.tautology import (
    between_truth, catalog_atom, constant_sublink, joins_itself, range_truth, self_join_truth, sublink_truth)
from wireproxy.policy.truth import CONST, FALSE, NULL, ROW, TRUE, every_row, of_value, t_and, t_is, t_not, t_or


class _Truth:
    """Sorts a WHERE condition into an outcome of policy.truth (TRUE, FALSE, NULL, CONST, ROW...)."""

    def __init__(self, quals: set[str], other_cols: set[str], variables: frozenset[str], *,
                 target: tuple[str | None, str] | None = None, self_aliases: frozenset[str] = frozenset(),
                 extended: bool = True):
        self.quals = quals
        self.other_cols = other_cols
        self.vars = variables
        self.target = target                # (schema, name) of the table the condition filters
        self.self_aliases = self_aliases    # other scans of that same table (USING t AS t2)
        self.extended = extended            # the checks of tautology.py (EXTENDED_CHECKS)
        self.used: set[str] = set()         # ... and which of them made a condition every-row
        self.atoms: set[tuple] = set()      # catalog atoms met (tautology.catalog_atom)
        self.assume_atoms = False           # second pass: take every catalog atom as confirmed
        self.assume_ranges = False          # reads: a bound past the int4 range bounds nothing

    def _column_is_row(self, fields: list) -> bool:
        names = [f["String"].get("sval", "") if "String" in f else "*" for f in fields]
        if len(names) == 1:
            name = names[0]
            return name not in self.vars and name not in self.other_cols
        # another scan of the target table (USING t AS t2) joined to it is the same row's data
        return self._is_target(names) or (len(names) == 2 and names[0] in self.self_aliases)

    def _is_target(self, names: list[str]) -> bool:
        """Is `names[:-1]` (a column's qualifier) the target table: `t`, `alias`, `s.t`?"""
        return ".".join(names[:-1]) in self.quals or (len(names) > 2 and names[-2] in self.quals)

    def depends_on_row(self, node) -> bool:
        stack = [node]
        while stack:
            v = stack.pop()
            if type(v) is list:
                stack.extend(v)
            elif type(v) is dict:
                if len(v) == 1:
                    if "ColumnRef" in v:
                        if self._column_is_row(v["ColumnRef"].get("fields") or []):
                            return True
                        continue
                    if "CurrentOfExpr" in v:
                        return True
                stack.extend(x for x in v.values() if type(x) in (dict, list))
        return False

    def canon(self, v, values: bool = True):
        """A comparable form of an expression: positions dropped, the target's own qualifier
        dropped from its columns; constants' values only when `values` (that counts as a read)."""
        if type(v) is dict:
            if len(v) == 1:
                if "ColumnRef" in v:
                    fields = v["ColumnRef"].get("fields") or []
                    names = [f["String"].get("sval", "") if "String" in f else "*" for f in fields]
                    if len(names) >= 2 and self._is_target(names):
                        names = names[-1:]
                    return ("col", tuple(names))
                if "A_Const" in v:
                    if not values:
                        return ("const",)   # kind-blind too: a normalized text keeps no kinds
                    _reads[0] += 1
            return tuple(sorted((k, self.canon(x, values)) for k, x in v.items() if k != "location"))
        if type(v) is list:
            return tuple(self.canon(x, values) for x in v)
        return v

    def same(self, a, b) -> bool:
        """Structurally equal; constants' values are looked at only when all else is equal."""
        return self.canon(a, False) == self.canon(b, False) and self.canon(a) == self.canon(b)

    def const_truth(self, node) -> int:
        found = constant_sublink(node)
        if found is not None:
            return found
        try:
            v = _ConstEval.truthy(node)
        except (_NotConst, ValueError, TypeError, ArithmeticError, IndexError, KeyError):
            return CONST
        return of_value(v)

    def truth(self, node) -> int:
        if type(node) is not dict or len(node) != 1:
            return ROW
        if not self.depends_on_row(node):
            return self.const_truth(node)
        key, b = _unwrap(node)
        if self.extended and key in ("A_Expr", "NullTest"):
            atom = catalog_atom(self, key, b)
            if atom is not None:
                self.atoms.add(atom)
                if self.assume_atoms or (self.assume_ranges and atom[0] in ("above", "below")):
                    return FALSE if atom[0] == "null" else TRUE
        if key == "BoolExpr":
            op = b.get("boolop")
            args = b.get("args") or []
            if op == "NOT_EXPR" and args:
                return t_not(self.truth(args[0]))
            truths = [self.truth(a) for a in args]
            if op == "AND_EXPR":
                return t_and(*truths)
            if op == "OR_EXPR":
                return TRUE if self._complementary(args) else t_or(*truths)
            return ROW
        if key == "A_Expr":
            return self._a_expr(b)
        if key == "SubLink":
            found = sublink_truth(self, b) if self.extended else None
            return ROW if found is None else found
        if key == "BooleanTest":
            return t_is(self.truth(b.get("arg")), str(b.get("booltesttype", "")).lower())
        if key == "TypeCast":
            names = _strings((b.get("typeName") or {}).get("names"))
            if names and names[-1] in ("bool", "boolean"):
                return self.truth(b.get("arg"))
            return ROW
        return ROW

    def _complementary(self, args: list) -> bool:
        """`x OR NOT x`, `x IS NULL OR x IS NOT NULL`."""
        plain, negated, nulls, notnulls = set(), set(), set(), set()
        for a in args:
            if type(a) is not dict or len(a) != 1:
                continue
            key, b = _unwrap(a)
            if key == "BoolExpr" and b.get("boolop") == "NOT_EXPR" and b.get("args"):
                negated.add(self.canon(b["args"][0]))
            elif key == "NullTest":
                (nulls if b.get("nulltesttype") == "IS_NULL" else notnulls).add(self.canon(b.get("arg")))
            plain.add(self.canon(a))
        return bool(plain & negated or nulls & notnulls)

    def _a_expr(self, b: dict) -> int:
        kind = b.get("kind")
        op = (_strings(b.get("name")) or [""])[-1]
        left, right = b.get("lexpr"), b.get("rexpr")
        if left is None or right is None:
            return ROW
        if kind == "AEXPR_OP":
            if op in ("=", "<=", ">=", "~~", "~~*") and self.same(left, right):
                return TRUE
            if op in ("<>", "!=", "<", ">") and self.same(left, right):
                return FALSE
            if op in ("~", "~*"):
                pattern = _const_string(right)
                if pattern is not None and pattern in ("", ".*", "^", "^.*", ".*$", "^.*$"):
                    return TRUE
            if op in ("=", "<>", "!="):  # (id = id) = true, true <> (id <> id)
                for expr, other in ((left, right), (right, left)):
                    if self.depends_on_row(other):
                        continue
                    t = self.truth(expr)  # structural first: `aid = 5` reads no constant
                    if t not in (TRUE, FALSE):
                        continue
                    try:
                        value = _ConstEval.truthy(other)
                    except (_NotConst, ValueError, TypeError, ArithmeticError):
                        continue
                    if value is None:
                        return NULL
                    equal = (t == TRUE) == value
                    return TRUE if equal == (op == "=") else FALSE
            if self.extended:
                found = self_join_truth(self, left, right) if op == "=" and self.self_aliases else \
                    range_truth(self, op, left, right)
                if found is not None:
                    return found
            return ROW
        found = between_truth(self, kind, b)
        if found is not None:
            return found
        if kind == "AEXPR_NOT_DISTINCT" and self.same(left, right):
            return TRUE
        if kind == "AEXPR_DISTINCT" and self.same(left, right):
            return FALSE
        if kind == "AEXPR_IN" and op == "=":
            items = right.get("List", {}).get("items") if type(right) is dict else right
            if isinstance(items, list):
                if any(self.same(left, x) for x in items):
                    return TRUE
            return ROW
        if kind in ("AEXPR_LIKE", "AEXPR_ILIKE", "AEXPR_SIMILAR") and op in ("~~", "~~*"):
            pattern = _const_string(right)
            if pattern is not None and pattern and set(pattern) == {"%"}:
                return TRUE
        return ROW


def _select_names(sel: dict) -> set[str]:
    out: set[str] = set()
    while sel:
        for t in sel.get("targetList") or ():
            rt = t.get("ResTarget", {})
            if rt.get("name"):
                out.add(rt["name"])
            else:
                val = rt.get("val") or {}
                if "ColumnRef" in val:
                    names = _strings(val["ColumnRef"].get("fields"))
                    if names:
                        out.add(names[-1])
                elif "FuncCall" in val:
                    names = _strings(val["FuncCall"].get("funcname"))
                    if names:
                        out.add(names[-1])
        values = sel.get("valuesLists")
        if values:
            first = values[0].get("List", {}).get("items") or []
            out.update(f"column{i}" for i in range(1, len(first) + 1))
        sel = (sel.get("larg") or {}) if sel.get("op") not in (None, "SETOP_NONE") else {}
    return out


def _exposed(items) -> set[str]:
    """Column names that USING / FROM items of UPDATE, DELETE, MERGE make visible (when the
    parse tree tells: subselects, VALUES, functions, aliases with column lists)."""
    out: set[str] = set()
    stack = list(items or ())
    while stack:
        item = stack.pop()
        if type(item) is not dict or len(item) != 1:
            continue
        key, b = _unwrap(item)
        alias = b.get("alias") or {}
        cols = _strings(alias.get("colnames"))
        out.update(cols)
        if key == "RangeSubselect" and not cols:
            out.update(_select_names((b.get("subquery") or {}).get("SelectStmt") or {}))
        elif key == "RangeFunction":
            if alias.get("aliasname"):
                out.add(alias["aliasname"])
            scan = [b.get("functions")]
            while scan:
                v = scan.pop()
                if type(v) is list:
                    scan.extend(v)
                elif type(v) is dict:
                    if "FuncCall" in v:
                        names = _strings(v["FuncCall"].get("funcname"))
                        if names:
                            out.add(names[-1])
                    else:
                        scan.extend(x for x in v.values() if type(x) in (dict, list))
        elif key == "JoinExpr":
            stack.extend([b.get("larg"), b.get("rarg")])
    return out


def _quals(rv: dict) -> set[str]:
    rel = rv.get("relname", "")
    quals = {rel}
    if rv.get("schemaname"):
        quals.add(f"{rv['schemaname']}.{rel}")
    alias = (rv.get("alias") or {}).get("aliasname")
    if alias:
        quals.add(alias)
    return quals



def _self_aliases(items, target: tuple[str | None, str]) -> frozenset[str]:
    """Aliases of FROM/USING/MERGE-source items that scan the target table again."""
    out = set()
    for item in items or ():
        rv = item.get("RangeVar") if type(item) is dict else None
        if rv is None and type(item) is dict and "relname" in item:
            rv = item
        if rv and rv.get("relname") == target[1] and (not rv.get("schemaname") or not target[0]
                                                      or rv["schemaname"] == target[0]):
            alias = (rv.get("alias") or {}).get("aliasname")
            if alias:
                out.add(alias)
    return frozenset(out)


def make_truth(rv: dict, items, variables: frozenset[str], *, extended: bool = True, joined=None) -> _Truth:
    """The truth of conditions over the rows of `rv` (the target of UPDATE/DELETE/MERGE, or a
    table a SELECT reads), with `items` the other FROM/USING items in scope. Another scan of
    the same table counts as the target's own row only when `joined` (a condition) joins it
    to the target column to same column: `ON s.id = 1` alone matches every row with one."""
    target = (rv.get("schemaname"), rv.get("relname", ""))
    aliases = _self_aliases(items, target)
    truth = _Truth(_quals(rv), _exposed(items), variables, target=target, self_aliases=aliases, extended=extended)
    if aliases and not (joined is not None and joins_itself(truth, joined)):
        truth.self_aliases = frozenset()
    return truth


def condition_truth(rv: dict, items, variables: frozenset[str], cond) -> tuple[int, frozenset[str], tuple]:
    """The outcome of `cond`; which extended checks (tautology.py) it needed to be every-row
    (empty when the literal checks alone find it, so a rule can leave the others out); and,
    when it is not every-row, the catalog atoms that would make it so if the catalog confirms
    them all (empty when none would)."""
    truth = make_truth(rv, items, variables, joined=cond)
    outcome = truth.truth(cond)
    if not every_row(outcome):
        if not truth.atoms:
            return outcome, frozenset(), ()
        assuming = make_truth(rv, items, variables, joined=cond)
        assuming.assume_atoms = True
        if not every_row(assuming.truth(cond)):
            return outcome, frozenset(), ()
        return outcome, frozenset(assuming.used), tuple(sorted(assuming.atoms))
    if not truth.used:
        return outcome, frozenset(), ()
    basic = make_truth(rv, items, variables, extended=False, joined=cond).truth(cond)
    return outcome, frozenset() if every_row(basic) else frozenset(truth.used), ()
