"""Scene-graph error kinds per QA pair (hand-built truth tables with all four design kinds, the
CheXpert proxy) and the propagation table on planted error patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrbench import vocab
from cxrbench.error_analysis import propagation


def _truth() -> pd.DataFrame:
    rows = [(1, "img1", "O01", "displaced"), (1, "img1", "O02", "missing"), (1, "img1", "O03", "fallback"),
            (2, "img2", "O01", "misclassified"), (2, "img2", "O02", "duplicated"), (2, "lat2", "O03", "displaced"),
            (3, "img3", "O01", "none"), (3, "img3", "O02", "swapped_label")]
    return pd.DataFrame(rows, columns=["study_id", "image_id", "obs_id", "noise"])


def test_truth_kinds_map_every_design_kind_on_the_primary_image():
    primary = {1: "img1", 2: "img2", 3: "img3"}
    obs = [["O01"], ["O02"], ["O03"], ["O01", "O02"], ["O01"], ["O02"], ["O03"], ["O01"], ["O02"], []]
    sids = [1, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    kinds, status, unknown = propagation.truth_kinds(obs, sids, _truth(), primary)
    assert kinds == [["displaced"], ["missing"], ["missing"], ["displaced", "missing"], ["misclassified"],
                     ["duplicated"], [], [], [], []]
    # study 2's O03 is displaced on the lateral image only: the model does not see it
    assert status == ["affected"] * 6 + ["clean", "clean", "clean", "unknown"]
    assert unknown == {"swapped_label": 1}


def test_proxy_flags_disagreement_with_the_chexpert_label():
    i = vocab.CHEXPERT_LABELS.index("Edema")
    labels = [np.nan] * len(vocab.CHEXPERT_LABELS)

    def lab(v):
        out = list(labels)
        out[i] = v
        return out

    frame = pd.DataFrame({
        "question_type": ["D02_has_finding"] * 5 + ["D03_where_is_finding"],
        "label_true": pd.array([1, 0, 1, 0, 1, None], dtype="Int64"),
        "finding_chexpert": [["Edema"]] * 5 + [[]],
        "chexpert_gold": [lab(0.0), lab(1.0), None, lab(-1.0), lab(1.0), None],
        "chexpert_auto": [lab(1.0), lab(0.0), lab(0.0), lab(1.0), lab(0.0), None],
    })
    kinds, status = propagation.proxy_kinds(frame)
    # gold wins over automatic labels; uncertain (-1) is no evidence
    assert kinds == [["proxy_graph_positive"], ["proxy_graph_negative"], ["proxy_graph_positive"], [], [], []]
    assert status == ["affected", "affected", "affected", "unknown", "clean", "unknown"]


def test_errors_exactly_on_displaced_questions_propagate_fully():
    rng = np.random.default_rng(1)
    n = 400
    qt = np.where(np.arange(n) % 2 == 0, "D03_where_is_finding", "D02_has_finding")
    kinds = [["displaced"] if i % 10 == 0 else (["missing"] if i % 10 == 1 else []) for i in range(n)]
    status = ["affected" if k else ("clean" if i % 10 != 9 else "unknown") for i, k in enumerate(kinds)]
    error = np.array([k == ["displaced"] for k in kinds])
    clusters = np.arange(n) // 4
    table = propagation.propagation_table(error, kinds, status, qt, order=propagation.DESIGN_KINDS,
                                          source="synthetic_truth", clusters=clusters, n_resamples=300, seed=0,
                                          baseline_error=rng.uniform(size=n) < 0.5).set_index("kind")
    d, m, a = table.loc["displaced"], table.loc["missing"], table.loc["any"]
    assert (d["n"], d["n_errors"], d["error_rate"], d["meets_target"]) == (40, 40, 1.0, "no")
    assert (m["n"], m["error_rate"], m["meets_target"]) == (40, 0.0, "yes")
    assert a["n"] == 80 and a["error_rate"] == pytest.approx(0.5) and a["meets_target"] == "undecided"
    assert d["clean_error_rate"] == 0.0 and d["excess"] == pytest.approx(1.0)
    assert table.loc["misclassified", "n"] == 0 and np.isnan(table.loc["misclassified", "error_rate"])
    assert 0 <= d["baseline_error_rate"] <= 1


def test_type_matched_clean_rate_is_reweighted_to_the_touched_mix():
    # touched: 3 where + 1 has; clean: where err 1/2, has err 0/2 -> matched = 0.75 * 0.5 + 0.25 * 0 = 0.375
    qt = ["where", "where", "where", "has", "where", "where", "has", "has"]
    kinds = [["displaced"]] * 4 + [[]] * 4
    status = ["affected"] * 4 + ["clean"] * 4
    error = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    t = propagation.propagation_table(error, kinds, status, qt, order=("displaced",), source="synthetic_truth",
                                      n_resamples=50).set_index("kind")
    assert t.loc["displaced", "clean_error_rate"] == pytest.approx(0.25)
    assert t.loc["displaced", "clean_rate_type_matched"] == pytest.approx(0.375)
    assert t.loc["displaced", "excess"] == pytest.approx(0.5 - 0.375)
