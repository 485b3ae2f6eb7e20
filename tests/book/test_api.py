"""The book's reading and formatting API on hand-made inputs (no book build)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from cxrbench.book import formatting as fmt
from cxrbench.book import inputs as bi
from cxrbench.book import publication, settings, style, tables, targets
from cxrbench.errors import CxrbenchError

# ----------------------------------------------------------------------------- formatting (15.3)


def test_metric_entry_as_mean_and_ci():
    assert fmt.ci({"value": 0.71349, "ci": [0.6921, 0.7352], "n": 9}) == "0.713 [95% CI: 0.692, 0.735]"
    assert fmt.ci({"value": None, "ci": [None, None], "n": 0}) == "n/a"
    assert fmt.ci({"value": 1.0, "ci": [None, None], "n": 3}) == "1.000 [95% CI: n/a, n/a]"      # no CI computed
    assert fmt.ci(None) == "n/a"


@pytest.mark.parametrize("row, text", [
    ({"test": "paired_t", "statistic": 2.3149, "df": 99.0, "p_value": 0.0227, "effect_size": 0.2312,
      "p_adjusted": 0.1362}, "t(99) = 2.31, p = 0.023, d = 0.23; Bonferroni-corrected p = 0.136"),
    ({"test": "mcnemar_chi2", "statistic": 6.2308, "df": 1.0, "p_value": 0.01256, "p_adjusted": 0.0003},
     "χ²(1) = 6.23, p = 0.013; Bonferroni-corrected p < 0.001"),
    ({"test": "paired_bootstrap", "diff": 0.0121, "ci_low": 0.0042, "ci_high": 0.0203, "p_value": 0.003,
      "p_adjusted": 0.018}, "Δ = 0.012 [95% CI: 0.004, 0.020], p = 0.003; Bonferroni-corrected p = 0.018"),
    ({"test": "wilcoxon", "statistic": 1234.5, "p_value": 0.0121, "p_adjusted": 1.0},
     "W = 1234.5, p = 0.012; Bonferroni-corrected p = 1.000"),
    ({"test": "mcnemar_exact", "statistic": 10.0, "p_value": 0.017, "p_adjusted": 0.05,
      "report": "b = 25, c = 10, p = 0.017"}, "b = 25, c = 10, p = 0.017; Bonferroni-corrected p = 0.050"),
    ({"test": "paired_t", "statistic": None, "p_value": None, "note": "12 resampling units < 30: test undefined"},
     "n/a (12 resampling units < 30: test undefined)"),
])
def test_comparison_rows_in_the_design_format(row, text):
    assert fmt.comparison_text(row, "Bonferroni") == text


def test_correction_named_from_compare_settings():
    assert fmt.correction_name({"correction": "holm"}) == "Holm"
    assert fmt.correction_name(None) == "Bonferroni"
    assert fmt.points(-0.0224) == "-2.2" and fmt.points(None) == "n/a"


# ----------------------------------------------------------------------------- targets (18.2, 18.3)


def test_question_type_targets_resolve_to_release_codes():
    codes = {t.stratum: (t.low, t.high) for t in targets.TYPE_TARGETS}
    assert codes["B03_is_abnormal"] == (0.70, 0.75)
    assert codes["D03_where_is_finding"] == (0.50, 0.55)
    assert codes["C01_describe_region"] == (0.50, 0.55)      # 'describe_region' of the region strategy
    assert codes["A_indication"] == (0.45, 0.50)
    assert len(codes) == 9


def test_position_against_a_range():
    t = targets.Target("x", "exact_match", 0.60, 0.70, "x")
    assert [targets.position(v, t) for v in (0.5, 0.6, 0.65, 0.71, None)] == ["below", "within", "within", "above", "n/a"]
    assert targets.ci_position(0.40, 0.59, t) == "entirely below"
    assert targets.ci_position(0.55, 0.62, t) == "overlaps"
    assert targets.ci_position(0.71, 0.80, t) == "entirely above"
    open_ended = targets.Target("text", "bertscore_f1", 0.75, None, "x")
    assert targets.position(0.9, open_ended) == "meets" and targets.ci_position(0.76, 0.8, open_ended) == "entirely above"
    assert targets.range_text(open_ended) == "≥ 0.75"


# ----------------------------------------------------------------------------- publication filter, tables


def test_aggregate_only_drops_content_and_identifier_columns():
    frame = pd.DataFrame({"question_type": ["B03"], "question": ["Is it?"], "study_id": [5], "answer": ["yes"],
                          "error_rate": [0.1]})
    assert list(publication.aggregate_only(frame, True).columns) == ["question_type", "error_rate"]
    assert list(publication.aggregate_only(frame, False).columns) == list(frame.columns)
    assert publication.counts_only({"empty_prediction": {"count": 3, "examples": ["5/q"]}}) == {"empty_prediction": 3}


def _settings(tmp_path, publication_on: bool) -> settings.BookSettings:
    return settings.BookSettings(None, tmp_path, publication_on, "test", not publication_on, tmp_path / "fig",
                                 tmp_path / "tab")


def test_table_written_as_csv_and_latex_after_the_filter(tmp_path):
    pytest.importorskip("IPython")
    frame = pd.DataFrame({"metric": ["exact_match"], "value": ["0.713 [95% CI: 0.692, 0.735]"], "question": ["Q?"]})
    raw = pd.DataFrame({"metric": ["exact_match"], "value": [0.71349], "question": ["Q?"]})
    md = tables.show(frame, "t1", _settings(tmp_path, True), "Caption.", raw=raw)
    assert "Q?" not in md.data and "0.713 [95% CI: 0.692, 0.735]" in md.data and "**Table t1.** Caption." in md.data
    assert pd.read_csv(tmp_path / "tab" / "t1.csv").to_dict("records") == [{"metric": "exact_match", "value": 0.71349}]
    tex = (tmp_path / "tab" / "t1.tex").read_text()
    assert "exact\\_match" in tex and "question" not in tex
    assert "\\|" in tables.markdown(pd.DataFrame({"a": ["x|y"]}))       # a '|' cannot end the cell


def test_figures_are_png_and_pdf_with_the_same_bytes_for_the_same_data(tmp_path):
    def draw(folder):
        fig, ax = style.figure()
        ax.plot([0, 1], [0, 1], marker=style.marker(0), color=style.colour(0))
        return style.save(fig, "f", folder)

    a, b = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert [p.suffix for p in a] == [".png", ".pdf"]
    assert a[1].read_bytes() == b[1].read_bytes() and a[0].read_bytes() == b[0].read_bytes()
    assert len(set(style.OKABE_ITO)) == 8


# ----------------------------------------------------------------------------- settings


def _book(tmp_path: Path, section: str) -> Path:
    book = tmp_path / "book"
    book.mkdir(parents=True)
    (book / "_config.yml").write_text(f"title: t\ncxrbench:\n{section}")
    return book


def test_inputs_setting_env_over_config_over_default(tmp_path, monkeypatch):
    for var in (*settings.ENV.values(), settings.ENV_BOOK_DIR):
        monkeypatch.delenv(var, raising=False)
    book = _book(tmp_path, "  inputs: ../elsewhere\n")
    assert settings.load(book).inputs == (tmp_path / "elsewhere").resolve()          # relative to the book
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CXRBENCH_BOOK_INPUTS", "from-env")
    assert settings.load(book).inputs == (tmp_path / "from-env").resolve()           # relative to the caller
    plain = _book(tmp_path / "p", "  publication: auto\n")
    monkeypatch.delenv("CXRBENCH_BOOK_INPUTS")
    s = settings.load(plain)
    assert s.inputs == (plain / "../runs/demo").resolve() and s.figures == plain / "_build" / "figures"
    # the notebooks run in analyses/: the book beside it is found
    (tmp_path / "p" / "analyses").mkdir()
    assert settings.find_book_dir(tmp_path / "p" / "analyses") == plain


def test_publication_switch(tmp_path, monkeypatch):
    monkeypatch.delenv("CXRBENCH_BOOK_INPUTS", raising=False)
    monkeypatch.setenv("CXRBENCH_BOOK_PUBLICATION", "on")
    assert settings.load(_book(tmp_path, "  inputs: .\n")).publication is True
    monkeypatch.setenv("CXRBENCH_BOOK_PUBLICATION", "maybe")
    with pytest.raises(CxrbenchError, match="on, off or auto"):
        settings.load(tmp_path / "book")


def _write_index(folder: Path, qba_root: Path) -> None:
    import os

    folder.mkdir(parents=True)
    (folder / "qa.parquet").write_bytes(b"")
    roots = {"mimic_cxr_jpg": os.path.relpath(qba_root.parent / "mimic-cxr-jpg", folder),
             "mimic_ext_cxr_qba": os.path.relpath(qba_root, folder)}
    (folder / "manifest.json").write_text(json.dumps({"content_hash": "h", "roots": roots}))


def test_synthetic_only_when_every_dataset_is_the_generators(tmp_path):
    gen = tmp_path / "data" / "synthetic_truth"
    gen.mkdir(parents=True)
    (gen / "generator.json").write_text(json.dumps({"generator": "cxrbench synth"}))
    _write_index(tmp_path / "study" / "index", tmp_path / "data" / "mimic-ext-cxr-qba")
    assert bi.synthetic_status(tmp_path / "study")[0] is True
    _write_index(tmp_path / "study" / "index2", tmp_path / "physionet" / "mimic-ext-cxr-qba")   # real release
    assert bi.synthetic_status(tmp_path / "study")[0] is False
    assert bi.synthetic_status(tmp_path / "nothing")[0] is False                       # unknown: real


# ----------------------------------------------------------------------------- discovery


def _run(folder: Path, condition: str | None, value: float, dataset: str | None = None) -> None:
    folder.mkdir(parents=True)
    prov = {"ablation_condition": condition, **({"dataset": dataset} if dataset else {})}
    metrics = {"provenance": prov, "overall": {"exact_match": {"value": value, "ci": [value - 0.1, value + 0.1], "n": 4}},
               "by_question_type": {"B03_is_abnormal": {"exact_match": {"value": value, "ci": [0, 1], "n": 2}}}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    pd.DataFrame({"question_id": ["q1", "q2"], "study_id": [1, 2], "question_type": ["B03_is_abnormal"] * 2,
                  "answer": ["yes", "no"], "prediction": ["yes", "yes"]}).to_parquet(folder / "predictions.parquet")


def test_discover_a_study_layout_with_seeds(tmp_path):
    study = tmp_path / "study"
    for cond, v in (("full", 0.7), ("no_scene_graph", 0.6)):
        for seed in (0, 1):
            _run(study / "eval" / cond / f"seed{seed}", cond, v + seed / 100)
            (study / "runs" / cond / f"seed{seed}").mkdir(parents=True)
            (study / "runs" / cond / f"seed{seed}" / "train_log.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
        (study / "compare" / "seed0").mkdir(parents=True, exist_ok=True)
    (study / "compare" / "seed0" / "comparison.json").write_text("{}")
    _run(study / "eval" / "full-vqarad", "full", 0.3, dataset="vqa-rad")
    (study / "study.json").write_text(json.dumps({"format": "cxrbench-study/1", "index": {"path": "../index"}}))
    (study / "eval" / "full" / "seed0" / "shards").mkdir()            # never walked into
    (study / "dynamics.csv").write_text("condition,seed,step\n")      # the study's summary tables: not a training run
    (study / "steps_to_target.csv").write_text("condition\n")
    found = bi.discover(study)
    assert found.studies == [study]
    above = bi.discover(tmp_path)                                      # make demo's layout: the study one level down
    assert above.studies == [study] and len(above.runs) == 5 and above.comparisons == [study / "compare" / "seed0"]
    assert study not in [t.path for t in above.training]
    assert sorted((r.condition, r.seed) for r in found.mimic_runs) == [("full", 0), ("full", 1), ("no_scene_graph", 0),
                                                                      ("no_scene_graph", 1)]
    assert [r.name for r in found.zero_shot_runs] == ["full on vqa-rad"]
    assert [(r.condition, r.seed) for r in found.primary_runs()] == [("full", 0), ("no_scene_graph", 0)]
    assert sorted((t.condition, t.seed) for t in found.training)[0] == ("full", 0)
    assert found.comparisons == [study / "compare" / "seed0"]
    table = bi.metric_table(found.primary_runs(), "overall", ["exact_match"])
    assert table[["condition", "value"]].values.tolist() == [["full", 0.7], ["no_scene_graph", 0.6]]
    assert table.loc[0, "ci_low"] == pytest.approx(0.6) and table.loc[0, "n"] == 4
    frame = found.primary_runs()[0].predictions(["prediction", "not_a_column"])
    assert list(frame.columns) == ["question_id", "question_type", "answer", "prediction", "study_id"]


def test_a_single_run_dir_is_its_own_input(tmp_path):
    _run(tmp_path / "myrun", None, 0.5)
    found = bi.discover(tmp_path / "myrun")
    assert [r.condition for r in found.runs] == ["myrun"]                # no condition recorded: the folder's name
    assert math.isclose(found.runs[0].metrics["overall"]["exact_match"]["value"], 0.5)
