"""Quality ratings in every spelling the releases use (real-release-evidence.md), the criteria rule
of the release's section 3a, the mapping file, and the minimum rule."""

from __future__ import annotations

import numpy as np
import pytest

from cxrbench import vocab
from cxrbench.data.quality import (CRITERIA, QualityDecoder, QualityMapping, at_least, criterion_name, load_mapping,
                                   mapping_csv, min_grade, rating_kind, rating_string)
from cxrbench.errors import DataError


def test_n_grade_strings_integers_and_names_decode_to_the_same_grades():
    d = QualityDecoder()
    strings = ["6_A++", "5_A+", "4_A", "3_B", "2_C", "1_D", "0_"]
    assert [d.rating(s) for s in strings] == list(vocab.QUALITY_GRADES)
    assert [d.rating(n) for n in (6, 5, 4, 3, 2, 1, 0)] == list(vocab.QUALITY_GRADES)
    assert [d.rating(g) for g in vocab.QUALITY_GRADES] == list(vocab.QUALITY_GRADES)
    assert d.rating("4") == d.rating(4.0) == d.rating(np.int64(4)) == "A"
    assert d.rating(None) == d.rating(float("nan")) == "unrated"
    assert [rating_string(g) for g in vocab.QUALITY_GRADES] == strings
    assert [rating_kind(v) for v in ("4_A", 4, "A+", None, "great")] == ["N_GRADE string", "integer", "grade name", "null", None]


@pytest.mark.parametrize("value", ["4_B", "7_A", "9_", "excellent", 7, -1, "A+++", True])
def test_an_unknown_rating_value_is_an_error_naming_file_and_record(value):
    with pytest.raises(DataError) as err:
        QualityDecoder().rating(value, "qa.zip:qa/p10/p1/s5.qa.json", "question B01_describe_all_000")
    msg = str(err.value)
    assert msg.startswith("qa.zip:qa/p10/p1/s5.qa.json, record question B01_describe_all_000: quality value")
    assert "is not a rating" in msg and "np." not in msg


def test_criterion_keys_in_the_release_spelling_and_the_page_spelling():
    assert criterion_name("region_extract_quality") == criterion_name("region_quality") == "region_quality"
    assert criterion_name("entity_extract_quality") == "entity_quality"
    assert criterion_name("general_issue_level") == criterion_name("issue_level") == "issue_level"
    for key in ("sentence_name_quality", "change_quality", "localization_quality", "entailment", "answer_clarity"):
        assert criterion_name(key) == key
    assert criterion_name("some_future_score") is None


def test_overall_grade_from_criteria_when_there_is_no_rating():
    """Release section 3a: each criterion allows at most its option's grade; the overall grade is
    the minimum. Values are indices into the options, worst first, or the option names."""
    d = QualityDecoder()
    real = {"region_extract_quality": 4, "entity_extract_quality": 2, "sentence_name_quality": 2,
            "change_quality": 3, "general_issue_level": 4, "localization_quality": 3}
    # RESOLVED_REGIONS_ONLY A++, RESOLVED_ENTITIES_ONLY A++, NO_ISSUES A++, NO_ISSUES A++, FIXABLE A+, BBOX A++
    assert d.of_object(real) == "A+"
    assert d.of_object({**real, "localization_quality": 1}) == "B"        # FALLBACK_LOCALIZATION
    assert d.of_object({**real, "general_issue_level": 0}) == "D"         # DISCARDED
    assert d.of_object({"region_quality": "CONTAINS_DEFAULT_REGIONS", "issue_level": "NO_ISSUES"}) == "A"
    # a rating wins over the criteria ("the overall grade from the rating where there is one")
    assert d.of_object({**real, "rating": "3_B"}) == "B"
    assert d.of_object({"extraction_rating": "6_A++", **real}) == "A++"
    assert d.of_object({}) == d.of_object(None) == "unrated"
    # every criterion and option of the page decodes
    for name, opts in CRITERIA.items():
        assert [d.criterion(name, i) for i in range(len(opts))] == [g for _, g in opts]


def test_unreadable_quality_objects_are_errors_not_unrated():
    d = QualityDecoder()
    with pytest.raises(DataError, match="neither a rating nor a known criterion"):
        d.of_object({"score": 3, "judge": "x"}, "f.json", "question q")
    with pytest.raises(DataError, match="region_quality value 9 is not one of its options"):
        d.of_object({"region_extract_quality": 9}, "f.json", "question q")
    # unknown extra keys beside a rating are counted, and do not change the grade
    assert d.of_object({"rating": "4_A", "llm_model": "x"}) == "A"
    assert d.unknown_keys["llm_model"] == 0  # a rating decides without reading the criteria
    assert d.of_object({"entailment": 6, "llm_model": "x"}) == "A++" and d.unknown_keys["llm_model"] == 1


def test_mapping_file_is_used_when_its_header_is_recognised(tmp_path):
    p = tmp_path / "quality_mappings.csv"
    p.write_text(mapping_csv())
    mapping, note = load_mapping(p)
    assert note is None and isinstance(mapping, QualityMapping)
    d = QualityDecoder(mapping)
    assert [d.rating(c) for c in (6, 5, 4, 3, 2, 1, 0)] == list(vocab.QUALITY_GRADES)
    # a mapping that says otherwise wins over the self-describing scale for the codes it lists
    p.write_text("field,code,grade\nrating,9,A\nrating,4,B\n")
    mapping, note = load_mapping(p)
    d = QualityDecoder(mapping)
    assert note is None and d.rating(9) == "A" and d.rating(4) == "B" and d.rating("5_A+") == "A+"


@pytest.mark.parametrize("text", ["name,meaning\nfoo,bar\n", "", "quality_field,raw_value,rating\nrating,1,Z\n"])
def test_an_unrecognised_mapping_file_is_a_note_never_a_crash(tmp_path, text):
    p = tmp_path / "quality_mappings.csv"
    p.write_text(text)
    mapping, note = load_mapping(p)
    assert mapping is None and "self-describing" in note
    assert load_mapping(None)[0] is None and "not found" in load_mapping(None)[1]


def test_minimum_rule():
    assert min_grade(["A++", "B", "A"]) == "B" and min_grade(["A", "unrated"]) == "unrated" and min_grade([]) == "unrated"
    assert at_least("A+", "A") and not at_least("unrated", "D")
