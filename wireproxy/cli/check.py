"""`wireproxy check [--rules FILE]... [--dialect D] [--user U] [--groups G,...] [--config FILE]
[--json] [--explain] SQL`

Judges one SQL text (it may hold several statements; `-` reads it from stdin) against rule
files, with no database: prints the decision, the rule that made it, and the facts of every
statement. The operator's tool for trying a rule pack before deploying it. --explain adds, per
statement, what it reads, writes, reads in full, copies, grants and calls, its WHERE, its flags
and the rules it matched (explain.py). --user and --groups say who is asking, for the rules'
`users`, `groups` and `except_users` (--groups alone: an unnamed user in those groups);
--config FILE takes the groups of --user from the config's `[[user]]` entry when --groups is
not given (the rules still come from --rules).

With no --rules, the shipped rules/default.toml is used. Exit status: 0 when the SQL would go
through (allow, or audit: logged but not stopped), 1 when it would be stopped (block, or
approve: held for a human), 2 with one line on stderr when a rule file or the arguments are
wrong (never a traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from wireproxy.config import ConfigError

from wireproxy.config import DEFAULT_RULES
from wireproxy.cli.explain import explain, explain_text


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check", help="judge a SQL statement against rule files (no database needed)",
        description="Print the decision for SQL, the rule that made it and the statement facts. "
                    "Exit 0: allowed or audited; 1: blocked or needing approval; 2: bad rule file "
                    "or arguments.")
    parser.add_argument("--rules", action="append", metavar="FILE",
                        help="rule file (repeatable; default: the shipped rules/default.toml)")
    parser.add_argument("--dialect", default="postgres",
                        help="SQL dialect: postgres (default) or any sqlglot dialect name")
    parser.add_argument("--user", default=None,
                        help="judge as this session user (for `users` and `except_users` matchers)")
    parser.add_argument("--groups", default=None, metavar="G,...",
                        help="judge as a member of these comma-separated groups (for `groups` matchers)")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="take --user's groups from this wireproxy.toml's [[user]] entries "
                             "(when --groups is not given)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--explain", action="store_true",
                        help="show the facts behind the decision: reads, writes, copies, grants, calls")
    parser.add_argument("sql", help="the SQL text; - reads it from stdin")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from wireproxy.policy.engine import Policy
    from wireproxy.policy.facts import is_postgres
    from wireproxy.config.rulefile import load_rules

    paths = args.rules or [DEFAULT_RULES]
    try:
        ruleset = load_rules(paths)
    except ConfigError as exc:
        print(f"wireproxy check: {exc}", file=sys.stderr)
        return 2
    dialect = args.dialect or "postgres"
    if not is_postgres(dialect):
        from wireproxy.policy.sqlglotfacts import dialect_names
        if dialect.lower() not in dialect_names():
            print(f"wireproxy check: unknown SQL dialect {dialect!r} "
                  f"(known: postgres, {', '.join(sorted(dialect_names() - {'postgres'}))})", file=sys.stderr)
            return 2
        logging.getLogger("sqlglot").setLevel(logging.ERROR)  # no "falling back to Command" noise
    try:
        groups = _groups(args)
    except ConfigError as exc:
        print(f"wireproxy check: {exc}", file=sys.stderr)
        return 2
    sql = args.sql
    if sql == "-":
        sql = sys.stdin.read()

    decision = Policy(ruleset).judge_sql(sql, dialect=dialect, user=args.user, groups=groups)
    sources = {r.id: r.source for r in ruleset.rules}
    if args.json:
        out = decision.to_dict()
        if args.user is not None or groups:
            out["identity"] = {"user": args.user, "groups": sorted(groups)}
        out["rule_source"] = sources.get(decision.rule_id)
        out["rule_files"] = [str(p) for p in paths]
        if args.explain:
            out["explain"] = explain(decision, ruleset)
        print(json.dumps(out, sort_keys=False))
    else:
        print(_human(decision, sources, paths, _who(args.user, groups)))
        if args.explain and decision.facts:
            print("\n".join(explain_text(explain(decision, ruleset))))
    return 0 if decision.allowed else 1


def _groups(args: argparse.Namespace) -> frozenset[str]:
    """--groups "a, b" -> {"a", "b"}; without it, --user's groups in --config's [[user]] entries."""
    if args.groups is not None:
        return frozenset(g.strip() for g in args.groups.split(",") if g.strip())
    if args.config is None or args.user is None:
        return frozenset()
    from wireproxy.config.settings import load_config

    return load_config(args.config).directory.groups_of(args.user)


def _who(user: str | None, groups: frozenset[str]) -> str | None:
    if user is None and not groups:
        return None
    return (user or "(unnamed)") + (f"  groups: {', '.join(sorted(groups))}" if groups else "")


def _human(decision, sources: dict, paths, who: str | None = None) -> str:
    lines = [f"decision:   {decision.action}"]
    if decision.would is not None and decision.would != decision.action:
        lines[0] += f" (would {decision.would}: audit mode)"
    if decision.rule_id:
        where = sources.get(decision.rule_id)
        lines.append(f"rule:       {decision.rule_id}" + (f"  ({where})" if where else ""))
        if decision.blocked:
            lines.append(f"client sees: {decision.client_message()}")
        elif decision.action.name == "APPROVE":
            lines.append(f"held for approval: {decision.message or decision.rule_id}")
        elif decision.message:
            lines.append(f"message:    {decision.message}")
    else:
        lines.append("rule:       (none matched)")
    if len(decision.matched) > 1:
        lines.append(f"matched:    {', '.join(decision.matched)}")
    if decision.limits is not None:
        limits = decision.limits
        parts = [f"{k}={getattr(limits, k)}" for k in ("max_rows", "max_bytes", "max_session_bytes")
                 if getattr(limits, k) is not None]
        lines.append(f"limits:     {' '.join(parts)}  ({', '.join(limits.rule_ids)})")
    lines.append(f"rules from: {', '.join(str(p) for p in paths)}")
    if who is not None:
        lines.append(f"judged as:  {who}")
    if decision.facts:
        lines.append("statements:")
        for i, st in enumerate(decision.facts, 1):
            d = st.to_dict()
            head = d.pop("kind")
            via = d.pop("via", None)
            text = f"  {i}. {head}" + (f"  [{via}]" if via else "")
            details = []
            for key, value in d.items():
                details.append(f"{key}={','.join(value) if isinstance(value, list) else value}")
            if details:
                text += "  " + "  ".join(details)
            lines.append(text)
    elif decision.facts is not None:
        lines.append("statements: (none)")
    return "\n".join(lines)
