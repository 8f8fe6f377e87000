"""Webhook payload filters (SPEC §8): parsed and checked once, then matched cheaply per event.

A filter is a JSON object matched against an event's `data`:

- a key is a dotted path (`customer.country`) whose value is a literal (equality) or an
  object of operators `$eq $ne $gt $gte $lt $lte $in $nin $exists $startsWith`; several
  keys, and several operators on one path, must all hold;
- `$and` and `$or` take a non-empty array of filters, `$not` one filter;
- an absent (None) or empty filter matches everything.

Decisions, so that matching is total (never raises) and predictable:

- A path descends into objects; a segment that is a plain decimal number (`items.0.sku`)
  also indexes an array. Keys that themselves contain a dot cannot be addressed.
- A path missing from the data (or running into a scalar) matches only `$exists: false`,
  `$ne` and `$nin`; everything else, literal equality included, fails. `null` is a value,
  not a missing path: `{"a": null}` matches `{"a": null}` but not `{}`.
- Equality is JSON equality: numbers compare by value (`1 == 1.0`), booleans are not
  numbers (`true != 1`), objects and arrays compare structurally.
- Ordering (`$gt $gte $lt $lte`) compares numbers with numbers and strings with strings
  (by code point); any other pairing simply does not match.
- `$startsWith` matches strings only.
- An object literal whose keys do not start with `$` is an equality match against an
  object; mixing `$` keys and plain keys in one object is an error.

Limits, named in the error when exceeded: nesting depth (combinators and object literals)
`MAX_DEPTH`, leaf conditions `MAX_CONDITIONS`, values in one `$in`/`$nin` `MAX_IN_VALUES`,
characters in one path `MAX_PATH_LENGTH`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeGuard, TypeVar

MAX_DEPTH: Final = 10
MAX_CONDITIONS: Final = 100
MAX_IN_VALUES: Final = 100
MAX_PATH_LENGTH: Final = 200

# A test on a value present at a path, and a whole-filter matcher on the event's data.
ValueTest = Callable[[Any], bool]
Matcher = Callable[[Mapping[str, Any]], bool]

_MISSING: Final = object()

_Value = TypeVar("_Value")


class FilterError(ValueError):
    """An invalid filter; the message names the offending path or operator."""


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: 1 == 1.0, true != 1, objects and arrays structurally."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, str | None) or isinstance(right, str | None):
        return type(left) is type(right) and left == right
    return False


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Filter:
    """A parsed filter: `source` is what was given (None for match-all)."""

    source: dict[str, Any] | None
    conditions: int
    _matcher: Matcher = field(repr=False, compare=False)

    @property
    def matches_everything(self) -> bool:
        """True for an absent or empty filter (a fan-out may skip matching then)."""
        return self.source is None

    def matches(self, data: Mapping[str, Any]) -> bool:
        return self._matcher(data)


def _match_everything(data: Mapping[str, Any]) -> bool:
    return True


MATCH_ALL: Final = Filter(None, 0, _match_everything)


def parse_filter(raw: object) -> Filter:
    """Check `raw` (a decoded JSON value) and compile it; raises FilterError."""
    if raw is None or raw == {}:
        return MATCH_ALL
    if not isinstance(raw, dict):
        raise FilterError("filter must be a JSON object")
    parser = _Parser()
    matcher = parser.filter(raw, "filter", 1)
    return Filter(raw, parser.conditions, matcher)


# --- equality and membership, specialised on the literal's type at parse time ----------------


def equality_test(literal: Any) -> ValueTest:
    """A test `value == literal` under JSON equality, as cheap as the literal allows."""
    if literal is None:
        return lambda value: value is None
    if isinstance(literal, bool):
        return lambda value: type(value) is bool and value == literal
    if isinstance(literal, str):
        return lambda value: type(value) is str and value == literal
    if _is_number(literal):
        return lambda value: _is_number(value) and value == literal
    return lambda value: json_equal(value, literal)


def membership_test(values: Sequence[Any]) -> ValueTest:
    """A test `value in values` under JSON equality: hash lookups for scalars."""
    strings = frozenset(v for v in values if isinstance(v, str))
    numbers = frozenset(v for v in values if _is_number(v))
    booleans = frozenset(v for v in values if isinstance(v, bool))
    has_null = any(v is None for v in values)
    structured = tuple(v for v in values if isinstance(v, dict | list))

    def test(value: Any) -> bool:
        if isinstance(value, str):
            return value in strings
        if isinstance(value, bool):
            return value in booleans
        if isinstance(value, int | float):
            return value in numbers
        if value is None:
            return has_null
        return any(json_equal(value, candidate) for candidate in structured)

    return test


def ordering_test(operator: str, bound: int | float | str) -> ValueTest:
    """A test for `$gt $gte $lt $lte`: same kind (number or string) and in order."""
    if isinstance(bound, str):

        def same_kind(value: Any) -> bool:
            return isinstance(value, str)
    else:
        same_kind = _is_number
    if operator == "$gt":
        return lambda value: same_kind(value) and value > bound
    if operator == "$gte":
        return lambda value: same_kind(value) and value >= bound
    if operator == "$lt":
        return lambda value: same_kind(value) and value < bound
    return lambda value: same_kind(value) and value <= bound


def resolve(data: Any, segments: tuple[str, ...]) -> Any:
    """The value at a dotted path, or `_MISSING`."""
    for segment in segments:
        if isinstance(data, Mapping):
            data = data.get(segment, _MISSING)
            if data is _MISSING:
                return _MISSING
        elif isinstance(data, list) and segment.isdigit() and segment.isascii():
            index = int(segment)
            if index >= len(data):
                return _MISSING
            data = data[index]
        else:
            return _MISSING
    return data


def field_matcher(
    segments: tuple[str, ...], tests: Sequence[ValueTest], if_missing: bool
) -> Matcher:
    """All `tests` on the value at `segments`; `if_missing` when the path is absent."""
    if len(segments) == 1 and len(tests) == 1:
        key, test = segments[0], tests[0]

        def match_one(data: Mapping[str, Any]) -> bool:
            value = data.get(key, _MISSING)
            return if_missing if value is _MISSING else test(value)

        return match_one

    checks = tuple(tests)

    def match(data: Mapping[str, Any]) -> bool:
        value = resolve(data, segments)
        if value is _MISSING:
            return if_missing
        for test in checks:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not test(value):
                return False
        return True

    return match


def all_of(matchers: Sequence[Matcher]) -> Matcher:
    return decided_by(matchers, False)


def any_of(matchers: Sequence[Matcher]) -> Matcher:
    return decided_by(matchers, True)


def decided_by(matchers: Sequence[Matcher], decisive: bool) -> Matcher:
    """The first matcher that answers `decisive` decides; if none does, the opposite:
    False for all_of ($and), True for any_of ($or)."""
    if len(matchers) == 1:
        return matchers[0]
    matchers = tuple(matchers)

    # A plain loop: a generator inside all()/any() costs more than the tests themselves.
    def match(data: Mapping[str, Any]) -> bool:
        for matcher in matchers:
            if matcher(data) is decisive:
                return decisive
        return not decisive

    return match


def negation(test: Callable[[_Value], bool]) -> Callable[[_Value], bool]:
    return lambda value: not test(value)


# --- the parser ------------------------------------------------------------------------------


class _Parser:
    """Walks a raw filter once, checking it and building its matcher; counts conditions."""

    def __init__(self) -> None:
        self.conditions = 0

    def count(self, where: str) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(f"{where}: a filter may hold at most {MAX_CONDITIONS} conditions")

    def filter(self, raw: object, where: str, depth: int) -> Matcher:
        if not isinstance(raw, dict):
            raise FilterError(f"{where} must be a filter (a JSON object)")
        if depth > MAX_DEPTH:
            raise FilterError(f"{where}: filters may nest at most {MAX_DEPTH} deep")
        if not raw:
            return _match_everything
        matchers = [self.entry(key, value, where, depth) for key, value in raw.items()]
        return all_of(matchers)

    def entry(self, key: object, value: object, where: str, depth: int) -> Matcher:
        if not isinstance(key, str):
            raise FilterError(f"{where}: keys must be strings")
        if key in ("$and", "$or"):
            return self.combination(key, value, f"{where}.{key}", depth)
        if key == "$not":
            return negation(self.filter(value, f"{where}.$not", depth + 1))
        if key.startswith("$"):
            raise FilterError(f'{where}: unknown operator "{key}"')
        return self.path(key, value, f"{where}.{key}", depth)

    def combination(self, key: str, value: object, where: str, depth: int) -> Matcher:
        if not isinstance(value, list) or not value:
            raise FilterError(f"{where} must be a non-empty array of filters")
        matchers = [
            self.filter(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)
        ]
        return all_of(matchers) if key == "$and" else any_of(matchers)

    def path(self, key: str, value: object, where: str, depth: int) -> Matcher:
        if len(key) > MAX_PATH_LENGTH:
            raise FilterError(f"{where[:60]}…: a path may be at most {MAX_PATH_LENGTH} characters")
        segments = tuple(key.split("."))
        if "" in segments:
            raise FilterError(f"{where}: a path may not have an empty segment")
        if isinstance(value, dict) and any(str(k).startswith("$") for k in value):
            return self.operators(segments, value, where, depth)
        self.count(where)
        check_literal(value, where, depth)
        return field_matcher(segments, [equality_test(value)], False)

    def operators(
        self, segments: tuple[str, ...], value: dict[Any, Any], where: str, depth: int
    ) -> Matcher:
        tests: list[ValueTest] = []
        if_missing = True
        for operator, operand in value.items():
            if not isinstance(operator, str) or not operator.startswith("$"):
                raise FilterError(f'{where}: cannot mix operators and fields ("{operator}")')
            if operator not in FIELD_OPERATORS:
                raise FilterError(f'{where}: unknown operator "{operator}"')
            self.count(where)
            test, matches_missing = operator_test(operator, operand, f"{where}.{operator}", depth)
            tests.append(test)
            if_missing = if_missing and matches_missing
        return field_matcher(segments, tests, if_missing)


def check_literal(value: object, where: str, depth: int) -> None:
    """`value` must be JSON (objects with string keys) nesting no deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise FilterError(f"{where}: values may nest at most {MAX_DEPTH} deep")
    if isinstance(value, float) and not math.isfinite(value):
        raise FilterError(f"{where}: numbers must be finite")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise FilterError(f"{where}: object keys must be strings")
            check_literal(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_literal(item, where, depth + 1)
    elif not isinstance(value, str | int | float | bool | None):
        raise FilterError(f"{where}: {type(value).__name__} is not a JSON value")


# Each field operator: its checked test, and whether it holds on a missing path.
OperatorTest = tuple[ValueTest, bool]
# Builds an operator's test from (operator, operand, where, depth), checking the operand.
OperatorBuilder = Callable[[str, object, str, int], OperatorTest]


def equality_operator(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    check_literal(operand, where, depth + 1)
    return equality_test(operand), False


def membership_operator(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    if not isinstance(operand, list):
        raise FilterError(f"{where} needs an array")
    if len(operand) > MAX_IN_VALUES:
        raise FilterError(f"{where}: at most {MAX_IN_VALUES} values")
    check_literal(operand, where, depth + 1)
    return membership_test(operand), False


def exists_operator(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    if not isinstance(operand, bool):
        raise FilterError(f"{where} needs a boolean")
    # Any present value passes `$exists: true` and fails `$exists: false`.
    return (lambda value: operand), not operand


def starts_with_operator(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    if not isinstance(operand, str):
        raise FilterError(f"{where} needs a string")
    return (lambda value: isinstance(value, str) and value.startswith(operand)), False


def ordering_operator(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    if isinstance(operand, str):
        return ordering_test(operator, operand), False
    if _is_number(operand) and math.isfinite(operand):
        return ordering_test(operator, operand), False
    raise FilterError(f"{where} needs a finite number or a string")


def negated(operator: OperatorBuilder) -> OperatorBuilder:
    """The operator that holds where `operator` does not, and on a missing path too."""

    def negated_operator(name: str, operand: object, where: str, depth: int) -> OperatorTest:
        test, _ = operator(name, operand, where, depth)
        return negation(test), True

    return negated_operator


FIELD_OPERATORS: Final[dict[str, OperatorBuilder]] = {
    "$eq": equality_operator,
    "$ne": negated(equality_operator),
    "$gt": ordering_operator,
    "$gte": ordering_operator,
    "$lt": ordering_operator,
    "$lte": ordering_operator,
    "$in": membership_operator,
    "$nin": negated(membership_operator),
    "$exists": exists_operator,
    "$startsWith": starts_with_operator,
}


def operator_test(operator: str, operand: object, where: str, depth: int) -> OperatorTest:
    """The test for one known field operator, and whether it holds on a missing path."""
    return FIELD_OPERATORS[operator](operator, operand, where, depth)
