"""The fast canonical encoder produces exactly the contract's bytes (CONTRACT section 2)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from contract.canonical import canonical_json, canonical_json_fast

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500)
@given(json_values)
def test_fast_encoder_equals_reference(value):
    try:
        ref = canonical_json(value)
    except UnicodeEncodeError:  # lone surrogates cannot be UTF-8 at all
        return
    assert canonical_json_fast(value) == ref
