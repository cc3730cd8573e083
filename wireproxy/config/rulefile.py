"""Rule files: loading and validating them into a RuleSet (see DESIGN.md, "Rule files").

    mode = "enforce"            # or "audit": this file's block/approve rules only log (dry run)
    on_parse_error = "block"    # or "allow": SQL the parser rejects goes on, logged as audit
    sensitive_tables = ["users", "hr.*"]   # what reads_all = true / copies = true mean

    [[rule]]
    id = "no-drop"              # unique across every loaded file (rules and masks share ids)
    action = "block"            # allow | audit | approve | block
    message = "dropping objects needs a change request"
    # SQL matchers; every matcher given must hold, a list matches when any element does:
    statements = ["drop"]       # statement kinds (policy.facts.KINDS)
    tables = ["public.users"]   # globs over every table the statement reads or writes
    targets = ["audit_*"]       # globs over the tables it writes, drops, alters, grants on
    functions = ["lo_*"]        # globs over the functions it calls
    roles = ["public"]          # globs over roles it names (GRANT/REVOKE/CREATE/ALTER ROLE)
    flags = ["set_role"]        # finer facts (policy.facts.FLAGS), e.g. copy_program,
                                # superuser_role, security_definer, dynamic_sql, alter_system
    without_where = true        # UPDATE/DELETE (and MERGE actions) with no WHERE or a
                                # tautological one (`true`, `1=1`, `id = id`, `x OR true`, `$1`);
                                # false: only those with a real WHERE
    users = ["ci-*"]            # who (rulekeys.py): globs over the identity's name,
    groups = ["contractors"]    # over its groups (any one matching),
    except_users = ["ci-root"]  # and names the rule never holds for (all case-sensitive)
    # HTTP/LLM/MCP matchers (judged by the HTTP proxy on request content):
    detectors = ["aws_access_key"]   # built-in or [[detector]] names
    patterns = ["(?i)ignore previous instructions"]   # Python regexes
    tools = ["run_shell"]       # MCP tool names (globs)
    models = ["gpt-*"]          # LLM model names (globs, case-insensitive)
    # what the statement does (rulekeys.py): whole reads and copies of tables (true: the
    # top-level sensitive_tables), role memberships granted, the WHERE checks that count:
    reads_all = true            # copies = ["users"], granted_roles = ["pg_read_all_data"]
    where_checks = []           # with without_where: [] = literal tautologies only
    approvers = ["group:dba"]   # approve rules only, with timeout = "5m"
    # volume limits (enforced by the relay while results flow; positive integers):
    max_rows = 10000
    max_bytes = 50_000_000
    max_session_bytes = 500_000_000

    [[mask]]                    # -> wireproxy.masking.spec.MaskSpec
    id = "cards"
    columns = ["card_number", "*.pan"]
    detectors = ["credit_card"]
    style = "partial"           # redact | partial | hash | null
    users = []                  # empty: everyone;  groups = ["support"] likewise
    except_users = ["auditor"]  # see raw values (exempt_users: the older spelling; they add up)
    strict = false              # block queries that use a masked column inside an expression
    keep_last = 4               # partial style
    binary = "null"             # masked column in binary format: "null" or "refuse"

    [[tool]]                    # an MCP tool whose argument carries SQL
    name = "query"
    sql_argument = "sql"
    dialect = "postgres"        # any sqlglot dialect

    [[detector]]                # a custom content detector; its name becomes valid above
    name = "order_ref"
    pattern = "ORD-[0-9]{8}"

Which rules judge SQL: every rule without `detectors`/`patterns` (those look at HTTP request
content, not SQL) and without max_* keys (those are limits: they ride along on the Decision as
`limits`, and their action applies when a limit is exceeded). A rule with `tools` or `models`
holds only for SQL that arrives through that tool or model; a rule with `users` only when the
user is known and matches, with `groups` only when one of the identity's groups matches, and
never for a user `except_users` names. A rule with no matchers at all matches every statement.

Names. Table and function globs are matched case-insensitively against the names in the facts
(which PostgreSQL has already folded). A glob without a schema (`users`, `pg_read_file`)
matches that name in any schema and unqualified. A glob with one (`public.users`,
`pg_catalog.lo_export`) matches the qualified name, and an unqualified name when the glob's
schema part matches a schema on the default search path: `pg_catalog`, `public`, `pg_temp` or
the session user's own schema. (A client can change its search_path; the `search_path` flag
lets a pack block or audit that when it relies on schema-qualified globs.) Role globs are
case-insensitive; PUBLIC, however spelled, is the role `public`.

Several files: their rules, masks, tools and detectors are merged in order; each rule keeps its
own file's mode. `on_parse_error` is "allow" only if some file says "allow" and none says
"block" (the default is block: fail closed). Parse errors are judged in audit mode only when
every file is in audit mode. Every mistake is a ConfigError naming the file, the line and the
key: unknown keys, wrong types, unknown kinds/flags/detectors/styles/dialects, bad regexes,
duplicate ids — never ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from wireproxy.config.rulekeys import (
    approval_keys,
    depth_keys,
    mask_scope,
    rule_scope,
    sensitive_tables,
)
from wireproxy.config.tomlfile import Checker, ConfigError, TomlFile
from wireproxy.masking.spec import DETECTOR_NAMES, STYLES, CustomDetector, MaskSpec
from wireproxy.policy.decision import Action
from wireproxy.policy.facttypes import FLAGS, KINDS
from wireproxy.policy.rules import (
    ACTIONS,
    MODES,
    Globs,
    NameGlobs,
    Rule,
    RuleSet,
    ToolSpec,
)

__all__ = ["ConfigError", "Globs", "NameGlobs", "Rule", "RuleSet", "ToolSpec", "load_rules", "parse_rules"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


# ----------------------------------------------------------------------------------------------

def load_rules(paths) -> RuleSet:
    """Load and merge rule files, in order. Raises ConfigError (file:line: problem)."""
    files = [TomlFile.load(p) for p in paths]
    return _build(files)


def parse_rules(text: str, path: str | Path = "<rules>") -> RuleSet:
    """One rule file from a string (tests, `check`)."""
    return _build([TomlFile.parse(text, path)])


def _detectors(files: list[TomlFile]) -> tuple[list[CustomDetector], dict[str, str]]:
    """Every file's [[detector]] tables, validated, and where each name was defined."""
    detectors: list[CustomDetector] = []
    detector_sources: dict[str, str] = {}
    for f in files:
        top = f.data.get("detector", [])
        if not isinstance(top, list):
            raise ConfigError(f.path, f.line_of("detector"), "detector must be an array of tables ([[detector]])")
        for i, table in enumerate(top):
            if not isinstance(table, dict):
                raise ConfigError(f.path, f.line_of("detector"), "detector must be an array of tables ([[detector]])")
            c = Checker(f, ("detector", i))
            name = c.get("name", str, required=True)
            pattern = c.get("pattern", str, required=True)
            c.done()
            if not _NAME.match(name):
                raise c.error("name", f"{c.name('name')}: {name!r} is not a valid detector name")
            if name in DETECTOR_NAMES:
                raise c.error("name", f"{c.name('name')}: {name!r} is a built-in detector")
            if name in detector_sources:
                raise c.error("name", f"duplicate detector {name!r} (first defined at {detector_sources[name]})")
            _compile(c, "pattern", pattern)
            detector_sources[name] = _where(f, ("detector", i, "name"))
            detectors.append(CustomDetector(name, pattern))
    return detectors, detector_sources


