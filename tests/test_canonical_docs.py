"""Finding 10: the README lists every canonical field with its type and meaning and the status and
recommendation sets; an error listing choices lists all of them, never cut off."""

from __future__ import annotations

import re

import pytest
import yaml

from hiresync.config.files import load_yaml_checked
from hiresync.errors import ConfigError
from hiresync.mapping.spec import (CANDIDATE_FIELDS, DIMENSION_FIELDS, RECOMMENDATIONS, RESULT_FIELDS, STATUSES,
                                   TYPES, MappingSpec)
from tests.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _table_rows(section: str) -> dict[str, list[str]]:
    """`| `name` | type | meaning |` rows of the README table under the given heading."""
    start = README.index(section)
    rows = {}
    for line in README[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        m = re.match(r"^\|\s*`([a-z_.]+)`\s*\|(.+)\|\s*$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_readme_lists_every_canonical_field_with_type_and_meaning():
    rows = _table_rows("### Canonical fields")
    expected = ([f"candidate.{f}" for f in CANDIDATE_FIELDS] + list(RESULT_FIELDS)
                + [f"dimensions.{f}" for f in DIMENSION_FIELDS])
    assert [n for n in expected if n not in rows] == []
    assert all(len(cells) == 2 and all(cells) for cells in rows.values())
    section = README[README.index("### Canonical fields"):]
    for value in STATUSES + RECOMMENDATIONS:
        assert f"`{value}`" in section


def _mapping(tmp_path, change) -> str:
    doc = yaml.safe_load((REPO / "mappings/aiview.yaml").read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_an_unknown_canonical_field_lists_every_choice(tmp_path):
    path = _mapping(tmp_path, lambda d: d["result"].update(overal_score=d["result"].pop("overall_score")))
    with pytest.raises(ConfigError) as err:
        MappingSpec.load(path)
    text = str(err.value)
    assert "result" in text and "overal_score" in text and "..." not in text
    assert all(name in text for name in RESULT_FIELDS)


def test_a_long_enum_is_listed_in_full(tmp_path):
    choices = [f"choice_number_{i:02d}" for i in range(30)]
    (tmp_path / "x.yaml").write_text("kind: nope\n", encoding="utf-8")
    schema = {"type": "object", "properties": {"kind": {"enum": choices}}}
    with pytest.raises(ConfigError) as err:
        load_yaml_checked(tmp_path / "x.yaml", schema)
    text = str(err.value)
    assert len(text) > 200 and all(c in text for c in choices) and "..." not in text
    path = _mapping(tmp_path, lambda d: d["result"]["status"].update(type="enumm"))
    with pytest.raises(ConfigError) as err:
        MappingSpec.load(path)
    assert all(t in str(err.value) for t in TYPES)


def test_a_recommendation_outside_the_set_is_refused(tmp_path):
    path = _mapping(tmp_path, lambda d: d["result"]["recommendation"]["values"].update(hold="maybe"))
    with pytest.raises(ConfigError) as err:
        MappingSpec.load(path)
    assert "result.recommendation.values" in str(err.value) and all(r in str(err.value) for r in RECOMMENDATIONS)
