"""The policy engine: SQL text in, Decision out. Pure code: no trio, no I/O.

    policy = Policy(ruleset)              # policy.ruleset = new_ruleset swaps live (version += 1)
    judge = policy.session("alice", groups=frozenset({"oncall"}))  # one per client connection
    judge.version                         # == policy.version: re-judge prepared statements on change
    judge.query(sql)                      # simple-protocol Query (may hold many statements)
    judge.parse(sql, name="")             # extended-protocol Parse (name: the statement's name)
    judge.close(name)                     # extended-protocol Close of a statement
    judge.function("pg_catalog.lo_export")  # FunctionCall, by resolved function name
    policy.judge_sql(sql, dialect="postgres", user=None, tool=None, model=None, groups=frozenset())
                                          # one text outside a session: HTTP/MCP, `wireproxy check`
    policy.cache_stats()                  # {"hits", "misses", "size", "shape_hits", "decisions"}

How a decision is made: every statement of the text and every statement nested in it (facts.py)
is matched against every SQL rule that applies to the context (user, groups, tool, model); the most
restrictive matching action wins, ties going to the rule whose own action is stronger, then to
the earlier rule; a rule in an audit-mode file counts as audit (`Decision.would` keeps what it
would have done). Rules with max_* keys do not decide: they ride along as `Decision.limits`.
No match: allow. Empty text: allow. Unparseable text: block as `parse-error` (audit when
on_parse_error = "allow"). Anything going wrong inside wireproxy: block as `internal-error`,
whatever the rule files say.

The hot path: a decision is cached by (text, user, groups[, dialect, tool, model]) until the
rule set is swapped (every key holds the groups: `groups` rules must never hand one identity's
decision to another with the same name), so a repeated statement costs two dict operations
(measured ~0.3-0.5 us). Facts are cached by text, and by parse-tree shape for texts that differ
only in constants (cache.py), and decisions by facts object, so `... WHERE aid = 48213` after
`... WHERE aid = 1` costs one C parse and no tree walk. Statements that depend on the session
(PREPARE, EXECUTE, DEALLOCATE) skip the decision cache and are resolved against the session's
prepared names: `EXECUTE p` is judged as the statement `p` was prepared as; a name the session
never prepared cannot be judged and is treated like a parse error (`unknown-prepared-statement`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace

from wireproxy.policy.cache import DEFAULT_MAX_ENTRIES, FactsCache
from wireproxy.policy.columnbook import ColumnBook
from wireproxy.policy.decision import (
    INTERNAL_ERROR, PARSE_ERROR, UNKNOWN_FUNCTION, Action, Decision, Limits)
from wireproxy.policy.facts import QueryFacts, SqlParseError, StatementFacts, is_postgres
from wireproxy.policy.pgcatalog import is_builtin_function
from wireproxy.policy.facttypes import catalog_tables_of
from wireproxy.policy.prepared import resolve_prepared, routines_of
from wireproxy.policy.routinebook import RoutineBook, with_routines
from wireproxy.policy.rules import DEFAULT_SEARCH_PATH, Rule, RuleSet

_CONTEXT_CACHE = 4096


def _internal(exc: BaseException | None = None) -> Decision:
    detail = f" ({exc.__class__.__name__})" if exc is not None else ""
    return Decision(Action.BLOCK, INTERNAL_ERROR, f"wireproxy could not judge this statement{detail}")


class _Compiled:
    """A RuleSet prepared for judging: SQL rules split into action rules and limit rules,
    and the rules that apply to a (user, groups, tool, model) context worked out once."""

    def __init__(self, ruleset: RuleSet):
        self.ruleset = ruleset
        sql_rules = [r for r in ruleset.rules if not r.is_content]
        self.action_rules = tuple(r for r in sql_rules if not r.is_limit)
        self.limit_rules = tuple(r for r in sql_rules if r.is_limit)
        self._contexts: dict = {}

    def for_context(self, user, tool, model,
                    groups=frozenset()) -> tuple[tuple[Rule, ...], tuple[Rule, ...], tuple[str, ...]]:
        key = (user, groups, tool, model)
        got = self._contexts.get(key)
        if got is None:
            if len(self._contexts) >= _CONTEXT_CACHE:
                self._contexts.clear()
            got = (tuple(r for r in self.action_rules if r.matches_context(user, tool, model, groups)),
                   tuple(r for r in self.limit_rules if r.matches_context(user, tool, model, groups)),
                   DEFAULT_SEARCH_PATH + ((user,) if user else ()))
            self._contexts[key] = got
        return got

    def judge(self, statements: tuple[StatementFacts, ...], user, tool=None, model=None,
              groups: frozenset[str] = frozenset()) -> Decision:
        rules, limit_rules, search_path = self.for_context(user, tool, model, groups)
        best: Rule | None = None
        best_action = Action.ALLOW
        would = Action.ALLOW
        matched: list[str] = []
        for rule in rules:
            for st in statements:
                if rule.matches_statement(st, search_path):
                    matched.append(rule.id)
                    action = rule.effective_action
                    # ties (say, everything audited in an audit-mode file) go to the rule
                    # that would have been most restrictive, then to the earlier one
                    if best is None or action > best_action or (action == best_action and rule.action > best.action):
                        best, best_action = rule, action
                    if rule.action > would:
                        would = rule.action
                    break
        limits = self._limits(statements, limit_rules, search_path) if limit_rules else None
        if best is None:
            return Decision(Action.ALLOW, None, "", (), statements, None, limits)
        if best_action == Action.APPROVE:
            return Decision(best_action, best.id, best.message, tuple(matched), statements, would, limits,
                            best.approvers, best.approval_timeout)
        return Decision(best_action, best.id, best.message, tuple(matched), statements, would, limits)

    @staticmethod
    def _limits(statements, limit_rules, search_path) -> Limits | None:
        hits = [r for r in limit_rules if any(r.matches_statement(st, search_path) for st in statements)]
        if not hits:
            return None

        def smallest(key: str):
            values = [getattr(r, key) for r in hits if getattr(r, key) is not None]
            return min(values) if values else None

        strongest = max(hits, key=lambda r: r.effective_action)
        return Limits(smallest("max_rows"), smallest("max_bytes"), smallest("max_session_bytes"),
                      tuple(r.id for r in hits), strongest.effective_action, strongest.message)

    def unjudgeable(self, rule_id: str, problem: str, facts=None) -> Decision:
        """SQL wireproxy cannot see into (parse errors, unknown prepared statements)."""
        rs = self.ruleset
        if rs.on_parse_error == "allow":
            return Decision(Action.AUDIT, rule_id, f"{problem} (passed on: on_parse_error = allow)",
                            (rule_id,), facts, Action.AUDIT)
        if rs.parse_error_mode == "audit":
            return Decision(Action.AUDIT, rule_id, problem, (rule_id,), facts, Action.BLOCK)
        return Decision(Action.BLOCK, rule_id, problem, (rule_id,), facts, Action.BLOCK)

    def parse_error(self, err: SqlParseError) -> Decision:
        if err.internal:
            return Decision(Action.BLOCK, INTERNAL_ERROR, f"wireproxy could not judge this statement: {err.message}")
        return self.unjudgeable(PARSE_ERROR, f"the SQL could not be parsed: {err.message}")


class Policy:
    def __init__(self, ruleset: RuleSet | None = None, *, cache_size: int = DEFAULT_MAX_ENTRIES):
        self._facts = FactsCache(cache_size)
        self._cache_size = cache_size
        self._decisions: OrderedDict = OrderedDict()   # by text and context
        self._by_facts: OrderedDict = OrderedDict()    # by facts object (shared by shape) and context
        self._compiled = _Compiled(ruleset if ruleset is not None else RuleSet())
        self._hits = 0
        self.version = 0

    # -- rules ----------------------------------------------------------------------------------

    @property
    def ruleset(self) -> RuleSet:
        return self._compiled.ruleset

    @ruleset.setter
    def ruleset(self, ruleset: RuleSet) -> None:
        """Swap the rules (live reload). Sessions keep going and see the new rules at once."""
        self._compiled = _Compiled(ruleset)
        self._decisions = OrderedDict()
        self._by_facts = OrderedDict()
        self.version += 1

    # -- judging --------------------------------------------------------------------------------

    def session(self, user: str | None = None, groups: frozenset[str] = frozenset()) -> "SessionJudge":
        return SessionJudge(self, user, groups)

    def facts(self, sql: str, dialect: str | None = "postgres") -> QueryFacts:
        """Facts of `sql` (cached). Raises SqlParseError only."""
        return self._facts.get(sql, _dialect(dialect))

    def judge_sql(self, sql: str, dialect: str | None = "postgres", user: str | None = None, *,
                  tool: str | None = None, model: str | None = None,
                  groups: frozenset[str] = frozenset()) -> Decision:
        """One SQL text outside any Postgres session (HTTP/MCP, `wireproxy check`)."""
        try:
            dialect = _dialect(dialect)
            groups = frozenset(groups)
            key = (sql, user, groups, dialect, tool, model)
            cached = self._decisions.get(key)
            if cached is not None:
                self._decisions.move_to_end(key)
                self._hits += 1
                return cached
            return self._judge_text(sql, key, dialect, (user, groups), tool, model, prepared=None)
        except Exception as exc:  # never let a fault become an allow
            return _internal(exc)

    def cache_stats(self) -> dict:
        """hits: judged without parsing; misses: parsed (shape_hits of them skipped the walk);
        size: texts in the facts cache; decisions: cached decisions."""
        return {"hits": self._hits + self._facts.hits, "misses": self._facts.misses,
                "size": len(self._facts), "shape_hits": self._facts.shape_hits,
                "decisions": len(self._decisions)}

    # -- internals ------------------------------------------------------------------------------

    def _remember(self, key, decision: Decision) -> Decision:
        decisions = self._decisions
        decisions[key] = decision
        if len(decisions) > self._cache_size:
            decisions.popitem(last=False)
        return decision

    def _decide(self, facts: QueryFacts, who: tuple, tool=None, model=None) -> Decision:
        """The decision for stateless facts; texts of one shape share their facts object and
        so their decision. `who` is (user, groups)."""
        key = (facts, who, tool, model)
        by_facts = self._by_facts
        decision = by_facts.get(key)
        if decision is None:
            if facts.statements:
                decision = self._compiled.judge(facts.statements, who[0], tool, model, who[1])
            else:
                decision = Decision(Action.ALLOW, facts=())
            by_facts[key] = decision
            if len(by_facts) > self._cache_size:
                by_facts.popitem(last=False)
        return decision

    def _judge_text(self, sql: str, key, dialect: str, who: tuple, tool, model, prepared: dict | None) -> Decision:
        compiled = self._compiled
        try:
            facts = self._facts.get(sql, dialect)
        except SqlParseError as err:
            decision = compiled.parse_error(err)
            return decision if err.internal else self._remember(key, decision)
        if facts.stateful:
            return resolve_prepared(compiled, facts, who, tool, model,
                                     prepared if prepared is not None else {})[0]
        return self._remember(key, self._decide(facts, who, tool, model))


def _dialect(dialect: str | None) -> str:
    return "postgres" if is_postgres(dialect) else dialect.lower()


class SessionJudge:
    """Judges one client connection's statements; remembers its prepared-statement names."""

    __slots__ = ("_policy", "user", "groups", "_who", "prepared", "standard_conforming_strings",
                 "routines", "columns")

    def __init__(self, policy: Policy, user: str | None, groups: frozenset[str] = frozenset()):
        self._policy = policy
        self.user = user
        self.groups = frozenset(groups)
        self._who = (user, self.groups)   # the identity part of every cache key
        self.prepared: dict[str, tuple[StatementFacts, ...]] = {}
        self.routines = RoutineBook()   # bodies of called routines, learned from the catalog
        self.columns = ColumnBook()     # column types and NOT NULL of tables, likewise
        # The server's standard_conforming_strings (from ParameterStatus). wireproxy parses as
        # PostgreSQL does with it on (the default since 9.1); with it off, a backslash in a
        # '...' literal lexes differently on the server, so text with one cannot be judged.
        self.standard_conforming_strings = True

    @property
    def version(self) -> int:
        """The rules' version: changes on every reload, so the relay re-judges old statements."""
        return self._policy.version

    def query(self, sql: str) -> Decision:
        """A simple-protocol Query: the whole string, every statement in it."""
        try:
            policy = self._policy
            if not self.standard_conforming_strings and "\\" in sql:
                return policy._compiled.unjudgeable(
                    PARSE_ERROR, "a backslash with standard_conforming_strings off cannot be judged")
            key = (sql, self._who)
            decisions = policy._decisions
            cached = decisions.get(key)
            if cached is not None:
                decisions.move_to_end(key)
                policy._hits += 1
                return cached
            return self._judge(sql, key)
        except Exception as exc:  # never let a fault become an allow
            return _internal(exc)

    def parse(self, sql: str, name: str = "") -> Decision:
        """An extended-protocol Parse. A named statement is remembered, so a later SQL-level
        `EXECUTE name` is judged as what it runs. Judge again (same call) at Bind/Execute when
        `policy.version` changed since the Parse."""
        decision = self.query(sql)
        if name:
            if decision.action != Action.BLOCK and decision.facts is not None:
                self.prepared[name] = decision.facts
            else:
                self.prepared.pop(name, None)
        return decision

    def close(self, name: str) -> None:
        """An extended-protocol Close of a named statement."""
        self.prepared.pop(name, None)

    def learn_routines(self, names, rows) -> None:
        """The rows of routine_lookup_sql(names), run in band (see routines.py): judging the
        same statement again takes the bodies into account. Names without rows do not exist
        and are not asked for again."""
        self.routines.learn(names, rows)

    def learn_columns(self, tables, rows) -> None:
        """The rows of column_lookup_sql(tables), run in band (see columnbook.py)."""
        self.columns.learn(tables, rows)

    def _with_routines(self, decision: Decision, routines: tuple[str, ...], quiet: tuple[str, ...] = ()) -> Decision:
        if decision.action == Action.BLOCK:
            return decision
        needed, verdict = self.routines.review(routines, self._policy, self._who, quiet)
        return with_routines(decision, needed, verdict)

    def _with_catalog(self, decision: Decision, statements, tables: tuple[str, ...]) -> Decision:
        """WHERE checks the catalog decides: ask for the tables, or judge with what it says."""
        if decision.action == Action.BLOCK:
            return decision
        needed = self.columns.needed(tables)
        if needed:
            return replace(decision, columns_needed=needed)
        confirmed = self.columns.apply(statements)
        if confirmed is None:
            return decision
        again = self._policy._compiled.judge(confirmed, self.user, groups=self.groups)
        return again if again.action > decision.action else decision

    def _session_bound(self, decision: Decision, statements, routines, tables, quiet=()) -> Decision:
        """A decision that depends on what this session learned from the catalog."""
        if tables:
            decision = self._with_catalog(decision, statements, tables)
        if routines:
            decision = self._with_routines(decision, routines, quiet)
        return decision

    def function(self, name: str | None) -> Decision:
        """A FunctionCall message, by the function's resolved name ("pg_catalog.lo_export");
        judged as `SELECT name(...)`. None or "" (an OID the relay could not resolve): block."""
        try:
            if not name:
                return Decision(Action.BLOCK, UNKNOWN_FUNCTION,
                                "function call by an OID wireproxy could not resolve", (UNKNOWN_FUNCTION,))
            policy = self._policy
            key = ("\x00fastpath", self._who, name)
            cached = policy._decisions.get(key)
            if cached is not None:
                policy._hits += 1
                return cached
            st = StatementFacts("select", functions=frozenset({name}), flags=frozenset({"fastpath"}))
            decision = policy._compiled.judge((st,), self.user, groups=self.groups)
            if not is_builtin_function(name):
                return self._with_routines(decision, (name,))
            return policy._remember(key, decision)
        except Exception as exc:
            return _internal(exc)

    def _judge(self, sql: str, key) -> Decision:
        policy = self._policy
        compiled = policy._compiled
        try:
            facts = policy._facts.get(sql, "postgres")
        except SqlParseError as err:
            decision = compiled.parse_error(err)
            return decision if err.internal else policy._remember(key, decision)
        if facts.stateful:
            decision, prepared = resolve_prepared(compiled, facts, self._who, None, None, self.prepared)
            if decision.action != Action.BLOCK:
                self.prepared = prepared
            statements = decision.facts or ()
            return self._session_bound(decision, statements, routines_of(statements), catalog_tables_of(statements))
        if facts.routines or facts.catalog_tables:   # depends on this session's catalog knowledge
            return self._session_bound(policy._decide(facts, self._who), facts.statements, facts.routines,
                                       facts.catalog_tables, facts.quiet_routines)
        return policy._remember(key, policy._decide(facts, self._who))
