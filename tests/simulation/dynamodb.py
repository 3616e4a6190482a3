"""A DynamoDB table in memory that evaluates the expressions DynamoDB would: the delivery ledger
(pinrelay.adapters.dynamodb) runs on it unchanged, in the unit tests and in the simulation.

Only what the ledger uses: ``update_item`` (ConditionExpression, UpdateExpression with SET / ADD /
REMOVE and ``if_not_exists``, ReturnValues UPDATED_NEW, ReturnValuesOnConditionCheckFailure
ALL_OLD), ``get_item``, ``batch_get_item``, ``put_item``, ``delete_item`` and ``scan``, with
attribute values in DynamoDB's JSON form (``{"S": ...}``, ``{"N": "..."}``). Comparisons follow
DynamoDB (and moto server): numbers compare as numbers, strings by code point, values of different
types or missing attributes make ``=``, ``<``, ``IN``... false and ``<>`` true.
tests/integration/test_simulated_dynamodb.py runs the same writes here and on moto server and
compares what each answers and stores. No AWS SDK here (tests/unit may use it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from types import SimpleNamespace
from typing import Any

Item = dict[str, dict[str, Any]]


class ConditionalCheckFailedException(Exception):
    """As botocore raises it: ``response["Item"]`` is the item (ALL_OLD) when asked for."""

    def __init__(self, item: Item | None) -> None:
        super().__init__("The conditional request failed")
        self.response: dict[str, Any] = {"Error": {"Code": "ConditionalCheckFailedException"}}
        if item is not None:
            self.response["Item"] = item


# -- expressions ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(<>|<=|>=|=|<|>|\(|\)|,|\+|-)|([#:]?[A-Za-z_][A-Za-z0-9_]*))")
_KEYWORDS = {"AND", "OR", "NOT", "IN", "BETWEEN", "SET", "ADD", "REMOVE", "DELETE"}


def _tokens(text: str) -> list[str]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise ValueError(f"cannot read the expression at {text[position:]!r}")
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise ValueError(f"expected {expected!r}, found {token!r}")
        self.at += 1
        return token

    def is_keyword(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token.upper() == word

    # condition := or ; or := and (OR and)* ; and := not (AND not)* ; not := NOT not | primary
    def condition(self) -> tuple:
        node = self.conjunction()
        while self.is_keyword("OR"):
            self.take()
            node = ("or", node, self.conjunction())
        return node

    def conjunction(self) -> tuple:
        node = self.negation()
        while self.is_keyword("AND"):
            self.take()
            node = ("and", node, self.negation())
        return node

    def negation(self) -> tuple:
        if self.is_keyword("NOT"):
            self.take()
            return ("not", self.negation())
        return self.primary()

    def primary(self) -> tuple:
        if self.peek() == "(":
            self.take()
            node = self.condition()
            self.take(")")
            return node
        token = self.peek()
        if token in ("attribute_exists", "attribute_not_exists"):
            self.take()
            self.take("(")
            path = self.take()
            self.take(")")
            return (token, path)
        left = self.operand()
        if self.is_keyword("IN"):
            self.take()
            self.take("(")
            options = [self.operand()]
            while self.peek() == ",":
                self.take()
                options.append(self.operand())
            self.take(")")
            return ("in", left, options)
        if self.is_keyword("BETWEEN"):
            self.take()
            low = self.operand()
            self.take("AND")
            return ("between", left, low, self.operand())
        comparator = self.take()
        if comparator not in ("=", "<>", "<", "<=", ">", ">="):
            raise ValueError(f"expected a comparator, found {comparator!r}")
        return ("compare", comparator, left, self.operand())

    def operand(self) -> tuple:
        token = self.take()
        if token == "if_not_exists":
            self.take("(")
            path = self.take()
            self.take(",")
            fallback = self.operand()
            self.take(")")
            return ("if_not_exists", path, fallback)
        if token.startswith(":"):
            return ("value", token)
        return ("path", token)

    def value(self) -> tuple:
        left = self.operand()
        if self.peek() in ("+", "-"):
            sign = self.take()
            return ("arith", sign, left, self.operand())
        return left

    # update := (SET a = v, ... | ADD a :v, ... | REMOVE a, ...)+
    def update(self) -> list[tuple]:
        actions = []
        while self.peek() is not None:
            clause = self.take().upper()
            while True:
                path = self.take()
                if clause == "SET":
                    self.take("=")
                    actions.append(("set", path, self.value()))
                elif clause == "ADD":
                    actions.append(("add", path, self.operand()))
                elif clause == "REMOVE":
                    actions.append(("remove", path))
                else:
                    raise ValueError(f"unsupported update clause {clause}")
                if self.peek() != ",":
                    break
                self.take()
        return actions


@cache
def parse_condition(text: str) -> tuple:
    parser = _Parser(text)
    node = parser.condition()
    if parser.peek() is not None:
        raise ValueError(f"unread part of the condition: {parser.tokens[parser.at:]}")
    return node


@cache
def parse_update(text: str) -> list[tuple]:
    return _Parser(text).update()


class _Scope:
    def __init__(self, item: Item | None, names: dict[str, str] | None, values: dict[str, Any] | None) -> None:
        self.item = item or {}
        self.names = names or {}
        self.values = values or {}

    def name(self, path: str) -> str:
        if path.startswith("#"):
            return self.names[path]
        if path.upper() in _KEYWORDS:
            raise ValueError(f"{path} is a reserved word: use an expression attribute name")
        return path

    def operand(self, node: tuple) -> dict[str, Any] | None:
        kind = node[0]
        if kind == "value":
            return self.values[node[1]]
        if kind == "path":
            return self.item.get(self.name(node[1]))
        if kind == "if_not_exists":
            present = self.item.get(self.name(node[1]))
            return present if present is not None else self.operand(node[2])
        if kind == "arith":
            left, right = self.operand(node[2]), self.operand(node[3])
            if left is None or right is None or "N" not in left or "N" not in right:
                raise ValueError("an arithmetic operand is missing or not a number")
            total = Decimal(left["N"]) + (Decimal(right["N"]) if node[1] == "+" else -Decimal(right["N"]))
            return {"N": _number(total)}
        raise ValueError(f"not an operand: {node}")


def _number(value: Decimal) -> str:
    return str(value.normalize()) if value != value.to_integral_value() else str(int(value))


def _comparable(value: dict[str, Any] | None) -> tuple[str, Any] | None:
    if value is None:
        return None
    if "N" in value:
        return "N", Decimal(value["N"])
    if "S" in value:
        return "S", value["S"]
    if "BOOL" in value:
        return "BOOL", value["BOOL"]
    return None  # sets, lists, maps: not compared here


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def evaluate(node: tuple, scope: _Scope) -> bool:
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], scope) or evaluate(node[2], scope)
    if kind == "and":
        return evaluate(node[1], scope) and evaluate(node[2], scope)
    if kind == "not":
        return not evaluate(node[1], scope)
    if kind == "attribute_exists":
        return scope.name(node[1]) in scope.item
    if kind == "attribute_not_exists":
        return scope.name(node[1]) not in scope.item
    if kind == "compare":
        left, right = _comparable(scope.operand(node[2])), _comparable(scope.operand(node[3]))
        if node[1] == "<>":
            return left is None or right is None or left != right
        if left is None or right is None or left[0] != right[0]:
            return False
        if node[1] != "=" and left[0] == "BOOL":
            return False
        return _COMPARE[node[1]](left[1], right[1])
    if kind == "in":
        left = _comparable(scope.operand(node[1]))
        return left is not None and any(left == _comparable(scope.operand(option)) for option in node[2])
    if kind == "between":
        value, low, high = (_comparable(scope.operand(n)) for n in node[1:])
        if value is None or low is None or high is None or not value[0] == low[0] == high[0]:
            return False
        return low[1] <= value[1] <= high[1]
    raise ValueError(f"not a condition: {node}")


def apply_update(actions: list[tuple], scope: _Scope) -> tuple[Item, set[str]]:
    """The item after the update (a new dict), and the names of the attributes SET or ADDed."""
    new = _copy(scope.item)
    touched: set[str] = set()
    for action in actions:  # every operand reads the item as it was before the update
        name = scope.name(action[1])
        if action[0] == "set":
            value = scope.operand(action[2])
            new[name] = dict(value) if value is not None else None
            if new[name] is None:
                raise ValueError(f"SET {name}: the value's attribute does not exist")
            touched.add(name)
        elif action[0] == "add":
            increment = scope.operand(action[2])
            current = scope.item.get(name)
            if "N" not in increment:
                raise ValueError("ADD supports numbers here")
            base = Decimal(current["N"]) if current is not None else Decimal(0)
            new[name] = {"N": _number(base + Decimal(increment["N"]))}
            touched.add(name)
        else:
            new.pop(name, None)
    return new, touched


@cache
def _placeholders(text: str) -> frozenset[str]:
    return frozenset(token for token in _tokens(text) if token[0] in "#:")


def _check_all_used(expressions: tuple[str | None, ...], names: dict[str, str] | None,
                    values: dict[str, Any] | None) -> None:
    """DynamoDB refuses a request with an expression attribute name or value no expression uses
    (ValidationException)."""
    used = frozenset().union(*(_placeholders(text) for text in expressions if text))
    unused = sorted(set(names or {}) - used) + sorted(set(values or {}) - used)
    if unused:
        raise ValueError(f"ValidationException: expression attribute names or values unused: {unused}")


def _copy(item: Item | None) -> Item:
    """A copy of an item (its values are flat dicts: S, N, BOOL)."""
    return {name: dict(value) for name, value in (item or {}).items()}


# -- the table -------------------------------------------------------------------------------------


class SimulatedDynamoDB:
    """One table (any TableName is taken as it), keyed by the string attribute ``pk``."""

    def __init__(self) -> None:
        self.items: dict[str, Item] = {}
        self.exceptions = SimpleNamespace(ConditionalCheckFailedException=ConditionalCheckFailedException)

    @staticmethod
    def _key(Key: dict[str, Any]) -> str:
        return Key["pk"]["S"]

    def update_item(self, *, TableName: str, Key: dict[str, Any], UpdateExpression: str,
                    ConditionExpression: str | None = None, ExpressionAttributeNames: dict[str, str] | None = None,
                    ExpressionAttributeValues: dict[str, Any] | None = None, ReturnValues: str = "NONE",
                    ReturnValuesOnConditionCheckFailure: str = "NONE") -> dict[str, Any]:
        key = self._key(Key)
        _check_all_used((UpdateExpression, ConditionExpression), ExpressionAttributeNames, ExpressionAttributeValues)
        old = self.items.get(key)
        scope = _Scope(old, ExpressionAttributeNames, ExpressionAttributeValues)
        if ConditionExpression and not evaluate(parse_condition(ConditionExpression), scope):
            failed = _copy(old) if ReturnValuesOnConditionCheckFailure == "ALL_OLD" and old else None
            raise ConditionalCheckFailedException(failed)
        new, touched = apply_update(parse_update(UpdateExpression), scope)
        new["pk"] = {"S": key}
        self.items[key] = new
        answer: dict[str, Any] = {}
        if ReturnValues == "UPDATED_NEW":
            # as moto server answers: the attributes the update changed (DynamoDB's documentation
            # does not say whether one SET to its own value is "updated"; the ledger does not ask)
            answer["Attributes"] = {name: dict(new[name]) for name in touched
                                    if name in new and new[name] != (old or {}).get(name)}
        elif ReturnValues == "ALL_OLD" and old:
            answer["Attributes"] = _copy(old)
        elif ReturnValues == "ALL_NEW":
            answer["Attributes"] = _copy(new)
        return answer

    def put_item(self, *, TableName: str, Item: Item, **_: Any) -> dict[str, Any]:
        self.items[Item["pk"]["S"]] = _copy(Item)
        return {}

    def get_item(self, *, TableName: str, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        item = self.items.get(self._key(Key))
        return {"Item": _copy(item)} if item is not None else {}

    def delete_item(self, *, TableName: str, Key: dict[str, Any], ConditionExpression: str | None = None,
                    ExpressionAttributeNames: dict[str, str] | None = None,
                    ExpressionAttributeValues: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        key = self._key(Key)
        scope = _Scope(self.items.get(key), ExpressionAttributeNames, ExpressionAttributeValues)
        if ConditionExpression and not evaluate(parse_condition(ConditionExpression), scope):
            raise ConditionalCheckFailedException(None)
        self.items.pop(key, None)
        return {}

    def batch_get_item(self, *, RequestItems: dict[str, Any]) -> dict[str, Any]:
        responses = {}
        for table, request in RequestItems.items():
            responses[table] = [_copy(self.items[self._key(key)]) for key in request["Keys"]
                                if self._key(key) in self.items]
        return {"Responses": responses, "UnprocessedKeys": {}}

    def scan(self, *, TableName: str, FilterExpression: str | None = None,
             ExpressionAttributeNames: dict[str, str] | None = None,
             ExpressionAttributeValues: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        found = [_copy(item) for item in self.items.values()
                 if not FilterExpression or evaluate(parse_condition(FilterExpression),
                                                     _Scope(item, ExpressionAttributeNames, ExpressionAttributeValues))]
        return {"Items": found}

    def plain(self, key: str) -> dict[str, Any] | None:
        """An item as plain values (numbers as int), for assertions."""
        item = self.items.get(key)
        if item is None:
            return None
        return {name: int(value["N"]) if "N" in value else next(iter(value.values())) for name, value in item.items()}
