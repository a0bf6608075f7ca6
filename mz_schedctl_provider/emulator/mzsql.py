"""Tokenizer and recursive-descent parser for the Materialize-only statements the emulator handles.

Lexing is PostgreSQL's own (``pglast.parser.scan``), so quoting rules are exactly the server's:
quoted identifiers with ``""`` escapes, unicode, ``''`` in strings, E'' and dollar quoting. The
parser only recognises the statements Materialize has and PostgreSQL lacks (cluster DDL,
indexes/materialized views/sources/sinks on clusters, cluster session variables, ALTER SYSTEM);
anything else yields ``None`` so the caller passes it through to PostgreSQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from pglast.parser import ParseError, scan

from .errors import MzError

# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

WORD = "word"  # keyword or unquoted identifier, lower-cased
IDENT = "ident"  # quoted identifier, exact
STRING = "string"  # decoded string constant
NUMBER = "number"
OP = "op"  # punctuation and operators, by text
PARAM = "param"


@dataclass(frozen=True)
class Tok:
    kind: str
    value: str
    start: int  # character offset in the statement text
    end: int  # exclusive


_SKIPPED = {"SQL_COMMENT", "C_COMMENT"}
_SIMPLE_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _decode_quoted_ident(text: str) -> str:
    return text[1:-1].replace('""', '"')


def _decode_unicode_escapes(body: str, escape: str = "\\") -> str:
    """Decode U&'...'/U&"..." bodies: \\XXXX and \\+XXXXXX code points."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == escape and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == escape:
                out.append(escape)
                i += 2
                continue
            if nxt == "+":
                out.append(chr(int(body[i + 2 : i + 8], 16)))
                i += 8
                continue
            out.append(chr(int(body[i + 1 : i + 5], 16)))
            i += 5
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _decode_e_string(body: str) -> str:
    """Decode the body of an E'...' constant (backslash escapes, '' quotes)."""
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "'" and body[i + 1 : i + 2] == "'":
            out.append("'")
            i += 2
        elif ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _SIMPLE_ESCAPES:
                out.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            elif nxt == "x" and (m := re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2 :])):
                out.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
            elif nxt == "u":
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
            elif nxt == "U":
                out.append(chr(int(body[i + 2 : i + 10], 16)))
                i += 10
            elif nxt in "01234567" and (m := re.match(r"[0-7]{1,3}", body[i + 1 :])):
                out.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
            else:
                out.append(nxt)
                i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def decode_string(text: str) -> str:
    """The value of a PostgreSQL string constant as written in the source."""
    if text.startswith("$"):
        tag_end = text.index("$", 1) + 1
        return text[tag_end : len(text) - tag_end]
    head = text[:2].lower()
    if head == "e'":
        return _decode_e_string(text[2:-1])
    if head == "u&":
        return _decode_unicode_escapes(text[3:-1].replace("''", "'"))
    if head in ("b'", "x'", "n'"):
        return text[2:-1].replace("''", "'")
    return text[1:-1].replace("''", "'")


def _make_token(sql: str, name: str, kind: str, start: int, end: int) -> Tok | None:
    text = sql[start:end]
    if name in _SKIPPED:
        return None
    if name == "IDENT":
        if text.startswith('"'):
            return Tok(IDENT, _decode_quoted_ident(text), start, end)
        return Tok(WORD, text.lower(), start, end)
    if name == "UIDENT":
        return Tok(IDENT, _decode_unicode_escapes(text[3:-1].replace('""', '"')), start, end)
    if name in ("SCONST", "USCONST", "BCONST", "XCONST"):
        return Tok(STRING, decode_string(text), start, end)
    if name in ("ICONST", "FCONST"):
        return Tok(NUMBER, text, start, end)
    if name == "PARAM":
        return Tok(PARAM, text, start, end)
    if kind != "NO_KEYWORD":
        return Tok(WORD, text.lower(), start, end)
    return Tok(OP, text, start, end)


def tokenize(sql: str) -> list[Tok]:
    """PostgreSQL lexical tokens of ``sql`` (comments dropped); lexical errors become MzError."""
    try:
        raw = scan(sql)
    except ParseError as exc:
        raise MzError(str(exc), sqlstate="42601") from exc
    tokens: list[Tok] = []
    for t in raw:
        tok = _make_token(sql, t.name, t.kind, t.start, t.end + 1)
        if tok is not None:
            tokens.append(tok)
    return tokens


# ---------------------------------------------------------------------------------------------
# Statement objects
# ---------------------------------------------------------------------------------------------


