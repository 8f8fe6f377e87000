"""Webhook payload filters: every operator, combinator, missing-path rule and bad filter, plus
property-based comparison with a plain reference evaluator."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.filters import (
    MATCH_ALL,
    MAX_CONDITIONS,
    MAX_DEPTH,
    MAX_IN_VALUES,
    MAX_PATH_LENGTH,
    FilterError,
    parse_filter,
)

PROPERTIES = settings(
    max_examples=400,
    deadline=None,
    derandomize=not os.environ.get("FUZZ_RANDOM"),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

ORDER = {
    "customer": {"country": "NL", "age": 42, "email": "ann@example.com", "vip": True},
    "amount": 19.5,
    "count": 3,
    "status": "paid",
    "tags": ["a", "b"],
    "items": [{"sku": "X-1", "qty": 2}],
    "note": None,
    "meta": {"source": "api", "n": 1},
}

# (filter, data, expected): one row per rule.
CASES: list[tuple[Any, dict[str, Any], bool]] = [
    # absent and empty filters
    (None, ORDER, True),
    ({}, ORDER, True),
    ({}, {}, True),
    # literal equality, dotted paths, array indexes
    ({"status": "paid"}, ORDER, True),
    ({"status": "void"}, ORDER, False),
    ({"customer.country": "NL"}, ORDER, True),
    ({"customer.country": "DE"}, ORDER, False),
    ({"items.0.sku": "X-1"}, ORDER, True),
    ({"items.1.sku": "X-1"}, ORDER, False),
    ({"tags.1": "b"}, ORDER, True),
    ({"note": None}, ORDER, True),
    ({"note": None}, {}, False),
    # JSON equality
    ({"count": 3.0}, ORDER, True),
    ({"customer.vip": 1}, ORDER, False),
    ({"count": True}, {"count": 1}, False),
    ({"flag": False}, {"flag": 0}, False),
    ({"count": "3"}, ORDER, False),
    ({"tags": ["a", "b"]}, ORDER, True),
    ({"tags": ["b", "a"]}, ORDER, False),
    ({"meta": {"n": 1.0, "source": "api"}}, ORDER, True),
    ({"meta": {"source": "api"}}, ORDER, False),
    ({"meta": {}}, {"meta": {}}, True),
    # $eq / $ne
    ({"status": {"$eq": "paid"}}, ORDER, True),
    ({"status": {"$eq": "void"}}, ORDER, False),
    ({"meta": {"$eq": {"source": "api", "n": 1}}}, ORDER, True),
    ({"status": {"$ne": "void"}}, ORDER, True),
    ({"status": {"$ne": "paid"}}, ORDER, False),
    ({"count": {"$ne": 3.0}}, ORDER, False),
    ({"customer.vip": {"$ne": 1}}, ORDER, True),
    # ordering: numbers with numbers, strings with strings, mixed never
    ({"amount": {"$gt": 19}}, ORDER, True),
    ({"amount": {"$gt": 19.5}}, ORDER, False),
    ({"amount": {"$gte": 19.5}}, ORDER, True),
    ({"amount": {"$lt": 20}}, ORDER, True),
    ({"amount": {"$lt": 19.5}}, ORDER, False),
    ({"amount": {"$lte": 19.5}}, ORDER, True),
    ({"customer.age": {"$gte": 18, "$lt": 65}}, ORDER, True),
    ({"customer.age": {"$gte": 18, "$lt": 40}}, ORDER, False),
    ({"status": {"$gt": "open"}}, ORDER, True),
    ({"status": {"$lt": "open"}}, ORDER, False),
    ({"status": {"$gt": 1}}, ORDER, False),
    ({"count": {"$lt": "9"}}, ORDER, False),
    ({"customer.vip": {"$gt": 0}}, ORDER, False),
    ({"note": {"$lte": 0}}, ORDER, False),
    ({"tags": {"$gt": "a"}}, ORDER, False),
    # $in / $nin
    ({"status": {"$in": ["paid", "open"]}}, ORDER, True),
    ({"status": {"$in": ["void"]}}, ORDER, False),
    ({"status": {"$in": []}}, ORDER, False),
    ({"count": {"$in": [3.0]}}, ORDER, True),
    ({"customer.vip": {"$in": [1]}}, ORDER, False),
    ({"customer.vip": {"$in": [True]}}, ORDER, True),
    ({"note": {"$in": [None]}}, ORDER, True),
    ({"tags": {"$in": [["a", "b"]]}}, ORDER, True),
    ({"meta": {"$in": [{"n": 1, "source": "api"}]}}, ORDER, True),
    ({"status": {"$nin": ["void"]}}, ORDER, True),
    ({"status": {"$nin": ["paid"]}}, ORDER, False),
    ({"status": {"$nin": []}}, ORDER, True),
    # $exists
    ({"note": {"$exists": True}}, ORDER, True),
    ({"note": {"$exists": False}}, ORDER, False),
    ({"customer.phone": {"$exists": False}}, ORDER, True),
    ({"customer.phone": {"$exists": True}}, ORDER, False),
    # $startsWith
    ({"customer.email": {"$startsWith": "ann@"}}, ORDER, True),
    ({"customer.email": {"$startsWith": "bob@"}}, ORDER, False),
    ({"count": {"$startsWith": "3"}}, ORDER, False),
    ({"status": {"$startsWith": ""}}, ORDER, True),
    # a missing path matches only $exists: false, $ne and $nin
    ({"missing": {"$exists": False}}, ORDER, True),
    ({"missing": {"$ne": 1}}, ORDER, True),
    ({"missing": {"$nin": [1]}}, ORDER, True),
    ({"missing": {"$ne": 1, "$nin": [2], "$exists": False}}, ORDER, True),
    ({"missing": {"$ne": 1, "$exists": True}}, ORDER, False),
    ({"missing": 1}, ORDER, False),
    ({"missing": None}, ORDER, False),
    ({"missing": {"$eq": None}}, ORDER, False),
    ({"missing": {"$gt": 0}}, ORDER, False),
    ({"missing": {"$gte": ""}}, ORDER, False),
    ({"missing": {"$lt": 0}}, ORDER, False),
    ({"missing": {"$lte": 0}}, ORDER, False),
    ({"missing": {"$in": [None]}}, ORDER, False),
    ({"missing": {"$startsWith": ""}}, ORDER, False),
    # a path through a scalar or past an array's end is missing
    ({"status.code": {"$exists": False}}, ORDER, True),
    ({"status.code": {"$ne": "x"}}, ORDER, True),
    ({"items.5.sku": {"$exists": False}}, ORDER, True),
    ({"tags.x": {"$exists": True}}, ORDER, False),
    # several keys: all must hold
    ({"status": "paid", "customer.country": "NL"}, ORDER, True),
    ({"status": "paid", "customer.country": "DE"}, ORDER, False),
    # $and / $or / $not
    ({"$and": [{"status": "paid"}, {"count": {"$gt": 1}}]}, ORDER, True),
    ({"$and": [{"status": "paid"}, {"count": {"$gt": 5}}]}, ORDER, False),
    ({"$or": [{"status": "void"}, {"count": 3}]}, ORDER, True),
    ({"$or": [{"status": "void"}, {"count": 4}]}, ORDER, False),
    ({"$not": {"status": "void"}}, ORDER, True),
    ({"$not": {"status": "paid"}}, ORDER, False),
    ({"$not": {"missing": 1}}, ORDER, True),
    ({"$not": {}}, ORDER, False),
    (
        {"$or": [{"$and": [{"customer.country": "NL"}, {"amount": {"$gte": 10}}]}, {"vip": True}]},
        ORDER,
        True,
    ),
    ({"$or": [{}, {"status": "void"}]}, ORDER, True),
    ({"status": "paid", "$not": {"customer.vip": True}}, ORDER, False),
]


@pytest.mark.parametrize(("raw", "data", "expected"), CASES)
def test_filter_case_table(raw: Any, data: dict[str, Any], expected: bool) -> None:
    assert parse_filter(raw).matches(data) is expected
    assert reference_matches(raw or {}, data) is expected, "the reference evaluator disagrees"


def deep_filter(depth: int) -> dict[str, Any]:
    raw: dict[str, Any] = {"a": 1}
    for _ in range(depth - 1):
        raw = {"$not": raw}
    return raw


def deep_value(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# (filter, words the message must contain): every way a filter can be wrong.
BAD_FILTERS: list[tuple[Any, list[str]]] = [
    ([], ["filter must be a JSON object"]),
    ("status", ["filter must be a JSON object"]),
    (1, ["filter must be a JSON object"]),
    ({"customer.age": {"$gtt": 1}}, ["filter.customer.age", 'unknown operator "$gtt"']),
    ({"$xor": []}, ["filter", 'unknown operator "$xor"']),
    ({"$or": [{"a": {"$regex": "x"}}]}, ["filter.$or[0].a", '"$regex"']),
    ({"$or": {"a": 1}}, ["filter.$or", "array of filters"]),
    ({"$or": []}, ["filter.$or", "array of filters"]),
    ({"$and": "a"}, ["filter.$and", "array of filters"]),
    ({"$and": [{"a": 1}, 2]}, ["filter.$and[1]", "filter"]),
    ({"$not": [{"a": 1}]}, ["filter.$not", "filter"]),
    ({"$not": "a"}, ["filter.$not", "filter"]),
    ({"a": {"$in": 1}}, ["filter.a.$in", "array"]),
    ({"a": {"$in": "ab"}}, ["filter.a.$in", "array"]),
    ({"a": {"$nin": {"x": 1}}}, ["filter.a.$nin", "array"]),
    ({"a": {"$exists": 1}}, ["filter.a.$exists", "boolean"]),
    ({"a": {"$exists": "true"}}, ["filter.a.$exists", "boolean"]),
    ({"a": {"$startsWith": 1}}, ["filter.a.$startsWith", "string"]),
    ({"a": {"$startsWith": None}}, ["filter.a.$startsWith", "string"]),
    ({"a": {"$gt": [1]}}, ["filter.a.$gt", "number or a string"]),
    ({"a": {"$gte": None}}, ["filter.a.$gte", "number or a string"]),
    ({"a": {"$lt": True}}, ["filter.a.$lt", "number or a string"]),
    ({"a": {"$lte": {"x": 1}}}, ["filter.a.$lte", "number or a string"]),
    ({"a": {"$gt": float("inf")}}, ["filter.a.$gt", "finite"]),
    ({"a": {"$eq": 1, "b": 2}}, ["filter.a", "cannot mix", '"b"']),
    ({"a..b": 1}, ["filter.a..b", "empty segment"]),
    ({".a": 1}, ["filter..a", "empty segment"]),
    ({"": 1}, ["filter.", "empty segment"]),
    ({"a": float("nan")}, ["filter.a", "finite"]),
    ({"a": {1, 2}}, ["filter.a", "not a JSON value"]),
    ({"a": {"$in": [(1, 2)]}}, ["filter.a.$in", "not a JSON value"]),
    ({1: "x"}, ["filter", "keys must be strings"]),
    ({"a": {"$in": list(range(MAX_IN_VALUES + 1))}}, ["filter.a.$in", f"{MAX_IN_VALUES}"]),
    ({"a" * (MAX_PATH_LENGTH + 1): 1}, ["filter.aaa", f"{MAX_PATH_LENGTH} characters"]),
    (deep_filter(MAX_DEPTH + 1), ["filter.$not", f"at most {MAX_DEPTH} deep"]),
    ({"a": deep_value(MAX_DEPTH + 1)}, ["filter.a", f"at most {MAX_DEPTH} deep"]),
    (
        {f"k{i}": i for i in range(MAX_CONDITIONS + 1)},
        [f"filter.k{MAX_CONDITIONS}", f"at most {MAX_CONDITIONS} conditions"],
    ),
    (
        {"$or": [{"a": {"$gt": i, "$lt": i + 2}} for i in range(MAX_CONDITIONS // 2 + 1)]},
        [f"at most {MAX_CONDITIONS} conditions"],
    ),
]


@pytest.mark.parametrize(("raw", "words"), BAD_FILTERS)
def test_bad_filters_name_the_path_or_operator(raw: Any, words: list[str]) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filter(raw)
    assert isinstance(raised.value, ValueError)
    for word in words:
        assert word in str(raised.value)


def test_limits_are_inclusive() -> None:
    assert parse_filter(deep_filter(MAX_DEPTH)).matches({"a": 2}) is (MAX_DEPTH % 2 == 0)
    assert parse_filter({f"k{i}": i for i in range(MAX_CONDITIONS)}).conditions == MAX_CONDITIONS
    assert parse_filter({"a": {"$in": list(range(MAX_IN_VALUES))}}).matches({"a": 99})
    assert parse_filter({"a" * MAX_PATH_LENGTH: 1}).matches({"a" * MAX_PATH_LENGTH: 1})


def test_match_all_and_parsed_form() -> None:
    assert parse_filter(None) is MATCH_ALL and parse_filter({}) is MATCH_ALL
    assert MATCH_ALL.matches_everything and MATCH_ALL.source is None
    raw = {"a": {"$gt": 1, "$lt": 5}, "$or": [{"b": 1}, {"c": 2}]}
    parsed = parse_filter(raw)
    assert parsed.source == raw
    assert parsed.conditions == 4
    assert not parsed.matches_everything
    # No conditions, yet it matches nothing.
    assert not parse_filter({"$not": {}}).matches_everything


# --- the reference: a direct reading of SPEC §8, no compilation -----------------------------

ABSENT = object()


def reference_lookup(data: Any, path: str) -> Any:
    for segment in path.split("."):
        if isinstance(data, dict) and segment in data:
            data = data[segment]
        elif isinstance(data, list) and segment.isdigit() and int(segment) < len(data):
            data = data[int(segment)]
        else:
            return ABSENT
    return data


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def reference_equal(left: Any, right: Any) -> bool:
    if kind(left) != kind(right):
        return False
    if kind(left) == "array":
        return len(left) == len(right) and all(
            reference_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    if kind(left) == "object":
        return set(left) == set(right) and all(reference_equal(left[k], right[k]) for k in left)
    return bool(left == right)


def reference_operator(operator: str, operand: Any, value: Any) -> bool:
    if value is ABSENT:
        return operator in ("$ne", "$nin") or (operator == "$exists" and operand is False)
    if operator == "$exists":
        return operand is True
    if operator == "$eq":
        return reference_equal(value, operand)
    if operator == "$ne":
        return not reference_equal(value, operand)
    if operator == "$in":
        return any(reference_equal(value, item) for item in operand)
    if operator == "$nin":
        return not any(reference_equal(value, item) for item in operand)
    if operator == "$startsWith":
        return kind(value) == "string" and value.startswith(operand)
    if kind(value) != kind(operand) or kind(value) not in ("number", "string"):
        return False
    return bool(
        {
            "$gt": value > operand,
            "$gte": value >= operand,
            "$lt": value < operand,
            "$lte": value <= operand,
        }[operator]
    )


def reference_matches(raw: dict[str, Any], data: Any) -> bool:
    for key, value in raw.items():
        if key == "$and":
            ok = all(reference_matches(item, data) for item in value)
        elif key == "$or":
            ok = any(reference_matches(item, data) for item in value)
        elif key == "$not":
            ok = not reference_matches(value, data)
        elif isinstance(value, dict) and value and all(k.startswith("$") for k in value):
            found = reference_lookup(data, key)
            ok = all(reference_operator(op, operand, found) for op, operand in value.items())
        else:
            ok = reference_operator("$eq", value, reference_lookup(data, key))
        if not ok:
            return False
    return True


# --- random data and random valid filters over the same small vocabulary -----------------------

KEYS = st.sampled_from(["a", "b", "c", "0", "1"])
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 1.5, -2.5, 2**53 + 1]),
    st.sampled_from(["", "a", "ab", "b", "ba", "1"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
DATA = st.dictionaries(KEYS, VALUES, max_size=4)
PATHS = st.lists(KEYS, min_size=1, max_size=3).map(".".join)
ORDERABLE = st.one_of(st.integers(-3, 3), st.sampled_from([1.5, -2.5, "", "a", "ab", "b"]))
# Literals used as plain values must not look like operator objects.
LITERALS = VALUES.filter(lambda v: not (isinstance(v, dict) and any(k.startswith("$") for k in v)))

OPERATOR_ENTRIES = st.one_of(
    st.tuples(st.sampled_from(["$eq", "$ne"]), VALUES),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ORDERABLE),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(VALUES, max_size=4)),
    st.tuples(st.just("$exists"), st.booleans()),
    st.tuples(st.just("$startsWith"), st.sampled_from(["", "a", "b", "ab"])),
)
OPERATOR_OBJECTS = st.lists(OPERATOR_ENTRIES, min_size=1, max_size=3).map(dict)
CONDITIONS = st.dictionaries(PATHS, LITERALS | OPERATOR_OBJECTS, min_size=1, max_size=3)
FILTERS = st.recursive(
    CONDITIONS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"$and": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"$or": items}),
        inner.map(lambda item: {"$not": item}),
        st.tuples(CONDITIONS, inner).map(lambda pair: {**pair[0], "$or": [pair[1]]}),
    ),
    max_leaves=6,
)


@PROPERTIES
@given(raw=FILTERS, data=DATA)
def test_matches_agrees_with_the_reference(raw: dict[str, Any], data: dict[str, Any]) -> None:
    assert parse_filter(raw).matches(data) is reference_matches(raw, data)


@PROPERTIES
@given(raw=FILTERS, data=DATA)
def test_not_is_the_complement(raw: dict[str, Any], data: dict[str, Any]) -> None:
    assert parse_filter({"$not": raw}).matches(data) is not parse_filter(raw).matches(data)


@PROPERTIES
@given(data=DATA, path=PATHS)
def test_a_value_taken_from_the_data_matches_itself(data: dict[str, Any], path: str) -> None:
    found = reference_lookup(data, path)
    if found is ABSENT:
        assert parse_filter({path: {"$exists": False}}).matches(data)
        assert not parse_filter({path: {"$eq": None}}).matches(data)
    else:
        assert parse_filter({path: {"$eq": found}}).matches(data)
        assert parse_filter({path: {"$in": [found]}}).matches(data)
        assert not parse_filter({path: {"$ne": found}}).matches(data)
