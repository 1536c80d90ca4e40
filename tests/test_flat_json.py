"""The flat token form the stores keep a pipeline's shape in (any depth, exact)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flujo_trio.dsl.shape import _compact_json
from flujo_trio.state.flat_json import flatten, unflatten

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=30,
)


@given(json_values)
def test_any_json_value_comes_back_equal_through_its_text(value):
    assert unflatten(json.loads(json.dumps(flatten(value)))) == value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
        max_leaves=30,
    )
)
def test_the_fingerprint_text_is_json_dumps_character_for_character(value):
    # Stored runs are matched by the hash of this text: it must never drift from the
    # json.dumps form fingerprints were first taken with.
    assert _compact_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_nesting_deeper_than_the_json_module_recurses_is_two_levels_of_text():
    deep: list[object] = ["leaf"]
    for level in range(5000):
        deep = [{"kind": "parallel", "branches": [[f"b{level}", deep]]}]
    text = json.dumps(flatten(deep))  # json.dumps(deep) raises RecursionError
    back = unflatten(json.loads(text))
    for level in reversed(range(5000)):
        [node] = back
        assert node["kind"] == "parallel"
        [[key, back]] = node["branches"]
        assert key == f"b{level}"
    assert back == ["leaf"]


@pytest.mark.parametrize(
    ("tokens", "why"),
    [
        ([], "non-empty list"),
        ({"l": 1}, "non-empty list"),
        ([["l", 2], 1], "ends before"),
        ([1, 2], "tokens after"),
        ([["q", 1], 1], "container token"),
        ([["l", -1]], "container token"),
        ([["l", True]], "container token"),
        ([["d", 1], 1, 2], "key must be a string"),
        ([["l", 1], {"a": 1}], "no objects"),
    ],
)
def test_malformed_tokens_are_a_value_error_saying_what(tokens, why):
    with pytest.raises(ValueError, match=why):
        unflatten(tokens)
