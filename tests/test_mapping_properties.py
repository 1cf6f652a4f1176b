"""Property-based: whatever a vendor sends, the mapping engine maps it or names the field and the
rule; it never raises, and it is deterministic."""

from __future__ import annotations

import copy

from hypothesis import example, given, settings, strategies as st

from hiresync.mapping.spec import FieldError, MappingSpec, normalise_score, parse_datetime
from tests.test_mapping import PAYLOAD

SPEC = MappingSpec.load("mappings/aiview.yaml")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
PATHS = [("candidate", "id_card"), ("candidate", "mobile"), ("candidate", "email"), ("candidate", "name"),
         ("evaluation", "total_score"), ("evaluation", "full_score"), ("evaluation", "result"),
         ("evaluation", "dimensions"), ("interview", "started_at"), ("interview", "finished_at"), ("job", "code")]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(PATHS), json_values, max_size=5))
def test_any_payload_maps_or_yields_field_errors(replacements):
    payload = copy.deepcopy(PAYLOAD)
    for (outer, inner), value in replacements.items():
        payload[outer][inner] = value
    record, problems = SPEC.map(payload)
    assert (record is None) == bool(problems)
    assert all(p.field and p.rule for p in problems)
    assert SPEC.map(copy.deepcopy(payload)) == (record, problems)


@given(json_values, json_values)
@example(10**400, 100)  # too large for a float
@example("4/0", None)
def test_score_normaliser_never_raises_anything_but_field_errors(raw, scale):
    try:
        score, _, _ = normalise_score(raw, scale)
    except FieldError as err:
        assert err.rule in {"NUMBER", "SCALE", "RANGE"}
    else:
        assert 0 <= score <= 100


@given(json_values)
def test_datetime_parser_returns_utc_or_a_field_error(raw):
    try:
        value = parse_datetime(raw)
    except FieldError as err:
        assert err.rule == "DATETIME"
    else:
        assert value.utcoffset().total_seconds() == 0


# Text built from what free text holds and what the cleaner changes: Chinese prose, full-width
# letters, digits and punctuation, every kind of space and line break, control and zero-width marks.
free_text = st.text(alphabet=st.sampled_from(list("候选人表现良好，。！ABab12 ＡＢａｂ１２\u3000\xa0\t\n\r\u2028\u2029\x07\u200b\ufeff"
                                                   "e\u0301é")) | st.characters(), max_size=40)


@settings(max_examples=500, deadline=None)
@given(free_text)
@example("候选人表现良好，建议进入下一轮。")  # the usual comment: nothing to clean, returned as it is
@example("e\u0301")  # not NFC
@example("两个  空格")
@example(" 前导空格")
def test_free_text_shortcut_agrees_with_the_full_cleaner(text):
    from hiresync.mapping.spec import _clean_free_text, clean_free_text

    assert clean_free_text(text) == _clean_free_text(text)


@settings(max_examples=500, deadline=None)
@given(st.from_regex(r"\A[0-9]{17}\Z") | st.text(alphabet=st.sampled_from(list("0123456789１٣X a_+-")) | st.characters(),
                                                    max_size=20))
@example("11010519491231002")
@example("1101051949123100_")  # int() would read the underscore; the shortcut must not take it
@example("1101051949123100a")  # a base-13 digit, not a decimal one
def test_resident_id_check_char_shortcut_agrees_with_the_weighted_sum(text):
    """privacy.identifiers.id_check_char reads 17 ASCII digits in base 13; anything else takes the
    standard's weighted sum. Either way the same character, or the same error."""
    from hiresync.privacy.identifiers import _ID_CHECK_CHARS, _ID_WEIGHTS, id_check_char

    def by_the_standard():
        return _ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(text, _ID_WEIGHTS)) % 11]

    try:
        expected = by_the_standard()
    except ValueError:
        try:
            id_check_char(text)
        except ValueError:
            return
        raise AssertionError("the shortcut accepted what the weighted sum refuses")
    assert id_check_char(text) == expected
