"""The small subset of CEL that the vendored CRDs' x-kubernetes-validations rules use.

Supported grammar (enough for `has(self.a) ? !has(self.b) : true`):

    expr    := or ('?' expr ':' expr)?
    or      := and ('||' and)*
    and     := unary ('&&' unary)*
    unary   := '!' unary | primary
    primary := 'has' '(' 'self' '.' IDENT ')' | 'true' | 'false' | '(' expr ')'

Anything else raises `UnsupportedRule`: a rule the sandbox cannot evaluate must not pass silently.
Written here because no CEL library is installed with Airflow, and the vendored CRDs need only this much.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class UnsupportedRule(ValueError):
    """An x-kubernetes-validations entry outside the supported CEL subset."""


Evaluator = Callable[[Any], bool]

_TOKEN = re.compile(r"\s*(?:(&&|\|\||[!?:().])|([A-Za-z_][A-Za-z0-9_]*))")
_RULE_KEYS = {"rule", "message", "reason", "fieldPath"}
_REASONS = {"FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate"}
_FIELD_PATH = re.compile(r"^(\.[A-Za-z_][A-Za-z0-9_]*)+$")


@dataclass(frozen=True)
class Rule:
    rule: str
    message: str
    reason: str  # kube cause type of the error the rule reports
    field_path: tuple[str, ...]  # extra path below the schema node, from the rule's `fieldPath`
    evaluate: Evaluator  # self value -> rule holds


def _tokenize(rule: str) -> list[str]:
    tokens, pos = [], 0
    while pos < len(rule):
        if rule[pos:].strip() == "":
            break
        m = _TOKEN.match(rule, pos)
        if not m:
            raise UnsupportedRule(f"unsupported CEL syntax at offset {pos} in rule {rule!r}")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, rule: str):
        self.rule = rule
        self.tokens = _tokenize(rule)
        self.i = 0

    def fail(self, what: str) -> UnsupportedRule:
        return UnsupportedRule(f"unsupported CEL rule {self.rule!r}: {what} (the sandbox supports only "
                               "has(self.field), !, &&, ||, ?: and true/false)")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise self.fail(f"expected {expected or 'a token'}, found {tok or 'end of rule'}")
        self.i += 1
        return tok

    def parse(self) -> Evaluator:
        ev = self.expr()
        if self.peek() is not None:
            raise self.fail(f"unexpected {self.peek()!r}")
        return ev

    def expr(self) -> Evaluator:
        cond = self.or_()
        if self.peek() != "?":
            return cond
        self.take("?")
        then = self.expr()
        self.take(":")
        other = self.expr()
        return lambda s: then(s) if cond(s) else other(s)

    def or_(self) -> Evaluator:
        left = self.and_()
        while self.peek() == "||":
            self.take()
            right, prev = self.and_(), left
            left = lambda s, a=prev, b=right: a(s) or b(s)  # noqa: E731
        return left

    def and_(self) -> Evaluator:
        left = self.unary()
        while self.peek() == "&&":
            self.take()
            right, prev = self.unary(), left
            left = lambda s, a=prev, b=right: a(s) and b(s)  # noqa: E731
        return left

    def unary(self) -> Evaluator:
        if self.peek() == "!":
            self.take()
            inner = self.unary()
            return lambda s: not inner(s)
        return self.primary()

    def primary(self) -> Evaluator:
        tok = self.take()
        if tok == "true":
            return lambda s: True
        if tok == "false":
            return lambda s: False
        if tok == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if tok == "has":
            self.take("(")
            self.take("self")
            self.take(".")
            name = self.take()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise self.fail(f"expected a field name after 'self.', found {name!r}")
            self.take(")")
            return lambda s: isinstance(s, dict) and name in s
        raise self.fail(f"unexpected {tok!r}")


@functools.lru_cache(maxsize=256)
def compile_expression(rule: str) -> Evaluator:
    return _Parser(rule).parse()


def compile_rule(entry: dict[str, Any]) -> Rule:
    """Compile one x-kubernetes-validations entry, raising `UnsupportedRule` for what the subset lacks."""
    unknown = set(entry) - _RULE_KEYS
    if unknown:
        raise UnsupportedRule(f"x-kubernetes-validations keys {sorted(unknown)} are not supported "
                              f"(rule {entry.get('rule')!r})")
    rule = entry.get("rule")
    if not isinstance(rule, str) or not rule.strip():
        raise UnsupportedRule(f"x-kubernetes-validations entry without a rule: {entry!r}")
    reason = entry.get("reason") or "FieldValueInvalid"
    if reason not in _REASONS:
        raise UnsupportedRule(f"unknown x-kubernetes-validations reason {reason!r}")
    field_path = entry.get("fieldPath") or ""
    if field_path and not _FIELD_PATH.match(field_path):
        raise UnsupportedRule(f"unsupported x-kubernetes-validations fieldPath {field_path!r}")
    return Rule(
        rule=rule,
        # kube's default message when the rule has none
        message=entry.get("message") or f"failed rule: {rule.strip()}",
        reason=reason,
        field_path=tuple(p for p in field_path.split(".") if p),
        evaluate=compile_expression(rule),
    )


def check_schema_rules(schema: Any, where: str) -> None:
    """Compile every rule in an openAPIV3Schema; raise `UnsupportedRule` naming the first bad one."""
    stack: list[tuple[Any, str]] = [(schema, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for entry in node.get("x-kubernetes-validations") or ():
                try:
                    compile_rule(entry)
                except UnsupportedRule as exc:
                    raise UnsupportedRule(f"{where}, schema path {path or '<root>'}: {exc}") from None
            for key, child in node.items():
                if key in ("properties", "patternProperties", "definitions") and isinstance(child, dict):
                    stack.extend((v, f"{path}.{k}") for k, v in child.items())
                elif key in ("items", "additionalProperties", "not"):
                    stack.append((child, f"{path}.{key}"))
                elif key in ("anyOf", "allOf", "oneOf") and isinstance(child, list):
                    stack.extend((v, f"{path}.{key}[{i}]") for i, v in enumerate(child))
        elif isinstance(node, list):  # items given as a list of schemas
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
