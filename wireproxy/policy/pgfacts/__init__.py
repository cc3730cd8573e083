"""PostgreSQL facts from pglast's C parser output (JSON), never from its Python AST.

`pglast.parser.parse_sql_json` runs libpg_query (PostgreSQL's own grammar) and hands back the
raw parse tree as JSON, 10-17x cheaper than building pglast's Python objects. We walk that tree
with an explicit stack (no recursion on expression depth) and collect what rules look at.

Shape of the JSON: a node behind a `Node *` field is wrapped, `{"DeleteStmt": {...}}`; a field
with a concrete C type (`DeleteStmt.relation` is a `RangeVar *`) is bare, `{"relname": ...}`.
Both are recognised. Identifiers arrive already folded by the grammar (unquoted lower-cased,
quoted and U&"" decoded), string constants already decoded (E'', $$, U&'').

Nested statements get their own facts (see facts.py): a statement node met inside another one
(a CTE, a COPY query, a rule action, a schema element...) is judged on its own; a SELECT inside
another statement belongs to that statement. PL/pgSQL (DO blocks and function bodies) goes
through `parse_plpgsql_json`; each embedded SQL statement and expression is parsed in turn.

WHERE analysis (UPDATE, DELETE, MERGE actions) sorts a condition into outcomes (policy/truth.py): true for
every row (`id = id`, `x OR true`, `NOT (id <> id)`), false for every row, row-independent but
unknown (`$1`, `random() < 2`, `now() > '2000-01-01'`, `(SELECT true)`, a plpgsql variable, a
column of another table in USING/FROM), or row-dependent. The first and the third make the
WHERE "tautological": such a statement reaches every row or none, which is what an unbounded
UPDATE/DELETE rule is about. Inside subqueries an unqualified column is taken to be the row's
(we cannot know the other table's columns without the catalog), so `WHERE EXISTS (SELECT 1
FROM u WHERE x = 1)` counts as row-dependent: a documented limit, not a guess.

Modules: nodes (readers of JSON nodes), consteval (constant expressions), where (WHERE
analysis), acc (statement vocabulary, the facts being collected), walker (the tree walk),
dml and ddl (one handler per statement type), plpgsql (PL/pgSQL bodies), keys (cache keys).
"""

from wireproxy.policy.pgfacts.acc import _KIND, MAX_NESTING  # noqa: F401 (_KIND: the fuzz tests)
from wireproxy.policy.pgfacts.keys import normalized_key, normalized_shareable, shape_key, special_constants
from wireproxy.policy.pgfacts.nodes import parse_pg
from wireproxy.policy.pgfacts.walker import _Extractor, extract_pg  # noqa: F401 (fault injection)
from wireproxy.policy.pgfacts.where import _Truth  # noqa: F401 (fault injection in the fuzz tests)

__all__ = ["MAX_NESTING", "extract_pg", "normalized_key", "normalized_shareable", "parse_pg",
           "shape_key", "special_constants"]
