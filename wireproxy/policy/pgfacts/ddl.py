"""Handlers of statements that change the schema, roles, privileges, code and settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wireproxy.policy.pgfacts.acc import _FDW_EXTENSIONS, _FUNC_DEFELEMS, _ROLE_FLAGS, _TABLE_OBJECTS, _Acc
from wireproxy.policy.pgfacts.nodes import _def_bool, _def_string, _defelems, _strings, _unwrap
from wireproxy.policy.pgfacts.where import make_truth
from wireproxy.policy.truth import every_row

_ALTER_TABLE_FLAGS = {
    "AT_DropColumn": "drop_column",
    "AT_DisableRowSecurity": "rls_off", "AT_NoForceRowSecurity": "rls_off",
    "AT_ChangeOwner": "owner_to",
    "AT_EnableRule": "rewrite_rule", "AT_EnableAlwaysRule": "rewrite_rule",
    "AT_EnableReplicaRule": "rewrite_rule",
}
_WRITING = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "TruncateStmt"})

if TYPE_CHECKING:
    from wireproxy.policy.pgfacts.walker import _Extractor

def _h_drop(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("removeType") in _TABLE_OBJECTS:
        for obj in b.get("objects") or ():
            names = _strings((obj.get("List") or {}).get("items")) if type(obj) is dict else []
            if names:
                name = ".".join(names[-2:])
                acc.targets.add(name)
                acc.tables.add(name)
    ex.walk(b, acc, scope)


def _h_truncate(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("relations") or ():
        if type(item) is dict and "RangeVar" in item:
            ex.target(item["RangeVar"], acc)
    ex.walk(b, acc, scope)


def _h_alter_table(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("cmds") or ():
        flag = _ALTER_TABLE_FLAGS.get((item.get("AlterTableCmd") or {}).get("subtype"))
        if flag:
            acc.flags.add(flag)
    ex.walk(b, acc, scope)


def _h_grant(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("targtype", "ACL_TARGET_OBJECT") == "ACL_TARGET_OBJECT" and b.get("objtype") in _TABLE_OBJECTS:
        for item in b.get("objects") or ():
            if type(item) is dict and "RangeVar" in item:
                ex.target(item["RangeVar"], acc)
    ex.walk(b, acc, scope)


def _h_grant_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for item in b.get("granted_roles") or ():
        name = (item.get("AccessPriv") or {}).get("priv_name") if type(item) is dict else None
        if name:
            acc.roles.add(name)
            if b.get("is_grant"):
                acc.granted.add(name)
    ex.walk(b, acc, scope)


def _role_options(b: dict, acc: _Acc, role: str | None) -> None:
    for name, arg in _defelems(b.get("options")):
        flag = _ROLE_FLAGS.get(name)
        if flag and _def_bool(arg) is not False:
            acc.flags.add(flag)
        elif name == "addroleto":          # CREATE ROLE x IN ROLE r: x joins r
            acc.granted.update(_role_names(arg))
        elif name == "rolemembers" and b.get("action", 1) == 1 and role:   # ALTER GROUP r ADD USER x
            acc.granted.add(role)


def _role_names(arg) -> list[str]:
    items = (arg or {}).get("List", {}).get("items") if type(arg) is dict else None
    out = []
    for item in items or ():
        spec = item.get("RoleSpec") if type(item) is dict else None
        if spec and spec.get("roletype") == "ROLESPEC_CSTRING":
            out.append(spec.get("rolename", ""))
    return out


def _h_create_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    if b.get("role"):
        acc.roles.add(b["role"])
    _role_options(b, acc, b.get("role"))
    ex.walk(b, acc, scope)


def _h_alter_role(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    role = b.get("role") or {}
    _role_options(b, acc, role.get("rolename") if role.get("roletype") == "ROLESPEC_CSTRING" else None)
    ex.walk(b, acc, scope)


def _h_alter_system(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("alter_system")
    ex.walk(b, acc, scope)


def _h_create_function(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    options = _defelems(b.get("options"))
    language = None
    body: list[str] = []
    for name, arg in options:
        if name == "language":
            language = (_def_string(arg) or "").lower()
        elif name == "security" and _def_bool(arg) is not False:
            acc.flags.add("security_definer")
        elif name == "as" and type(arg) is dict:
            key, value = _unwrap(arg)
            body = _strings(value.get("items")) if key == "List" else [value.get("sval", "")] if key == "String" else []
    params = frozenset(p["FunctionParameter"]["name"] for p in b.get("parameters") or ()
                       if type(p) is dict and (p.get("FunctionParameter") or {}).get("name"))
    sql_body = b.get("sql_body")
    if language is None:
        language = "sql"
    if sql_body is not None:
        saved, ex.vars = ex.vars, ex.vars | params
        try:
            ex.walk(sql_body, acc, scope, via="function body")
        finally:
            ex.vars = saved
    elif language == "sql":
        for text in body[:1]:
            ex.nested_text(text, acc, "function body", params)
    elif language == "plpgsql":
        if body:
            ex.plpgsql(ex.statement_text(loc, length), acc, "function body")
    else:
        acc.flags.add("opaque_code")
        if language == "internal" and body:
            acc.functions.add(body[0])
    ex.walk(b, acc, scope, skip=("sql_body",))


def _h_alter_function(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for name, arg in _defelems(b.get("actions")):
        if name == "security" and _def_bool(arg) is not False:
            acc.flags.add("security_definer")
    ex.walk(b, acc, scope)


def _h_do(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    language = "plpgsql"
    code = None
    for name, arg in _defelems(b.get("args")):
        if name == "language":
            language = (_def_string(arg) or "").lower()
        elif name == "as":
            code = _def_string(arg)
    if language == "plpgsql":
        if code is not None:
            ex.plpgsql(ex.statement_text(loc, length), acc, "DO block")
    else:
        acc.flags.add("opaque_code")


def _h_foreign(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("foreign_data")
    base = b.get("base")
    if type(base) is dict and type(base.get("relation")) is dict:
        ex.target(base["relation"], acc)
    ex.walk(b, acc, scope)


def _h_create_extension(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    name = (b.get("extname") or "").lower()
    if name in _FDW_EXTENSIONS or name.endswith("_fdw"):
        acc.flags.add("foreign_data")
    ex.walk(b, acc, scope)


def _h_load(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("load_library")



def _h_default_privileges(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    action = b.get("action")
    if type(action) is dict:
        ex.statement("GrantStmt", action, "ALTER DEFAULT PRIVILEGES", scope)
    ex.walk(b, acc, scope, skip=("action",))


def _h_schema(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.walk(b, acc, scope, via="CREATE SCHEMA")


def _h_rule(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    actions = b.get("actions") or []
    writes = any(type(a) is dict and len(a) == 1 and next(iter(a)) in _WRITING for a in actions)
    if writes or (b.get("instead") and not actions and b.get("event") != "CMD_SELECT"):
        acc.flags.add("rewrite_rule")   # writes elsewhere, or silently drops the writes
    ex.walk(b, acc, scope, via="CREATE RULE action")


def _h_owner(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    acc.flags.add("owner_to")
    ex.walk(b, acc, scope)


def _h_policy(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    """CREATE POLICY whose USING or WITH CHECK lets every row through (a permissive one; a
    restrictive policy that is always true restricts nothing and opens nothing)."""
    _open_policy(ex, b, acc, scope, bool(b.get("permissive")))  # JSON leaves false out (RESTRICTIVE)


def _h_alter_policy(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    """ALTER POLICY cannot say whether the policy is permissive: taken to be (fail closed)."""
    _open_policy(ex, b, acc, scope, True)


def _open_policy(ex: _Extractor, b: dict, acc: _Acc, scope, permissive: bool) -> None:
    if permissive:
        rv = b.get("table") or {}
        for key in ("qual", "with_check"):
            cond = b.get(key)
            if cond is not None and every_row(make_truth(rv, [], ex.vars).truth(cond)):
                acc.flags.add("permissive_policy")
    ex.walk(b, acc, scope)


def _h_trigger(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    names = _strings(b.get("funcname"))
    if names:
        acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_cast(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    func = b.get("func")
    if type(func) is dict:
        names = _strings(func.get("objname"))
        if names:
            acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_define(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    for name, arg in _defelems(b.get("definition")):
        if name.lower() in _FUNC_DEFELEMS and type(arg) is dict and len(arg) == 1:
            key, value = _unwrap(arg)
            names = _strings(value.get("names") if key == "TypeName" else value.get("items"))
            if names:
                acc.functions.add(".".join(names[-2:]))
    ex.walk(b, acc, scope)


def _h_set(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    ex.varset(b, acc)
    ex.walk(b, acc, scope)


def _h_refresh(ex: _Extractor, b: dict, acc: _Acc, scope, loc, length) -> None:
    rv = b.get("relation")
    if type(rv) is dict and "relname" in rv:
        ex.target(rv, acc)
    ex.walk(b, acc, scope)


HANDLERS = {
    "DropStmt": _h_drop,
    "TruncateStmt": _h_truncate,
    "AlterTableStmt": _h_alter_table,
    "GrantStmt": _h_grant,
    "GrantRoleStmt": _h_grant_role,
    "CreateRoleStmt": _h_create_role,
    "AlterRoleStmt": _h_alter_role,
    "AlterSystemStmt": _h_alter_system,
    "CreateFunctionStmt": _h_create_function,
    "AlterFunctionStmt": _h_alter_function,
    "DoStmt": _h_do,
    "CreateFdwStmt": _h_foreign,
    "AlterFdwStmt": _h_foreign,
    "CreateForeignServerStmt": _h_foreign,
    "AlterForeignServerStmt": _h_foreign,
    "CreateUserMappingStmt": _h_foreign,
    "AlterUserMappingStmt": _h_foreign,
    "ImportForeignSchemaStmt": _h_foreign,
    "CreateForeignTableStmt": _h_foreign,
    "CreateExtensionStmt": _h_create_extension,
    "LoadStmt": _h_load,
    "CreateSubscriptionStmt": _h_foreign,
    "AlterSubscriptionStmt": _h_foreign,
    "AlterDefaultPrivilegesStmt": _h_default_privileges,
    "CreateSchemaStmt": _h_schema,
    "RuleStmt": _h_rule,
    "AlterOwnerStmt": _h_owner,
    "ReassignOwnedStmt": _h_owner,
    "CreatePolicyStmt": _h_policy,
    "AlterPolicyStmt": _h_alter_policy,
    "CreateTrigStmt": _h_trigger,
    "CreateEventTrigStmt": _h_trigger,
    "CreateCastStmt": _h_cast,
    "DefineStmt": _h_define,
    "VariableSetStmt": _h_set,
    "RefreshMatViewStmt": _h_refresh,
}