def _build(files: list[TomlFile]) -> RuleSet:
    # Custom detectors first: any file's rules may name any file's detectors.
    detectors, detector_sources = _detectors(files)
    known_detectors = frozenset(DETECTOR_NAMES) | frozenset(detector_sources)
    sensitive = sensitive_tables(files)

    rules: list[Rule] = []
    masks: list[MaskSpec] = []
    tools: list[ToolSpec] = []
    ids: dict[str, str] = {}
    tool_names: dict[str, str] = {}
    explicit_parse: set[str] = set()
    modes: list[str] = []
    for f in files:
        top = Checker(f, ())
        mode = top.choice("mode", MODES, "enforce")
        modes.append(mode)
        if "on_parse_error" in f.data:
            explicit_parse.add(top.choice("on_parse_error", ("block", "allow")))
        else:
            top.get("on_parse_error", str)
        top.get("sensitive_tables", list)   # read by rulekeys.sensitive_tables
        for key in ("rule", "mask", "tool", "detector"):
            value = top.get(key, list, [])
            if not all(isinstance(t, dict) for t in value):
                raise top.error(key, f"{key} must be an array of tables ([[{key}]])")
        top.done()
        for i in range(len(f.data.get("rule", []))):
            rule = _rule(f, i, mode, known_detectors, sensitive)
            _claim(ids, rule.id, f, ("rule", i, "id"))
            rules.append(rule)
        for i in range(len(f.data.get("mask", []))):
            mask = _mask(f, i, known_detectors)
            _claim(ids, mask.id, f, ("mask", i, "id"))
            masks.append(mask)
        for i in range(len(f.data.get("tool", []))):
            tool = _tool(f, i)
            if tool.name in tool_names:
                raise ConfigError(f.path, f.line_of("tool", i, "name"),
                                  f"duplicate tool {tool.name!r} (first defined at {tool_names[tool.name]})")
            tool_names[tool.name] = tool.source
            tools.append(tool)
    on_parse_error = "allow" if explicit_parse == {"allow"} else "block"
    parse_mode = "audit" if modes and all(m == "audit" for m in modes) else "enforce"
    return RuleSet(tuple(rules), tuple(masks), tuple(tools), tuple(detectors), on_parse_error,
                   parse_mode, tuple(str(f.path) for f in files), sensitive)


