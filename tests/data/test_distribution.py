"""cxrbench stats: the seed 2.6.1 tables equal direct pandas computations on the index."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench import vocab
from cxrbench.cli import main as cli_main
from cxrbench.data.distribution import EXPECTED_COVERAGE, compute
from cxrbench.data.vocabulary import region_category


@pytest.fixture(scope="module")
def qa(synth_index):
    return pq.read_table(synth_index / "qa.parquet").to_pandas()


def test_counts_match_pandas(synth_index, qa):
    s = compute(synth_index, batch_size=500)  # several batches
    assert s["n_qa"]["all"] == len(qa) and sum(s["n_qa"][k] for k in vocab.SPLITS) == len(qa)
    for split, g in [("all", qa), *qa.groupby("split")]:
        assert {k: v["count"] for k, v in s["polarity"][split].items() if v["count"]} == g.answer_positiveness.value_counts().to_dict()
        assert {k: v["count"] for k, v in s["quality"][split].items() if v["count"]} == g.quality.value_counts().to_dict()
        assert {k: v["count"] for k, v in s["complexity"][split].items() if v["count"]} == g.complexity.value_counts().to_dict()
        assert {k: v["count"] for k, v in s["question_types"][split].items()} == g.question_type.value_counts().to_dict()
        bal = s["binary_balance"][split]
        assert (bal["yes"], bal["no"]) == ((g.answer_binary == 1).sum(), (g.answer_binary == 0).sum())
        assert bal["deviation_from_goal"] == pytest.approx(bal["yes_share"] - 0.5)
    cats = pd.Series([region_category(r) for rs in qa.answer_regions for r in rs]).value_counts()
    core = sum(cats.get(k, 0) for k in vocab.REGION_CATEGORIES)
    rc = s["region_categories"]["all"]
    assert sum(rc[k]["share"] for k in vocab.REGION_CATEGORIES) == pytest.approx(1.0)
    for k, (lo, hi) in EXPECTED_COVERAGE.items():
        assert rc[k]["count"] == cats.get(k, 0) and rc[k]["share"] == pytest.approx(cats.get(k, 0) / core)
        assert rc[k]["status"] == ("under" if rc[k]["share"] < lo else "over" if rc[k]["share"] > hi else "within")


def test_cli_writes_json_and_tables(synth_index, tmp_path):
    assert cli_main(["stats", str(synth_index), "--out", str(tmp_path)]) == 0
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["index"]["content_hash"] == json.loads((synth_index / "manifest.json").read_text())["content_hash"]
    for name in ("polarity", "binary_balance", "region_categories", "complexity", "question_types", "quality", "views"):
        csv = pd.read_csv(tmp_path / f"{name}.csv")
        assert len(csv) > 0
        md = (tmp_path / f"{name}.md").read_text().splitlines()
        assert md[0].startswith("| ") and len(md) == len(csv) + 2


def test_stats_claims_its_output_folder(synth_index, tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    assert cli_main(["stats", str(synth_index), "--out", str(user)]) == 1
    assert "not empty and not an output folder of 'cxrbench stats'" in capsys.readouterr().err
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt"]
    assert cli_main(["stats", str(synth_index), "--out", str(user), "--overwrite"]) == 0
    assert (user / "notes.txt").read_text() == "keep me" and (user / "stats.json").exists()
    # an index folder is another command's output: refused, untouched
    before = sorted(p.name for p in synth_index.iterdir())
    assert cli_main(["stats", str(synth_index), "--out", str(synth_index)]) == 1
    assert sorted(p.name for p in synth_index.iterdir()) == before
