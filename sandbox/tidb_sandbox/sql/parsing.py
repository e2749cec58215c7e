"""From query text to one statement: the TiDB syntax sqlglot does not know (ADMIN CHECKSUM TABLE,
AS OF TIMESTAMP) and DROP DATABASE are taken out first, the rest is parsed by sqlglot's MySQL dialect,
and what cannot be a statement becomes TiDB's 1064 syntax error."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import Dialect, TokenType
from sqlglot import expressions as exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token

from . import errors

_DIALECT = Dialect.get_or_raise("mysql")

# Statements this endpoint answers (ADMIN only as ADMIN CHECKSUM TABLE, DROP only as DROP DATABASE or TABLE).
HANDLED = {"SELECT", "SHOW", "SET", "USE", "BEGIN", "START", "COMMIT", "ROLLBACK"}
# Other statements TiDB has: refused as not supported rather than as a syntax error.
KNOWN = {
    "ADMIN", "ALTER", "ANALYZE", "BACKUP", "BATCH", "BINLOG", "CALIBRATE", "CALL", "CANCEL", "CHANGE", "CHECK",
    "CREATE", "DEALLOCATE", "DELETE", "DESC", "DESCRIBE", "DO", "DROP", "EXECUTE", "EXPLAIN", "FLASHBACK",
    "FLUSH", "GRANT", "HANDLER", "HELP", "IMPORT", "INSERT", "KILL", "LOAD", "LOCK", "OPTIMIZE", "PAUSE",
    "PLAN", "PREPARE", "PURGE", "QUERY", "RECOVER", "RELEASE", "RENAME", "REPAIR", "REPLACE", "RESTART",
    "RESTORE", "RESUME", "REVOKE", "SAVEPOINT", "SHUTDOWN", "SPLIT", "TABLE", "TRACE", "TRUNCATE", "UNLOCK",
    "UPDATE", "VALUES", "WITH", "XA",
}
_NAME = r"(?:`(?:[^`]|``)+`|[A-Za-z0-9_$]+)"
_ADMIN_CHECKSUM = re.compile(r"^ADMIN\s+CHECKSUM\s+TABLE\s+(.*)$", re.IGNORECASE | re.DOTALL)
_TABLE_NAME = re.compile(rf"^\s*({_NAME})(?:\s*\.\s*({_NAME}))?\s*$")
_DROP_DATABASE = re.compile(r"^DROP\s+(?:DATABASE|SCHEMA)\b", re.IGNORECASE)
_DROP_TABLE = re.compile(r"^DROP\s+TABLES?\b\s*(IF\s+EXISTS\s+)?(.*)$", re.IGNORECASE | re.DOTALL)
_DROP_DATABASE_ARGS = re.compile(rf"^\s*(IF\s+EXISTS\s+)?({_NAME})\s*$", re.IGNORECASE | re.DOTALL)
# Where an AS OF expression ends (at parenthesis depth 0).
_CLAUSE_WORDS = {"WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "UNION", "FOR", "LOCK", "JOIN", "INNER", "LEFT",
                 "RIGHT", "CROSS", "NATURAL", "STRAIGHT_JOIN", "WINDOW", "INTO"}


_LEADING_COMMENT = re.compile(r"^\s*(?:/\*(?![!+]).*?\*/|(?:--\s|#)[^\n]*(?:\n|$))", re.DOTALL)


def statement_text(sql: str) -> str:
    """The statement without surrounding blanks, a final ';' and leading comments (as drivers send them)."""
    text = sql
    while (match := _LEADING_COMMENT.match(text)) is not None:
        text = text[match.end():]
    return text.strip().rstrip(";").strip()


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def admin_checksum_tables(text: str) -> list[tuple[str | None, str]] | None:
    """The (database or None, table) list of ADMIN CHECKSUM TABLE, None for any other statement."""
    match = _ADMIN_CHECKSUM.match(text)
    if match is None:
        return None
    tables: list[tuple[str | None, str]] = []
    offset = match.start(1)
    for part in match.group(1).split(","):
        name = _TABLE_NAME.match(part)
        if name is None:
            start = offset + len(part) - len(part.lstrip())
            near = text[start:]
            raise errors.parse_error(near, start + len(first_word(near) or near[:1]))
        first, second = name.group(1), name.group(2)
        tables.append((_unquote(first), _unquote(second)) if second else (None, _unquote(first)))
        offset += len(part) + 1
    return tables


def drop_tables(text: str) -> tuple[list[tuple[str | None, str]], bool] | None:
    """((database or None, table) per name, IF EXISTS) of DROP TABLE [IF EXISTS] name [, name ...], None for any
    other statement."""
    match = _DROP_TABLE.match(text)
    if match is None:
        return None
    names = []
    for part in match.group(2).split(","):
        found = _TABLE_NAME.match(part)
        if found is None:
            start = text.find(part.strip()) if part.strip() else len(text)
            raise errors.parse_error(text[start:], start + len(first_word(text[start:]) or text[start:start + 1]))
        first, second = found.group(1), found.group(2)
        names.append((_unquote(first), _unquote(second)) if second else (None, _unquote(first)))
    return names, match.group(1) is not None


def drop_database(text: str) -> tuple[str, bool] | None:
    """(database, IF EXISTS) of DROP {DATABASE | SCHEMA} [IF EXISTS] name, None for any other statement."""
    match = _DROP_DATABASE.match(text)
    if match is None:
        return None
    rest = text[match.end():]
    args = _DROP_DATABASE_ARGS.match(rest)
    if args is None or args.group(2).upper() in ("IF", "EXISTS"):
        start = match.end() + len(rest) - len(rest.lstrip())
        near = text[start:]
        raise errors.parse_error(near, start + len(first_word(near) or near[:1]))
    return _unquote(args.group(2)), args.group(1) is not None


@dataclass(frozen=True)
class AsOf:
    text: str  # the expression, as written
    expression: exp.Expression


def _tokens(text: str) -> list[Token]:
    try:
        return list(_DIALECT.tokenize(text))
    except TokenError as err:
        raise errors.parse_error(text, len(text.split(None, 1)[0]) if text else 0) from err


def split_as_of(text: str) -> tuple[str, AsOf | None]:
    """Take `AS OF TIMESTAMP <expr>` out of a statement: (the rest, the clause) or (text, None)."""
    tokens = _tokens(text)
    for i in range(len(tokens) - 2):
        a, b, c = tokens[i : i + 3]
        if (a.text.upper(), b.text.upper(), c.text.upper()) != ("AS", "OF", "TIMESTAMP"):
            continue
        depth, end = 0, len(tokens)
        for j in range(i + 3, len(tokens)):
            token = tokens[j]
            if token.token_type == TokenType.L_PAREN:
                depth += 1
            elif token.token_type == TokenType.R_PAREN:
                if depth == 0:
                    end = j
                    break
                depth -= 1
            elif depth == 0 and (token.token_type in (TokenType.COMMA, TokenType.SEMICOLON)
                                 or token.text.upper() in _CLAUSE_WORDS):
                end = j
                break
        if end == i + 3:
            raise errors.parse_error(text[a.start:], c.end + 1)
        expr_text = text[tokens[i + 3].start : tokens[end - 1].end + 1]
        rest = text[: a.start] + text[tokens[end - 1].end + 1 :]
        if "AS OF TIMESTAMP" in " ".join(t.text.upper() for t in tokens[end:]):
            raise errors.not_supported("more than one AS OF TIMESTAMP in a statement")
        try:
            expression = sqlglot.parse_one(expr_text, read="mysql")
        except (ParseError, TokenError) as err:
            raise errors.parse_error(expr_text, c.end + 1) from err
        return rest.strip(), AsOf(expr_text, expression)
    return text, None


def first_word(text: str) -> str:
    match = re.match(r"[A-Za-z_]+", text)
    return match.group(0) if match else text.split(None, 1)[0] if text.strip() else ""


def parse_statement(text: str) -> exp.Expression:
    """One statement the endpoint may answer; 1105 for TiDB statements it does not, 1064 for the rest."""
    word = first_word(text)
    head = word.upper()
    if head not in HANDLED:
        if head in KNOWN:
            raise errors.not_supported(f"the {head} statement")
        raise errors.parse_error(text, len(word))
    try:
        parsed = [e for e in sqlglot.parse(text, read="mysql") if e is not None]
    except ParseError as err:
        detail = err.errors[0] if err.errors else {}
        highlight = str(detail.get("highlight") or "")
        before = str(detail.get("start_context") or "")
        start = len(before) if text.startswith(before) else max(0, int(detail.get("col") or 0) - len(highlight))
        raise errors.parse_error(text[start:], start + len(highlight)) from err
    except TokenError as err:
        raise errors.parse_error(text, len(word)) from err
    if len(parsed) != 1:
        raise errors.not_supported("more than one statement in a query")
    return parsed[0]


def select_item_texts(text: str) -> list[str]:
    """The select list's items as written (MySQL and TiDB name an unaliased column by its text)."""
    tokens = _tokens(text)
    if not tokens or tokens[0].token_type != TokenType.SELECT:
        return []
    items: list[str] = []
    depth, start = 0, None
    last = None
    for token in tokens[1:]:
        if token.token_type == TokenType.HINT:
            continue
        if depth == 0 and (token.token_type in (TokenType.FROM, TokenType.SEMICOLON)
                           or token.text.upper() in _CLAUSE_WORDS):
            break
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth -= 1
        if depth == 0 and token.token_type == TokenType.COMMA:
            if start is not None and last is not None:
                items.append(text[start.start : last.end + 1])
            start = last = None
            continue
        start = start or token
        last = token
    if start is not None and last is not None:
        items.append(text[start.start : last.end + 1])
    return items