def _where(f: TomlFile, keys: tuple) -> str:
    line = f.line_of(*keys)
    return f"{f.path}:{line}" if line else str(f.path)


def _claim(ids: dict[str, str], ident: str, f: TomlFile, keys: tuple) -> None:
    if ident in ids:
        raise ConfigError(f.path, f.line_of(*keys), f"duplicate id {ident!r} (first defined at {ids[ident]})")
    ids[ident] = _where(f, keys)


def _compile(c: Checker, key: str, pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise c.error(key, f"{c.name(key)}: bad regular expression {pattern!r}: {exc}") from None


def _strings(c: Checker, key: str) -> tuple[str, ...] | None:
    """A list of non-empty strings, or None when the key is absent."""
    if key not in c.table:
        c.seen.add(key)
        return None
    values = c.get_list(key, str)
    for v in values:
        if not v.strip():
            raise c.error(key, f"{c.name(key)} must not contain empty strings")
    return tuple(values)


def _positive(c: Checker, key: str) -> int | None:
    value = c.get(key, int)
    if value is not None and value <= 0:
        raise c.error(key, f"{c.name(key)} must be a positive integer, not {value}")
    return value


def _rule(f: TomlFile, i: int, mode: str, known_detectors: frozenset[str], sensitive: tuple[str, ...]) -> Rule:
    c = Checker(f, ("rule", i))
    ident = c.get("id", str, required=True)
    if not ident.strip():
        raise c.error("id", f"{c.name('id')} must not be empty")
    action = Action.parse(c.choice("action", ACTIONS, required=True))
    message = c.get("message", str, "")

    statements = _strings(c, "statements")
    if statements is not None:
        for kind in statements:
            if kind not in KINDS:
                raise c.error("statements", f"{c.name('statements')}: unknown statement kind {kind!r} "
                                            f"(known: {', '.join(KINDS)})")
    flags = _strings(c, "flags")
    if flags is not None:
        for flag in flags:
            if flag not in FLAGS:
                raise c.error("flags", f"{c.name('flags')}: unknown flag {flag!r} (known: {', '.join(FLAGS)})")
    without_where = c.get("without_where", bool)
    if without_where is not None and statements is not None and not set(statements) & {"update", "delete"}:
        raise c.error("without_where", f"{c.name('without_where')} applies to update and delete statements, "
                                       f"but {c.name('statements')} names neither")
    tables = _strings(c, "tables")
    targets = _strings(c, "targets")
    functions = _strings(c, "functions")
    roles = _strings(c, "roles")
    scope = rule_scope(c)
    detectors = _strings(c, "detectors")
    if detectors is not None:
        for name in detectors:
            if name not in known_detectors:
                raise c.error("detectors", f"{c.name('detectors')}: unknown detector {name!r} "
                                           f"(known: {', '.join(sorted(known_detectors))})")
    patterns = _strings(c, "patterns")
    compiled = tuple(_compile(c, "patterns", p) for p in patterns or ())
    tools = _strings(c, "tools")
    models = _strings(c, "models")
    max_rows = _positive(c, "max_rows")
    max_bytes = _positive(c, "max_bytes")
    max_session_bytes = _positive(c, "max_session_bytes")
    extra = depth_keys(c, sensitive, without_where) | approval_keys(c, action) | scope
    c.done()
    return Rule(
        id=ident, action=action, message=message, mode=mode, source=_where(f, ("rule", i, "id")),
        statements=frozenset(statements or ()),
        tables=NameGlobs(tables) if tables else None,
        targets=NameGlobs(targets) if targets else None,
        functions=NameGlobs(functions) if functions else None,
        roles=Globs(roles, ignore_case=True) if roles else None,
        flags=frozenset(flags or ()), without_where=without_where,
        detectors=tuple(detectors or ()), patterns=compiled,
        tools=Globs(tools) if tools else None,
        models=Globs(models, ignore_case=True) if models else None,
        max_rows=max_rows, max_bytes=max_bytes, max_session_bytes=max_session_bytes, **extra)


def _mask(f: TomlFile, i: int, known_detectors: frozenset[str]) -> MaskSpec:
    c = Checker(f, ("mask", i))
    ident = c.get("id", str, required=True)
    if not ident.strip():
        raise c.error("id", f"{c.name('id')} must not be empty")
    columns = _strings(c, "columns") or ()
    detectors = _strings(c, "detectors") or ()
    for name in detectors:
        if name not in known_detectors:
            raise c.error("detectors", f"{c.name('detectors')}: unknown detector {name!r} "
                                       f"(known: {', '.join(sorted(known_detectors))})")
    if not columns and not detectors:
        raise c.error(None, f"{c.name('columns')} or {c.name('detectors')} is required: a mask must say what it masks")
    style = c.choice("style", STYLES, "redact")
    scope = mask_scope(c)
    strict = c.get("strict", bool, False)
    keep_last = c.get("keep_last", int, 4)
    if keep_last < 0:
        raise c.error("keep_last", f"{c.name('keep_last')} must not be negative")
    binary = c.choice("binary", ("null", "refuse"), "null")
    c.done()
    return MaskSpec(id=ident, columns=columns, detectors=detectors, style=style, strict=strict,
                    keep_last=keep_last, binary=binary, **scope,
                    source=_where(f, ("mask", i, "id")))


def _tool(f: TomlFile, i: int) -> ToolSpec:
    from wireproxy.policy.sqlglotfacts import dialect_names

    c = Checker(f, ("tool", i))
    name = c.get("name", str, required=True)
    sql_argument = c.get("sql_argument", str, required=True)
    dialect = c.get("dialect", str, "postgres")
    c.done()
    if not name.strip():
        raise c.error("name", f"{c.name('name')} must not be empty")
    if not sql_argument.strip():
        raise c.error("sql_argument", f"{c.name('sql_argument')} must not be empty")
    if dialect.lower() not in dialect_names() | {"postgresql"}:
        raise c.error("dialect", f"{c.name('dialect')}: unknown SQL dialect {dialect!r} "
                                 f"(known: {', '.join(sorted(dialect_names()))})")
    return ToolSpec(name, sql_argument, dialect.lower(), _where(f, ("tool", i, "name")))
