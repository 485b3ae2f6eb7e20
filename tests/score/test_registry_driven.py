"""The registry drives scoring and comparison: a metric registered in one place (its spec and its
functions) appears in metrics.json and in a comparison without any change to score or compare."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrbench.cli import main
from cxrbench.metrics import registry
from cxrbench.metrics.base import mean_stats
from cxrbench.metrics.registry import MetricSpec
from tests.score.synthetic import make_predictions


def _length_ratio_stats(x):
    """A toy per-item metric: min(len(pred), len(ref)) / max(...) in characters."""
    ref = np.array([len(r) for r in x.refs], dtype=float)
    pred = np.array([len(p) for p in x.preds], dtype=float)
    values = np.minimum(ref, pred) / np.maximum(np.maximum(ref, pred), 1.0)
    return mean_stats("toy_length_ratio", values, signature="toy|chars", outcome="continuous")


@pytest.fixture()
def toy_metric():
    spec = registry.register(MetricSpec("toy_length_ratio", "item", _length_ratio_stats, outcome="continuous",
                                        scope=("all",)))
    yield spec
    registry.unregister("toy_length_ratio")


def test_a_registered_metric_reaches_metrics_json_and_compare(toy_metric, tmp_path):
    skip = ["--skip", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall"]
    runs = {}
    frame = make_predictions(400, seed=1, accuracy=0.8)
    other = frame.assign(prediction=[p if i % 3 else "x" for i, p in enumerate(frame["prediction"])])
    for name, f in (("base", frame), ("other", other)):
        src = tmp_path / f"{name}.parquet"
        f.to_parquet(src, index=False)
        assert main(["score", str(src), "--out", str(tmp_path / name), "--n-resamples", "100", "--no-progress",
                     *skip]) == 0
        runs[name] = tmp_path / name
    expected = float(np.mean([min(len(a), len(p)) / max(len(a), len(p), 1)
                              for a, p in zip(frame["answer"], frame["prediction"])]))
    m = json.loads((runs["base"] / "metrics.json").read_text())
    assert m["overall"]["toy_length_ratio"]["value"] == pytest.approx(expected)
    assert m["overall"]["toy_length_ratio"]["n"] == 400
    assert all("toy_length_ratio" in block for block in m["by_question_type"].values())
    assert m["provenance"]["metrics"]["toy_length_ratio"]["signature"] == "toy|chars"
    assert main(["compare", str(runs["base"]), str(runs["other"]), "--out", str(tmp_path / "cmp"),
                 "--n-resamples", "200", "--metrics", "toy_length_ratio", "exact_match"]) == 0
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    toy = [r for r in rows if r["metric"] == "toy_length_ratio" and r["stratum"] == "overall"]
    assert {r["test"] for r in toy} == {"paired_bootstrap", "paired_t", "wilcoxon"}   # declared continuous
    assert toy[0]["value_baseline"] == pytest.approx(expected)


def test_an_unregistered_metric_is_gone_again(tmp_path):
    assert "toy_length_ratio" not in registry.METRICS
    assert "toy_length_ratio" not in registry.metrics_for("B01_describe_all")


def test_every_spec_declares_what_scoring_needs():
    for name, spec in registry.METRICS.items():
        assert callable(spec.statistic), name
        assert spec.kind in registry.KINDS, name
        if spec.kind == "item":
            assert spec.outcome in ("binary", "continuous"), name
        if spec.kind in ("labels", "auroc"):
            assert spec.spaces and set(spec.spaces) <= set(registry.LABEL_SPACES), name
    # the direction is declared where lower is better
    assert not registry.METRICS["ece"].higher_is_better and not registry.METRICS["attention_entropy"].higher_is_better
    with pytest.raises(ValueError, match="declares its outcome"):
        MetricSpec("bad", "item", _length_ratio_stats)