@dataclass
class OptionValue:
    """A WITH/option-list value: a string, number, bool, word phrase and/or nested option list."""

    text: str | None = None  # string/number text or word phrase ("on refresh", "manual")
    kind: str = "none"  # 'string' | 'number' | 'words' | 'list' | 'none'
    options: list[Option] | None = None  # nested list, e.g. ON REFRESH (...)
    values: list[str] = field(default_factory=list)  # for comma lists (ALTER SYSTEM)


@dataclass
class Option:
    name: str  # lower-case, words joined by one space: "replication factor"
    value: OptionValue


QualifiedName = tuple[str, ...]


@dataclass
class ReplicaDef:
    name: str
    options: list[Option]


@dataclass
class CreateCluster:
    name: str
    options: list[Option]
    replicas: list[ReplicaDef] | None  # None: managed form


@dataclass
class CreateClusterReplica:
    cluster: str
    name: str
    options: list[Option]


@dataclass
class DropCluster:
    names: list[str]
    if_exists: bool
    cascade: bool


@dataclass
class DropClusterReplica:
    targets: list[tuple[str, str]]
    if_exists: bool


@dataclass
class AlterCluster:
    name: str
    if_exists: bool
    action: str  # 'set' | 'reset' | 'rename'
    options: list[Option] = field(default_factory=list)
    reset: list[str] = field(default_factory=list)
    with_options: list[Option] = field(default_factory=list)
    new_name: str | None = None


@dataclass
class SetVariable:
    name: str
    value: str | None  # None: DEFAULT
    local: bool = False


@dataclass
class ResetVariable:
    name: str


@dataclass
class ShowVariable:
    name: str


@dataclass
class ShowClusters:
    pass


@dataclass
class ShowClusterReplicas:
    pass


@dataclass
class AlterSystem:
    name: str
    values: list[str] | None  # None: RESET / DEFAULT


@dataclass
class CreateIndex:
    name: str | None
    default: bool
    cluster: str | None
    on: QualifiedName
    columns: list[str]
    if_not_exists: bool
    sql: str


@dataclass
class CreateMaterializedView:
    name: QualifiedName
    cluster: str | None
    query: str
    if_not_exists: bool
    or_replace: bool
    sql: str


@dataclass
class CreateSource:
    name: QualifiedName
    cluster: str | None
    source_type: str  # 'load-generator' | 'kafka' | 'postgres' | ...
    generator: str | None  # COUNTER, AUCTION, ... for load generators
    if_not_exists: bool
    sql: str


@dataclass
class CreateSink:
    name: QualifiedName
    cluster: str | None
    from_name: QualifiedName
    sink_type: str
    if_not_exists: bool
    sql: str


@dataclass
class DropItems:
    kind: str  # 'index' | 'materialized-view' | 'source' | 'sink'
    names: list[QualifiedName]
    if_exists: bool
    cascade: bool


Statement = Union[  # noqa: UP007 - a runtime alias; `|` of many classes reads worse
    CreateCluster,
    CreateClusterReplica,
    DropCluster,
    DropClusterReplica,
    AlterCluster,
    SetVariable,
    ResetVariable,
    ShowVariable,
    ShowClusters,
    ShowClusterReplicas,
    AlterSystem,
    CreateIndex,
    CreateMaterializedView,
    CreateSource,
    CreateSink,
    DropItems,
]

# Session variables the emulator owns; SET/RESET/SHOW of other names go to PostgreSQL.
SESSION_VARS = frozenset({"cluster", "cluster_replica", "statement_logging_sample_rate"})
# System variables (ALTER SYSTEM / SHOW); values live in mz_emulator.settings.
SYSTEM_VARS = frozenset(
    {
        "statement_logging_max_sample_rate",
        "statement_logging_default_sample_rate",
        "allowed_cluster_replica_sizes",
        "max_replicas_per_cluster",
    }
)

# Multi-word option names, longest first so "auto scaling strategy" wins over shorter prefixes.
_OPTION_NAMES = sorted(
    (
        tuple(n.split())
        for n in (
            "size",
            "replication factor",
            "managed",
            "schedule",
            "auto scaling strategy",
            "disk",
            "introspection interval",
            "introspection debugging",
            "availability zone",
            "availability zones",
            "workload class",
            "internal",
            "billed as",
            "hydration time estimate",
            "on hydration",
            "hydration size",
            "linger duration",
            "wait until ready",
            "wait for",
            "timeout",
            "on timeout",
            "tick interval",
            "as of",
            "up to",
            "scale factor",
            "max cardinality",
            "keys",
            "retain history",
        )
    ),
    key=len,
    reverse=True,
)

