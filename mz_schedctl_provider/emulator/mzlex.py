"""Tokenizer of the emulator's Materialize SQL: PostgreSQL's own lexer, decoded tokens.

Lexing is PostgreSQL's own (``pglast.parser.scan``), so quoting rules are exactly the server's:
quoted identifiers with ``""`` escapes, unicode, ``''`` in strings, E'' and dollar quoting.
Also the token-level helpers: ``redact`` (string constants out of logged SQL) and
``quote_ident``. The parser of the statements is ``mzsql``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
