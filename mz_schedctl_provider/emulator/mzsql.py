"""Recursive-descent parser for the Materialize-only statements the emulator handles.

The parser only recognises the statements Materialize has and PostgreSQL lacks (cluster DDL,
indexes/materialized views/sources/sinks on clusters, cluster session variables, ALTER SYSTEM);
anything else yields ``None`` so the caller passes it through to PostgreSQL.

Lexing (PostgreSQL's own) lives in ``mzlex``, the statement objects in ``mzast``, the token
cursor (helpers and option lists) in ``mzcursor``; their public names stay importable from here.
"""

from __future__ import annotations

from .errors import MzError
from .mzast import (
    SESSION_VARS,
    SYSTEM_VARS,
    AlterCluster,
    AlterSystem,
    CreateCluster,
    CreateClusterReplica,
    CreateIndex,
    CreateMaterializedView,
    CreateSink,
    CreateSource,
    DropCluster,
    DropClusterReplica,
    DropItems,
    Option,
    OptionValue,
    QualifiedName,
    ReplicaDef,
    ResetVariable,
    SetVariable,
    ShowClusterReplicas,
    ShowClusters,
    ShowVariable,
    Statement,
)
from .mzcursor import TokenCursor
from .mzlex import (
    IDENT,
    NUMBER,
    OP,
    PARAM,
    STRING,
    WORD,
    Tok,
    decode_string,
    quote_ident,
    redact,
    tokenize,
)

__all__ = [
    "IDENT",
    "NUMBER",
    "OP",
    "PARAM",
    "SESSION_VARS",
    "STRING",
    "SYSTEM_VARS",
    "WORD",
    "AlterCluster",
    "AlterSystem",
    "CreateCluster",
    "CreateClusterReplica",
    "CreateIndex",
    "CreateMaterializedView",
    "CreateSink",
    "CreateSource",
    "DropCluster",
    "DropClusterReplica",
    "DropItems",
    "Option",
    "OptionValue",
    "QualifiedName",
    "ReplicaDef",
    "ResetVariable",
    "SetVariable",
    "ShowClusterReplicas",
    "ShowClusters",
    "ShowVariable",
    "Statement",
    "Tok",
    "decode_string",
    "parse_statement",
    "quote_ident",
    "redact",
    "tokenize",
]

_LOAD_GENERATORS = {"counter", "auction", "marketing", "tpch", "datums", "clock", "key"}


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


