"""The vocabulary of PostgreSQL statements, and the facts of one statement being collected."""

from __future__ import annotations

from wireproxy.policy.facttypes import StatementFacts

MAX_NESTING = 32  # statements inside statements (CTE in DO in EXECUTE string in ...)

_KIND = {
    "SelectStmt": "select", "InsertStmt": "insert", "UpdateStmt": "update",
    "DeleteStmt": "delete", "MergeStmt": "merge", "TruncateStmt": "truncate", "DoStmt": "do",
    "CallStmt": "call", "VariableSetStmt": "set", "TransactionStmt": "transaction",
    "ExplainStmt": "explain", "PrepareStmt": "prepare", "ExecuteStmt": "execute",
    "DefineStmt": "create", "ViewStmt": "create", "IndexStmt": "create", "RuleStmt": "create",
    "CompositeTypeStmt": "create", "ImportForeignSchemaStmt": "create",
    "RenameStmt": "alter", "ReassignOwnedStmt": "alter", "DropOwnedStmt": "drop",
}
_WRITE_KINDS = frozenset({"insert", "update", "delete", "merge", "copy_from", "drop", "truncate",
                          "alter", "create", "grant", "revoke"})
_TARGET_FIELDS = ("relation", "view", "sequence", "table")
_TABLE_OBJECTS = frozenset({"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_INDEX",
                            "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"})
_ROLE_FLAGS = {"superuser": "superuser_role", "bypassrls": "bypassrls_role",
               "isreplication": "replication_role", "replication": "replication_role",
               "createrole": "createrole_role", "createdb": "createdb_role"}
_ROLESPEC = {"ROLESPEC_PUBLIC": "public", "ROLESPEC_CURRENT_USER": "current_user",
             "ROLESPEC_SESSION_USER": "session_user", "ROLESPEC_CURRENT_ROLE": "current_role"}
_FDW_EXTENSIONS = frozenset({"dblink", "postgres_fdw", "file_fdw"})
_FUNC_DEFELEMS = frozenset({"function", "procedure", "sfunc", "finalfunc", "combinefunc",
                            "serialfunc", "deserialfunc", "msfunc", "minvfunc", "mfinalfunc",
                            "restrict", "join", "subtype_diff", "canonical"})
_NOT_NESTED = frozenset({"SelectStmt", "ReturnStmt", "VariableSetStmt", "PLAssignStmt"})
# Nodes with nothing a rule looks at below them: the walk does not descend.
_LEAVES = frozenset({"String", "A_Const", "Integer", "Float", "Boolean", "BitString", "ParamRef",
                     "A_Star", "ColumnRef", "TypeName", "SQLValueFunction", "SetToDefault"})
_TABLE_XML = frozenset({"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema"})



class _Acc:
    """Facts of one statement while they are being collected."""

    __slots__ = ("kind", "via", "tables", "targets", "functions", "roles", "flags",
                 "has_where", "taut", "has_limit", "name", "inner", "_frozen",
                 "reads_all", "copies", "granted", "where_checks", "where_catalog", "catalog_reads", "quiet_calls")

    def __init__(self, kind: str, via: str):
        self.kind = kind
        self.via = via
        self.tables: set[str] = set()
        self.targets: set[str] = set()
        self.functions: set[str] = set()
        self.roles: set[str] = set()
        self.flags: set[str] = set()
        self.has_where = False
        self.taut = False
        self.has_limit = False
        self.name: str | None = None
        self.inner: list[_Acc] = []
        self._frozen: StatementFacts | None = None
        self.reads_all: set[str] = set()
        self.copies: set[str] = set()
        self.granted: set[str] = set()
        self.where_checks: set[str] = set()
        self.where_catalog: tuple = ()
        self.catalog_reads: list[tuple] = []
        self.quiet_calls: set[str] = set()   # functions called where their rows go nowhere

    def freeze(self) -> StatementFacts:
        if self._frozen is None:
            self._frozen = StatementFacts(
                kind=self.kind, tables=frozenset(self.tables), targets=frozenset(self.targets),
                functions=frozenset(self.functions), roles=frozenset(self.roles),
                flags=frozenset(self.flags), has_where=self.has_where,
                tautological_where=self.taut, has_limit=self.has_limit, via=self.via,
                name=self.name, inner=tuple(a.freeze() for a in self.inner),
                reads_all=frozenset(self.reads_all), copies=frozenset(self.copies),
                granted=frozenset(self.granted), where_checks=frozenset(self.where_checks),
                where_catalog=self.where_catalog, catalog_reads=tuple(self.catalog_reads))
        return self._frozen



def _kind_of(key: str, body: dict) -> str:
    kind = _KIND.get(key)
    if kind == "select":
        return "create" if body.get("intoClause") else "select"
    if kind is not None:
        return kind
    if key == "CopyStmt":
        return "copy_from" if body.get("is_from") else "copy_to"
    if key in ("GrantStmt", "GrantRoleStmt"):
        return "grant" if body.get("is_grant") else "revoke"
    if key.startswith("Create"):
        return "create"
    if key.startswith("Alter"):
        return "alter"
    if key.startswith("Drop"):
        return "drop"
    return "other"

