"""The parser's reading position over a statement's tokens: token tests, expectations with
Materialize's "Expected X, found Y" errors, names, and the option lists shared by every
statement. The statement grammar itself is ``mzsql``.
"""

from __future__ import annotations

from .errors import MzError
from .mzast import Option, OptionValue, QualifiedName
from .mzlex import IDENT, NUMBER, OP, STRING, WORD, Tok

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


class TokenCursor:
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