class _Parser(TokenCursor):
    """The statement grammar: one method per statement family, over the shared cursor."""

    # -- statements ---------------------------------------------------------------------------

    def statement(self) -> Statement | None:
        if self.accept_words("create"):
            return self.create()
        if self.accept_words("drop"):
            return self.drop()
        if self.accept_words("alter"):
            if self.accept_words("cluster"):
                return self.alter_cluster()
            if self.accept_words("system"):
                return self.alter_system()
            return None
        if self.accept_words("set"):
            return self.set_var()
        if self.accept_words("reset"):
            return self.reset_var()
        if self.accept_words("show"):
            return self.show()
        return None

    def create(self) -> Statement | None:
        if self.accept_words("cluster"):
            if self.is_word("replica") and not self.is_op("(", offset=1) and self.peek(1):
                self.pos += 1
                return self.create_cluster_replica()
            return self.create_cluster()
        or_replace = self.accept_words("or", "replace")
        if self.accept_words("materialized", "view"):
            return self.create_materialized_view(or_replace)
        if or_replace:
            return None
        if self.is_word("default") and self.is_word("index", offset=1):
            self.pos += 2
            return self.create_index(default=True)
        if self.accept_words("index"):
            return self.create_index(default=False)
        if self.accept_words("source"):
            return self.create_source()
        if self.accept_words("sink"):
            return self.create_sink()
        return None

    def create_cluster(self) -> CreateCluster:
        name = self.ident()
        if self.accept_words("replicas"):
            replicas = self.replica_defs()
            options = self.option_list() if self.is_op("(") else []
            self.expect_end()
            return CreateCluster(name, options, replicas)
        options = self.option_list() if self.is_op("(") else []
        self.expect_end()
        return CreateCluster(name, options, None)

    def replica_defs(self) -> list[ReplicaDef]:
        self.expect_op("(")
        defs: list[ReplicaDef] = []
        if self.accept_op(")"):
            return defs
        while True:
            name = self.ident()
            options = self.option_list() if self.is_op("(") else []
            defs.append(ReplicaDef(name, options))
            if self.accept_op(")"):
                return defs
            self.expect_op(",")

    def create_cluster_replica(self) -> CreateClusterReplica:
        cluster = self.ident()
        self.expect_op(".")
        name = self.ident()
        if self.is_op("("):
            options = self.option_list()
        else:  # legacy form without parentheses: SIZE = 'x', ...
            options = []
            while not self.at_end():
                opt_name = self.option_name()
                self.accept_op("=")
                options.append(Option(opt_name, self.option_value()))
                if not self.accept_op(","):
                    break
        self.expect_end()
        return CreateClusterReplica(cluster, name, options)

    def create_index(self, *, default: bool) -> CreateIndex:
        if_not_exists = self.if_not_exists()
        name: str | None = None
        if not self.is_word("on") and not (
            self.is_word("in") and self.is_word("cluster", offset=1)
        ):
            name = self.ident()
        cluster = self.in_cluster()
        self.expect_words("on")
        on = self.qualified_name()
        if self.accept_words("using"):
            self.ident()
        columns: list[str] = []
        if self.is_op("("):
            columns = self.paren_items()
        elif not default:
            raise self.fail("(")
        self.expect_end()
        return CreateIndex(name, default, cluster, on, columns, if_not_exists, self.sql)

    def paren_items(self) -> list[str]:
        """Raw source text of each top-level comma-separated item inside parentheses."""
        self.expect_op("(")
        depth = 1
        items: list[str] = []
        item_start: int | None = None
        while True:
            tok = self.peek()
            if tok is None:
                raise self.fail(")")
            self.pos += 1
            if tok.kind == OP and tok.value == "(":
                depth += 1
            elif tok.kind == OP and tok.value == ")":
                depth -= 1
                if depth == 0:
                    if item_start is not None:
                        items.append(self.sql[item_start : tok.start].strip())
                    return items
            elif tok.kind == OP and tok.value == "," and depth == 1:
                if item_start is not None:
                    items.append(self.sql[item_start : tok.start].strip())
                item_start = None
                continue
            if item_start is None:
                item_start = tok.start

    def create_materialized_view(self, or_replace: bool) -> CreateMaterializedView:
        if_not_exists = self.if_not_exists()
        name = self.qualified_name()
        if self.is_op("("):  # column list: kept in the query text by PostgreSQL semantics
            raise MzError(
                "CREATE MATERIALIZED VIEW with a column list is not supported by the emulator",
                sqlstate="0A000",
            )
        cluster = self.in_cluster()
        if self.accept_words("with"):
            self.option_list()
        self.expect_words("as")
        query = self.rest_text()
        if not query:
            raise self.fail("SELECT")
        return CreateMaterializedView(name, cluster, query, if_not_exists, or_replace, self.sql)

    def create_source(self) -> CreateSource:
        if_not_exists = self.if_not_exists()
        name = self.qualified_name()
        cluster = self.in_cluster()
        self.expect_words("from")
        generator = None
        if self.accept_words("load", "generator"):
            source_type = "load-generator"
            generator = self.ident().lower()
            if generator not in _LOAD_GENERATORS:
                raise self.fail("one of AUCTION, CLOCK, COUNTER, DATUMS, KEY, MARKETING or TPCH")
        elif self.accept_words("sql", "server"):
            source_type = "sql-server"
        elif self.is_word("kafka", "postgres", "mysql", "webhook"):
            source_type = self.ident()
        else:
            raise self.fail("one of KAFKA, LOAD, MYSQL, POSTGRES, SQL or WEBHOOK")
        # The remaining clauses (connection, formats, FOR ALL TABLES...) only shape data the
        # emulator does not produce; they are kept in create_sql.
        return CreateSource(name, cluster, source_type, generator, if_not_exists, self.sql)

    def create_sink(self) -> CreateSink:
        if_not_exists = self.if_not_exists()
        name = self.qualified_name()
        cluster = self.in_cluster()
        self.expect_words("from")
        from_name = self.qualified_name()
        self.expect_words("into")
        sink_type = self.ident()
        return CreateSink(name, cluster, from_name, sink_type, if_not_exists, self.sql)

    def drop(self) -> Statement | None:
        if self.accept_words("cluster"):
            if self.accept_words("replica"):
                return self.drop_cluster_replica()
            if_exists = self.if_exists()
            clusters = [self.ident()]
            while self.accept_op(","):
                clusters.append(self.ident())
            cascade = self.cascade()
            self.expect_end()
            return DropCluster(clusters, if_exists, cascade)
        kind = None
        if self.accept_words("index"):
            kind = "index"
        elif self.accept_words("materialized", "view"):
            kind = "materialized-view"
        elif self.accept_words("source"):
            kind = "source"
        elif self.accept_words("sink"):
            kind = "sink"
        if kind is None:
            return None
        if_exists = self.if_exists()
        names = [self.qualified_name()]
        while self.accept_op(","):
            names.append(self.qualified_name())
        cascade = self.cascade()
        self.expect_end()
        return DropItems(kind, names, if_exists, cascade)

    def drop_cluster_replica(self) -> DropClusterReplica:
        if_exists = self.if_exists()
        targets = []
        while True:
            cluster = self.ident()
            self.expect_op(".")
            targets.append((cluster, self.ident()))
            if not self.accept_op(","):
                break
        self.cascade()
        self.expect_end()
        return DropClusterReplica(targets, if_exists)

    def alter_cluster(self) -> AlterCluster:
        if self.is_word("replica"):
            raise MzError(
                "ALTER CLUSTER REPLICA is not supported by the emulator", sqlstate="0A000"
            )
        if_exists = self.if_exists()
        name = self.ident()
        if self.accept_words("rename", "to"):
            new_name = self.ident()
            self.expect_end()
            return AlterCluster(name, if_exists, "rename", new_name=new_name)
        if self.accept_words("set"):
            options = self.option_list()
            with_options = self.option_list() if self.accept_words("with") else []
            self.expect_end()
            return AlterCluster(name, if_exists, "set", options=options, with_options=with_options)
        if self.accept_words("reset"):
            self.expect_op("(")
            reset = [self.option_name()]
            while self.accept_op(","):
                reset.append(self.option_name())
            self.expect_op(")")
            self.expect_end()
            return AlterCluster(name, if_exists, "reset", reset=reset)
        raise self.fail("one of OWNER, RENAME, RESET or SET")

    def alter_system(self) -> AlterSystem:
        if self.accept_words("reset"):
            name = "all" if self.accept_words("all") else self.ident().lower()
            self.expect_end()
            return AlterSystem(name, None)
        self.expect_words("set")
        name = self.ident().lower()
        if not (self.accept_op("=") or self.accept_words("to")):
            raise self.fail("equals sign or TO")
        values = self.value_list()
        self.expect_end()
        return AlterSystem(name, values)

    def value_list(self) -> list[str] | None:
        """A SET value: DEFAULT (None) or a comma list of words, identifiers, strings, numbers."""
        if (self.is_word("default") and self.peek(1) is None) or (
            self.is_word("default") and self.is_op(";", offset=1)
        ):
            self.pos += 1
            return None
        values: list[str] = []
        while True:
            tok = self.peek()
            if tok is None or (tok.kind == OP and tok.value != "-"):
                raise self.fail("variable value")
            if tok.kind == OP:  # negative number
                self.pos += 1
                nxt = self.peek()
                if nxt is None or nxt.kind != NUMBER:
                    raise self.fail("number")
                values.append("-" + nxt.value)
            else:
                values.append(tok.value)
            self.pos += 1
            if not self.accept_op(","):
                return values

    def set_var(self) -> Statement | None:
        local = False
        if self.accept_words("session"):
            pass
        elif self.accept_words("local"):
            local = True
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, IDENT) or tok.value.lower() not in SESSION_VARS:
            return None
        name = tok.value.lower()
        self.pos += 1
        if not (self.accept_op("=") or self.accept_words("to")):
            raise self.fail("equals sign or TO")
        values = self.value_list()
        self.expect_end()
        if values is not None and len(values) != 1:
            raise MzError(f'parameter "{name}" cannot have multiple values', sqlstate="22023")
        return SetVariable(name, None if values is None else values[0], local)

    def reset_var(self) -> Statement | None:
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, IDENT) or tok.value.lower() not in SESSION_VARS:
            return None
        self.pos += 1
        self.expect_end()
        return ResetVariable(tok.value.lower())

    def show(self) -> Statement | None:
        if self.accept_words("clusters"):
            self.expect_end()
            return ShowClusters()
        if self.is_word("cluster") and self.is_word("replicas", offset=1):
            self.pos += 2
            self.expect_end()
            return ShowClusterReplicas()
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, IDENT):
            return None
        name = tok.value.lower()
        if name not in SESSION_VARS and name not in SYSTEM_VARS:
            return None
        self.pos += 1
        self.expect_end()
        return ShowVariable(name)


def parse_statement(sql: str) -> Statement | None:
    """Parse one statement; None when it is not a Materialize-only statement."""
    tokens = tokenize(sql)
    if not tokens:
        return None
    return _Parser(sql, tokens).statement()
