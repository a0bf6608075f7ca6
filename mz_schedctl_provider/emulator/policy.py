"""Analysis of ordinary SQL on its way to PostgreSQL: what Materialize would refuse, how the
statement may share a transaction, and which cluster it needs.

Decisions (documented for the README):

* ``needs_cluster`` is true when the statement reads a relation outside the catalog schemas
  (pg_catalog, mz_catalog, mz_internal, information_schema, mz_emulator): SELECT/UPDATE/DELETE
  of user relations, INSERT ... SELECT from them. A SELECT without FROM (``SELECT 1``,
  ``SELECT now()``) is a constant query: Materialize answers it without a replica, so false.
  DDL and constant INSERTs are false too (no compute involved).
* ``catalog_only`` is true when the statement reads relations and all of them are catalog
  relations (logged as run on mz_catalog_server, s2).
* Unqualified relation names count as catalog relations when they name an mz_catalog relation
  the emulator defines or start with ``pg_`` (pg_catalog is always searched); CTE names are not
  relations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.enums import ConstrType, LockClauseStrength
from pglast.parser import ParseError

from . import catalog
from . import mzsql as m
from .errors import MzError

CATALOG_SCHEMAS = frozenset(
    {"pg_catalog", "mz_catalog", "mz_internal", "information_schema", "mz_emulator"}
)
# Functions Materialize does not have: a call is "function ... does not exist" there.
MISSING_FUNCTIONS = frozenset(
    {
        "nextval",
        "setval",
        "currval",
        "lastval",
        "jsonb_set",
        "jsonb_set_lax",
        "jsonb_insert",
        "pg_notify",
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_advisory_unlock",
        "pg_advisory_unlock_shared",
        "pg_advisory_unlock_all",
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
    }
)
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
CONTROL_STATEMENTS = (
    ast.TransactionStmt,
    ast.VariableSetStmt,
    ast.DiscardStmt,
    ast.DeallocateStmt,
    ast.PrepareStmt,
)
READ_STATEMENTS = (ast.SelectStmt, ast.VariableShowStmt, ast.ExplainStmt)


@dataclass(frozen=True)
class Analysis:
    sql: str
    txn_class: str  # 'read' | 'write' | 'single' | 'control'
    needs_cluster: bool
    catalog_only: bool
    calls_emulator: bool
    error: MzError | None


def _unsupported(feature: str) -> MzError:
    return MzError(f"{feature} is not supported", sqlstate="0A000")


# ---------------------------------------------------------------------------------------------
# Splitting and rewriting (token based)
# ---------------------------------------------------------------------------------------------


def split(sql: str) -> list[str]:
    """The statements of a simple-query string, each with its original text (no semicolon)."""
    tokens = m.tokenize(sql)
    statements: list[str] = []
    start: int | None = None
    last_end = 0
    for tok in tokens:
        if tok.kind == m.OP and tok.value == ";":
            if start is not None:
                statements.append(sql[start:last_end].strip())
            start = None
            continue
        if start is None:
            start = tok.start
        last_end = tok.end
    if start is not None:
        statements.append(sql[start:last_end].strip())
    return statements


_CLOCK_KEYWORDS = {
    "current_timestamp": "now()",
    "localtimestamp": "now()::timestamp",
    "current_date": "now()::date",
    "current_time": "now()::timetz",
    "localtime": "now()::time",
}


def rewrite_clock_keywords(sql: str) -> str:
    """CURRENT_TIMESTAMP & co. are keywords PostgreSQL never resolves through the search path;
    rewrite them (by token position) to now(), which follows the emulator clock. A precision
    argument (CURRENT_TIMESTAMP(3)) is dropped."""
    try:
        tokens = m.tokenize(sql)
    except MzError:
        return sql
    out: list[str] = []
    last = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        replacement = _CLOCK_KEYWORDS.get(tok.value) if tok.kind == m.WORD else None
        if replacement is None:
            i += 1
            continue
        end = tok.end
        nxt = tokens[i + 1 : i + 4]
        if (
            len(nxt) == 3
            and nxt[0].value == "("
            and nxt[1].kind == m.NUMBER
            and nxt[2].value == ")"
        ):
            end = nxt[2].end
            i += 3
        out.append(sql[last : tok.start])
        out.append(replacement)
        last = end
        i += 1
    out.append(sql[last:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# AST walking
# ---------------------------------------------------------------------------------------------


def _walk(node: object) -> Iterator[ast.Node]:
    if isinstance(node, ast.Node):
        yield node
        for attr in getattr(type(node), "__slots__", ()):
            yield from _walk(getattr(node, attr, None))
    elif isinstance(node, (tuple, list)):
        for child in node:
            yield from _walk(child)


def _names(items: object) -> list[str]:
    """The string parts of a pglast name list (qualified names, type names)."""
    if not isinstance(items, (tuple, list)):
        return []
    return [n.sval for n in items if isinstance(n, ast.String) and n.sval is not None]


def _func_name(call: ast.FuncCall) -> tuple[str | None, str]:
    parts = _names(call.funcname)
    if len(parts) >= 2:
        return parts[-2], parts[-1]
    return None, parts[-1] if parts else ""


def _cte_names(root: ast.Node) -> set[str]:
    names: set[str] = set()
    for node in _walk(root):
        if isinstance(node, ast.CommonTableExpr) and node.ctename:
            names.add(node.ctename)
    return names


def _is_catalog_relation(rv: ast.RangeVar) -> bool:
    if rv.schemaname:
        return rv.schemaname in CATALOG_SCHEMAS
    name = rv.relname or ""
    return name in catalog.MZ_CATALOG_RELATIONS or name.startswith("pg_")


def _arg_type(arg: object) -> str:
    if isinstance(arg, ast.TypeCast) and arg.typeName is not None:
        names = _names(arg.typeName.names)
        return names[-1] if names else "unknown"
    if isinstance(arg, ast.A_Const):
        val = arg.val
        if isinstance(val, ast.Integer):
            return "integer"
        if isinstance(val, ast.Float):
            return "numeric"
        if isinstance(val, ast.Boolean):
            return "boolean"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


def _constraint_error(constraint: ast.Constraint) -> MzError | None:
    ct = ConstrType
    kind = constraint.contype
    if kind in (ct.CONSTR_PRIMARY, ct.CONSTR_UNIQUE):
        return _unsupported("CREATE TABLE with a primary key or unique constraint")
    if kind == ct.CONSTR_CHECK:
        return _unsupported("CREATE TABLE with a check constraint")
    if kind == ct.CONSTR_FOREIGN:
        return _unsupported("CREATE TABLE with a foreign key")
    if kind == ct.CONSTR_EXCLUSION:
        return _unsupported("CREATE TABLE with an exclusion constraint")
    if kind == ct.CONSTR_IDENTITY:
        return _unsupported("CREATE TABLE with an identity column")
    if kind == ct.CONSTR_GENERATED:
        return _unsupported("CREATE TABLE with a generated column")
    return None


def _create_table_error(stmt: ast.CreateStmt) -> MzError | None:
    for elt in stmt.tableElts or ():
        if isinstance(elt, ast.Constraint):
            if err := _constraint_error(elt):
                return err
        elif isinstance(elt, ast.ColumnDef):
            type_names = _names(elt.typeName.names) if elt.typeName else []
            if type_names and type_names[-1].lower() in SERIAL_TYPES:
                return MzError(f'type "{type_names[-1]}" does not exist', sqlstate="42704")
            for constraint in elt.constraints or ():
                if err := _constraint_error(constraint):
                    return err
    if stmt.inhRelations:
        return _unsupported("CREATE TABLE ... INHERITS")
    if stmt.partspec is not None:
        return _unsupported("CREATE TABLE ... PARTITION BY")
    return None


_STATEMENT_REFUSALS: dict[type, str] = {
    ast.CreateSeqStmt: "CREATE SEQUENCE",
    ast.AlterSeqStmt: "ALTER SEQUENCE",
    ast.ListenStmt: "LISTEN",
    ast.UnlistenStmt: "UNLISTEN",
    ast.NotifyStmt: "NOTIFY",
    ast.CreateTrigStmt: "CREATE TRIGGER",
    ast.CreateEventTrigStmt: "CREATE EVENT TRIGGER",
    ast.DoStmt: "DO",
    ast.CallStmt: "CALL",
    ast.RuleStmt: "CREATE RULE",
    ast.LockStmt: "LOCK TABLE",
}


def _write_target(stmt: ast.Node) -> ast.RangeVar | None:
    if isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
        return stmt.relation
    if isinstance(stmt, ast.CreateStmt):
        return stmt.relation
    return None


def _is_protected(rv: ast.RangeVar) -> bool:
    if rv.schemaname:
        return rv.schemaname in CATALOG_SCHEMAS
    name = rv.relname or ""
    return name in catalog.MZ_CATALOG_RELATIONS


def _refusal(stmt: ast.Node) -> MzError | None:
    for kind, feature in _STATEMENT_REFUSALS.items():
        if isinstance(stmt, kind):
            return _unsupported(feature)
    if isinstance(stmt, ast.CreateFunctionStmt):
        return _unsupported("CREATE PROCEDURE" if stmt.is_procedure else "CREATE FUNCTION")
    if isinstance(stmt, ast.CreateStmt) and (err := _create_table_error(stmt)):
        return err
    if isinstance(stmt, ast.InsertStmt) and stmt.onConflictClause is not None:
        return _unsupported("INSERT ... ON CONFLICT")
    target = _write_target(stmt)
    if target is not None and _is_protected(target):
        schema = target.schemaname or "mz_catalog"
        if isinstance(stmt, ast.CreateStmt):
            return MzError(f"system schema '{schema}' cannot be modified")
        return MzError(f"system item '{schema}.{target.relname}' cannot be modified")
    is_write = isinstance(stmt, (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt))
    for node in _walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            strength = _locking_name(node.lockingClause[0])
            return _unsupported(f"SELECT ... {strength}")
        if isinstance(node, ast.FuncCall):
            func_schema, func = _func_name(node)
            if func_schema in (None, "pg_catalog") and func in MISSING_FUNCTIONS:
                types = ", ".join(_arg_type(a) for a in node.args or ())
                return MzError(f"function {func}({types}) does not exist", sqlstate="42883")
            if is_write and func == "mz_now" and func_schema in (None, "mz_catalog"):
                return MzError(
                    "calls to mz_now in write statements are not supported", sqlstate="0A000"
                )
    return None


def _locking_name(clause: object) -> str:
    strength = getattr(clause, "strength", None)
    names = {
        LockClauseStrength.LCS_FORKEYSHARE: "FOR KEY SHARE",
        LockClauseStrength.LCS_FORSHARE: "FOR SHARE",
        LockClauseStrength.LCS_FORNOKEYUPDATE: "FOR NO KEY UPDATE",
        LockClauseStrength.LCS_FORUPDATE: "FOR UPDATE",
    }
    return names.get(strength, "FOR UPDATE")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------


def _is_constant_values(select: object) -> bool:
    """INSERT ... VALUES whose rows read no relation (no sub-queries, no column references)."""
    if not isinstance(select, ast.SelectStmt) or not select.valuesLists:
        return False
    return not any(isinstance(n, (ast.SubLink, ast.ColumnRef)) for n in _walk(select.valuesLists))


def _txn_class(stmt: ast.Node) -> str:
    if isinstance(stmt, CONTROL_STATEMENTS):
        return "control"
    if isinstance(stmt, ast.SelectStmt):
        return "single" if stmt.intoClause is not None else "read"
    if isinstance(stmt, READ_STATEMENTS):
        return "read"
    if isinstance(stmt, ast.InsertStmt) and _is_constant_values(stmt.selectStmt):
        return "write"
    return "single"


def _read_relations(stmt: ast.Node) -> list[ast.RangeVar]:
    """Relations a statement reads (INSERT's target is written, not read)."""
    ctes = _cte_names(stmt)
    skip: set[int] = set()
    if isinstance(stmt, ast.InsertStmt) and stmt.relation is not None:
        skip.add(id(stmt.relation))
    if not isinstance(stmt, (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)):
        return []
    return [
        node
        for node in _walk(stmt)
        if isinstance(node, ast.RangeVar)
        and id(node) not in skip
        and not (node.schemaname is None and node.relname in ctes)
    ]


def _calls_emulator(stmt: ast.Node) -> bool:
    return any(
        isinstance(node, ast.FuncCall) and _func_name(node)[0] == "mz_emulator"
        for node in _walk(stmt)
    )


def analyze(sql: str) -> Analysis:
    """Classify one statement (text as split by ``split``) for the proxy."""
    rewritten = rewrite_clock_keywords(sql)
    try:
        parsed = parse_sql(sql)
    except ParseError:
        # PostgreSQL reports the syntax error; Materialize's transaction rules never see a
        # statement it cannot parse, so it takes no transaction class.
        return Analysis(rewritten, "control", False, False, False, None)
    if not parsed:
        return Analysis(rewritten, "control", False, False, False, None)
    stmt = parsed[0].stmt
    assert stmt is not None
    if isinstance(stmt, ast.ExplainStmt) and stmt.query is not None:
        inner: ast.Node = stmt.query
    else:
        inner = stmt
    relations = _read_relations(inner)
    user_relations = [rv for rv in relations if not _is_catalog_relation(rv)]
    return Analysis(
        sql=rewritten,
        txn_class=_txn_class(stmt),
        needs_cluster=bool(user_relations),
        catalog_only=bool(relations) and not user_relations,
        calls_emulator=_calls_emulator(stmt),
        error=_refusal(stmt),
    )