_LOAD_GENERATORS = {"counter", "auction", "marketing", "tpch", "datums", "clock", "key"}


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, sql: str, tokens: list[Tok]) -> None:
        self.sql = sql
        self.toks = tokens
        self.pos = 0

    # -- token helpers ------------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Tok | None:
        i = self.pos + offset
        return self.toks[i] if i < len(self.toks) else None

    def at_end(self) -> bool:
        tok = self.peek()
        return tok is None or (tok.kind == OP and tok.value == ";")

    def is_word(self, *words: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == WORD and tok.value in words

    def is_op(self, op: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == OP and tok.value == op

    def accept_words(self, *words: str) -> bool:
        """Consume the exact word sequence if present."""
        for i, w in enumerate(words):
            if not self.is_word(w, offset=i):
                return False
        self.pos += len(words)
        return True

    def accept_op(self, op: str) -> bool:
        if self.is_op(op):
            self.pos += 1
            return True
        return False

    def found(self) -> str:
        tok = self.peek()
        if tok is None or (tok.kind == OP and tok.value == ";"):
            return "EOF"
        return self.sql[tok.start : tok.end]

    def fail(self, expected: str) -> MzError:
        return MzError(f"Expected {expected}, found {self.found()}", sqlstate="42601")

    def expect_words(self, *words: str) -> None:
        if not self.accept_words(*words):
            raise self.fail(" ".join(w.upper() for w in words))

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.fail(op)

    def expect_end(self) -> None:
        self.accept_op(";")
        if self.peek() is not None:
            raise self.fail("end of statement")

    def ident(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, IDENT):
            raise self.fail("identifier")
        self.pos += 1
        return tok.value

    def qualified_name(self) -> QualifiedName:
        parts = [self.ident()]
        while self.accept_op("."):
            parts.append(self.ident())
        if len(parts) > 3:
            raise MzError(
                f"qualified name did not have between 1 and 3 components: {'.'.join(parts)}",
                sqlstate="42601",
            )
        return tuple(parts)

    def rest_text(self) -> str:
        """Source text from the current token to the end (minus a trailing semicolon)."""
        tok = self.peek()
        if tok is None:
            return ""
        end = len(self.sql)
        last = self.toks[-1]
        if last.kind == OP and last.value == ";":
            end = last.start
        return self.sql[tok.start : end].strip()

    # -- options ------------------------------------------------------------------------------

    def option_name(self) -> str:
        for words in _OPTION_NAMES:
            if self.accept_words(*words):
                return " ".join(words)
        return self.ident().lower()

    def option_value(self) -> OptionValue:
        tok = self.peek()
        if tok is None or (tok.kind == OP and tok.value in (",", ")", ";")):
            return OptionValue()
        if tok.kind == STRING:
            self.pos += 1
            return OptionValue(tok.value, "string")
        if tok.kind == NUMBER or (tok.kind == OP and tok.value == "-"):
            sign = ""
            if tok.kind == OP:
                self.pos += 1
                sign = "-"
                tok = self.peek()
                if tok is None or tok.kind != NUMBER:
                    raise self.fail("number")
            self.pos += 1
            return OptionValue(sign + tok.value, "number")
        if tok.kind == OP and tok.value == "(":
            return OptionValue(None, "list", self.option_list())
        words: list[str] = []
        while (t := self.peek()) is not None and t.kind in (WORD, IDENT):
            words.append(t.value)
            self.pos += 1
        if not words:
            raise self.fail("option value")
        nested = self.option_list() if self.is_op("(") else None
        return OptionValue(" ".join(words), "words", nested)

    def option_list(self) -> list[Option]:
        self.expect_op("(")
        options: list[Option] = []
        if self.accept_op(")"):
            return options
        while True:
            name = self.option_name()
            self.accept_op("=")
            options.append(Option(name, self.option_value()))
            if self.accept_op(")"):
                return options
            self.expect_op(",")

    def in_cluster(self) -> str | None:
        if self.accept_words("in", "cluster"):
            return self.ident()
        return None

    def if_not_exists(self) -> bool:
        return self.accept_words("if", "not", "exists")

    def if_exists(self) -> bool:
        return self.accept_words("if", "exists")

    def cascade(self) -> bool:
        if self.accept_words("cascade"):
            return True
        self.accept_words("restrict")
        return False

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


def redact(sql: str) -> str:
    """``sql`` with every string constant replaced by '<REDACTED>' (Materialize's redacted_sql)."""
    try:
        tokens = tokenize(sql)
    except MzError:
        return sql
    out: list[str] = []
    last = 0
    for tok in tokens:
        if tok.kind == STRING:
            out.append(sql[last : tok.start])
            out.append("'<REDACTED>'")
            last = tok.end
    out.append(sql[last:])
    return "".join(out)


def quote_ident(name: str) -> str:
    """Always-quoted identifier (safe for any name)."""
    return '"' + name.replace('"', '""') + '"'
