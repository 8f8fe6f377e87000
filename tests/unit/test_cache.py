"""services/common/cache.py: TtlCache entries expire after their ttl; a full cache starts over."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.common.cache import MAX_CACHE_ENTRIES, TtlCache


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_missing_key_is_a_miss() -> None:
    cache: TtlCache[str, int] = TtlCache(10.0, Clock())
    assert cache.get("absent") == (False, None)


def test_an_entry_is_fresh_until_its_ttl_has_passed() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock)
    cache.put("key", 1)
    assert cache.get("key") == (True, 1)
    clock.now += 9.999
    assert cache.get("key") == (True, 1)
    clock.now += 0.001  # exactly ttl seconds later: expired
    assert cache.get("key") == (False, None)


def test_a_cached_none_is_told_apart_from_a_miss() -> None:
    """The API-key cache stores "no such key" as None: that answer is cached too."""
    cache: TtlCache[str, int | None] = TtlCache(10.0, Clock())
    cache.put("unknown", None)
    assert cache.get("unknown") == (True, None)


def test_put_again_replaces_the_value_and_restarts_the_ttl() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10.0, clock)
    cache.put("key", 1)
    clock.now += 8
    cache.put("key", 2)
    clock.now += 8
    assert cache.get("key") == (True, 2)
    clock.now += 2
    assert cache.get("key") == (False, None)


def test_discard_forgets_at_once_and_tolerates_a_missing_key() -> None:
    cache: TtlCache[str, int] = TtlCache(10.0, Clock())
    cache.put("key", 1)
    cache.discard("key")
    assert cache.get("key") == (False, None)
    cache.discard("key")
    cache.discard("never-there")
    assert cache.entries == {}


def test_a_ttl_of_zero_or_less_turns_caching_off() -> None:
    for ttl in (0.0, -1.0):
        cache: TtlCache[str, int] = TtlCache(ttl, Clock())
        cache.put("key", 1)
        assert cache.get("key") == (False, None)
        assert cache.entries == {}


def test_keys_are_independent() -> None:
    clock = Clock()
    cache: TtlCache[tuple[str, int], str] = TtlCache(10.0, clock)
    cache.put(("a", 1), "first")
    clock.now += 5
    cache.put(("a", 2), "second")
    clock.now += 5
    assert cache.get(("a", 1)) == (False, None)
    assert cache.get(("a", 2)) == (True, "second")


def test_a_full_cache_is_cleared_before_the_next_entry() -> None:
    cache: TtlCache[int, int] = TtlCache(10.0, Clock())
    for key in range(MAX_CACHE_ENTRIES):
        cache.put(key, key)
    assert len(cache.entries) == MAX_CACHE_ENTRIES
    assert cache.get(0) == (True, 0)
    cache.put(MAX_CACHE_ENTRIES, -1)
    assert cache.entries == {MAX_CACHE_ENTRIES: (1010.0, -1)}
    assert cache.get(0) == (False, None)
    assert cache.get(MAX_CACHE_ENTRIES) == (True, -1)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 4), st.integers()),
        st.tuples(st.just("discard"), st.integers(0, 4), st.none()),
        st.tuples(st.just("wait"), st.none(), st.floats(min_value=0, max_value=20)),
    ),
    max_size=40,
)


@given(ttl=st.floats(min_value=-5, max_value=15), ops=operations)
def test_the_cache_answers_like_a_dict_of_deadlines(
    ttl: float, ops: list[tuple[str, int | None, float | None]]
) -> None:
    """Against a model: a key is fresh exactly while now < the time it was last put + ttl."""
    clock = Clock()
    cache: TtlCache[int, float] = TtlCache(ttl, clock)
    model: dict[int, tuple[float, float]] = {}
    for op, key, value in ops:
        if op == "put" and key is not None and value is not None:
            cache.put(key, value)
            if ttl > 0:
                model[key] = (clock.now + ttl, value)
        elif op == "discard" and key is not None:
            cache.discard(key)
            model.pop(key, None)
        elif value is not None:
            clock.now += value
        for probe in range(5):
            deadline, expected = model.get(probe, (float("-inf"), None))
            fresh = clock.now < deadline
            assert cache.get(probe) == ((True, expected) if fresh else (False, None))
