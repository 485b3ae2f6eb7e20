"""Bad-input probes of `cxrbench score`, `compare`, `evaluate` and `chexpert` (issue 12), tried as a
careless user would: one row per probe (input, command, expected outcome).

Every probe runs the real command line (``cxrbench.cli.main``, in process, so that the fake model
of tests/evaluate/fakes.py can stand in for a checkpoint) and expects either exit 0 with a counted
warning, or exit 1 with a one-line error (no traceback) naming the file or the QA pair and the
problem. Probes that write into a folder also check that nothing of the user's was deleted and
that no half-written set of outputs is left behind.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from cxrbench.cli import main
from tests.evaluate.fakes import registered_fake_checkpoint
from tests.score.synthetic import make_predictions

SKIP = ["--skip", "bertscore_f1", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall"]
FAST = ["--n-resamples", "20", "--no-progress", *SKIP]


def _frame(n: int = 60) -> pd.DataFrame:
    return make_predictions(n, seed=11)


def _parquet(tmp: Path, frame: pd.DataFrame, name: str = "p.parquet") -> Path:
    frame.to_parquet(tmp / name, index=False)
    return tmp / name


def _jsonl(tmp: Path, frame: pd.DataFrame, name: str = "p.jsonl") -> Path:
    """JSON lines keep a column's mixed types (a number among texts), which Parquet cannot hold."""
    def clean(v):
        if isinstance(v, np.ndarray):
            return [clean(x) for x in v.tolist()]
        if isinstance(v, (float, np.floating)) and np.isnan(v):
            return None
        return v.item() if isinstance(v, np.generic) else v
    lines = [json.dumps({k: clean(v) for k, v in r.items()}) for r in frame.to_dict("records")]
    (tmp / name).write_text("\n".join(lines) + "\n")
    return tmp / name


def _change(fn: Callable[[pd.DataFrame], None]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        f = _frame()
        fn(f)
        return _jsonl(tmp, f)
    return make


def _first(f: pd.DataFrame, head: str) -> int:
    return int(np.flatnonzero(f["head"] == head)[0])


def _set(col: str, head: str, value) -> Callable[[Path], Path]:
    def fn(f: pd.DataFrame) -> None:
        f[col] = f[col].astype(object) if col in f.columns else pd.Series([None] * len(f), dtype=object)
        f.at[_first(f, head), col] = value
    return _change(fn)


def _raw(content: bytes, name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(content)
        return tmp / name
    return make


def _truncated_parquet(tmp: Path) -> Path:
    path = _parquet(tmp, _frame())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _truncated_csv_gz(tmp: Path) -> Path:
    data = gzip.compress(_frame(2000).drop(columns=["boxes_true", "boxes_pred", "box_scores", "regions_true",
                                                    "regions_pred", "answer_entities"]).to_csv(index=False).encode())
    (tmp / "p.csv.gz").write_bytes(data[: len(data) // 2])
    return tmp / "p.csv.gz"


def _repeating_ids_without_study(tmp: Path) -> Path:
    f = _frame().drop(columns=["study_id"])
    f["question_id"] = [f"B03_is_abnormal_{i % 5:03d}" for i in range(len(f))]
    return _parquet(tmp, f)


def _duplicate_key(tmp: Path) -> Path:
    f = _frame()
    f.loc[3, ["study_id", "question_id"]] = f.loc[2, ["study_id", "question_id"]].to_numpy()
    return _parquet(tmp, f)


def _zero_rows(tmp: Path) -> Path:
    return _parquet(tmp, _frame().iloc[0:0])


@dataclass(frozen=True)
class Probe:
    name: str
    make: Callable[[Path], Path]          # writes the input, returns its path
    expect: str                           # a fragment of the one-line error (exit 1)


SCORE_PROBES = [
    Probe("empty parquet file", _raw(b"", "p.parquet"), "unreadable Parquet file"),
    Probe("truncated parquet", _truncated_parquet, "unreadable Parquet file"),
    Probe("CSV content in a .parquet file", _raw(b"question_id,answer\nq1,yes\n", "p.parquet"),
          "unreadable Parquet file"),
    Probe("zero-row parquet", _zero_rows, "no predictions (zero rows)"),
    Probe("empty JSONL", _raw(b"\n\n", "p.jsonl"), "no predictions (zero rows)"),
    Probe("header-only CSV", _raw(b"question_id,question_type,answer,prediction\n", "p.csv"),
          "no predictions (zero rows)"),
    Probe("truncated .csv.gz", _truncated_csv_gz, "damaged or truncated CSV file"),
    Probe("invalid JSON line", _raw(b'{"question_id": "q1"}\n{not json\n', "p.jsonl"), "line 2: invalid JSON"),
    Probe("unknown extension", _raw(b"x", "p.txt"), "unknown predictions format"),
    Probe("binary label 5", _set("label_pred", "binary", 5), "label_pred 5 outside the head's classes (0..1"),
    Probe("fractional label 0.5", _set("label_pred", "binary", 0.5), "label_pred 0.5 is not a class index"),
    Probe("label as text", _set("label_pred", "binary", "yes"), "label_pred is not a number: 'yes'"),
    Probe("severity label 7", _set("label_true", "severity", 7), "label_true 7 outside the head's classes (0..3"),
    Probe("probs outside [0, 1]", _set("probs", "binary", [1.4, -0.4]), "probs outside [0, 1]"),
    Probe("softmax probs not summing to 1", _set("probs", "binary", [0.5, 0.7]), "sum to 1.2000, not 1"),
    Probe("probs of the wrong length", _set("probs", "binary", [0.2, 0.3, 0.5]), "probs has 3 values, the binary head"),
    Probe("a prediction that is a number", _set("prediction", "binary", 7), "prediction must be text, got int 7"),
    Probe("confidence outside [0, 1]", _set("confidence", "binary", 1.5), "confidence 1.5 outside [0, 1]"),
    Probe("malformed box", _set("boxes_pred", "region", [[10.0, 10.0, 5.0, 20.0]]), "malformed box"),
    Probe("duplicate QA pair", _duplicate_key, "duplicate QA pair (study_id, question_id)"),
    Probe("template ids without study_id", _repeating_ids_without_study, "add a study_id column"),
]


@pytest.mark.parametrize("probe", SCORE_PROBES, ids=[p.name for p in SCORE_PROBES])
def test_score_probe(probe, tmp_path, capsys):
    path = probe.make(tmp_path)
    code = main(["score", str(path), "--out", str(tmp_path / "out"), *FAST])
    err = capsys.readouterr().err
    assert code == 1, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("cxrbench score: error: "), err     # one line, no traceback
    assert probe.expect in lines[0], lines[0]
    assert "np.float64" not in lines[0] and "np.int64" not in lines[0]                 # numbers print as numbers
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_score_refuses_a_folder_it_did_not_create_and_deletes_nothing(tmp_path, capsys):
    path = _parquet(tmp_path, _frame())
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "chapter1.tex").write_text("years of work")
    assert main(["score", str(path), "--out", str(thesis), *FAST]) == 1
    assert "not empty and not an output folder of 'cxrbench score'" in capsys.readouterr().err
    assert main(["score", str(path), "--out", str(thesis), "--overwrite", *FAST]) == 0
    assert (thesis / "chapter1.tex").read_text() == "years of work"
    assert (thesis / "metrics.json").exists()


def test_an_output_folder_that_cannot_be_written_fails_before_any_work(tmp_path, capsys):
    path = _parquet(tmp_path, _frame())
    assert main(["score", str(path), "--out", "/proc/cxrbench-probe", *FAST]) == 1
    err = capsys.readouterr().err
    assert "cannot" in err and "/proc/cxrbench-probe" in err
    (tmp_path / "file").write_text("")
    assert main(["score", str(path), "--out", str(tmp_path / "file"), *FAST]) == 1
    assert "exists and is not a directory" in capsys.readouterr().err


def test_no_progress_silences_every_bar(tmp_path, capfd):
    path = _parquet(tmp_path, _frame())
    assert main(["score", str(path), "--out", str(tmp_path / "out"), "--n-resamples", "20", "--no-progress",
                 "--skip", "clinical_term_f1", "semantic_type_accuracy", "graph_entity_recall"]) == 0   # BERTScore on
    assert capfd.readouterr().err == ""


def test_a_kill_during_the_commit_leaves_one_set_and_readers_settle_it(tmp_path, monkeypatch):
    """score killed between its two renames: the next reader finds the new pair, never a mix."""
    import cxrbench.outputs as outputs
    from cxrbench.runs import read_run

    first, second = _frame(), _frame().assign(prediction="no")
    out = tmp_path / "out"
    assert main(["score", str(_parquet(tmp_path, first, "a.parquet")), "--out", str(out), *FAST]) == 0
    moved = []
    real = outputs.os.replace

    def dies_on_second_rename(src, dst):
        if ".staging-" in str(src) and Path(dst).parent == out:   # an entry of the commit moving into place
            if moved:
                raise KeyboardInterrupt("killed")
            moved.append(dst)
        return real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", dies_on_second_rename)
    assert main(["score", str(_parquet(tmp_path, second, "b.parquet")), "--out", str(out), *FAST]) == 130
    monkeypatch.setattr(outputs.os, "replace", real)
    assert len(moved) == 1                    # one of the two files moved: a mix on disk until a reader settles it
    run = read_run(out)                       # settles the pending commit
    assert (run.frame["prediction"] == "no").all()
    assert run.metrics["provenance"]["inputs"]["predictions"]["name"] == "b.parquet"


# ------------------------------------------------------------------------------------- compare
def _scored_run(tmp: Path, name: str, frame: pd.DataFrame) -> Path:
    assert main(["score", str(_parquet(tmp, frame, f"{name}.parquet")), "--out", str(tmp / name), *FAST]) == 0
    return tmp / name


def test_compare_probes(tmp_path, capsys):
    a = _scored_run(tmp_path, "a", _frame())
    b = _scored_run(tmp_path, "b", _frame().assign(prediction="no"))
    cases = [
        ([str(a), str(tmp_path / "missing")], "predictions.parquet is missing"),
        ([str(a), str(_damaged_copy(b, tmp_path / "damaged"))], "unreadable Parquet file"),
        ([str(a), str(_scored_run(tmp_path, "other", _frame().assign(answer="maybe")))],
         "another 'answer' than in the baseline"),
    ]
    for runs, expect in cases:
        assert main(["compare", *runs, "--out", str(tmp_path / "cmp"), "--n-resamples", "50"]) == 1
        err = capsys.readouterr().err
        assert expect in err and len([x for x in err.splitlines() if x.startswith("cxrbench compare: error")]) == 1
    (tmp_path / "cmpfile").write_text("")
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmpfile"), "--n-resamples", "50"]) == 1
    assert "not a directory" in capsys.readouterr().err


def _damaged_copy(run: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(run, dst)
    data = (dst / "predictions.parquet").read_bytes()
    (dst / "predictions.parquet").write_bytes(data[: len(data) // 3])
    return dst


def test_compare_never_calls_a_difference_on_one_qa_pair_significant(tmp_path):
    one = _frame().iloc[:1]
    a = _scored_run(tmp_path, "one_a", one)
    b = _scored_run(tmp_path, "one_b", one.assign(prediction="something else entirely"))
    assert main(["compare", str(a), str(b), "--out", str(tmp_path / "cmp"), "--n-resamples", "200"]) == 0
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert rows and not any(r["significant"] for r in rows)
    em = next(r for r in rows if r["metric"] == "exact_match" and r["test"] == "paired_bootstrap")
    assert em["p_value"] is None and "undefined" in em["report"]


# ------------------------------------------------------------------------------------ evaluate
@pytest.fixture()
def fake_checkpoint(tmp_path):
    with registered_fake_checkpoint(tmp_path / "ckpt") as ckpt:
        yield ckpt


def _evaluate(ckpt: Path, index: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", str(ckpt), "--index", str(index), "--out", str(out), "--shard-size", "64",
                 "--n-overlays", "0", *FAST, *extra])


def test_evaluate_probes(fake_checkpoint, synth_index, tmp_path, capsys):
    (tmp_path / "not-a-checkpoint").mkdir()
    assert _evaluate(tmp_path / "not-a-checkpoint", synth_index, tmp_path / "o1") == 1
    assert "no checkpoint loader recognises this directory" in capsys.readouterr().err
    assert _evaluate(fake_checkpoint, tmp_path, tmp_path / "o2") == 1
    assert "not an index directory" in capsys.readouterr().err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert _evaluate(fake_checkpoint, synth_index, busy) == 1
    assert "not empty and not an output folder of 'cxrbench evaluate'" in capsys.readouterr().err
    assert not (busy / "shards").exists() and (busy / "notes.txt").read_text() == "mine"


def test_evaluate_overwrite_killed_mid_run_leaves_the_old_set(fake_checkpoint, synth_index, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert _evaluate(fake_checkpoint, synth_index, out) == 0
    before = {n: (out / n).read_bytes() for n in ("predictions.parquet", "metrics.json", "calibration.json")}
    from tests.evaluate import fakes

    calls = {"n": 0}
    real = fakes.FakePredictor.predict

    def dies_after_one_shard(self, frame):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        return real(self, frame)

    monkeypatch.setattr(fakes.FakePredictor, "predict", dies_after_one_shard)
    assert _evaluate(fake_checkpoint, synth_index, out, "--overwrite", "--batch-size", "7") == 130
    assert {n: (out / n).read_bytes() for n in before} == before            # the old set, whole
    assert not list(out.glob(".staging-*"))


def test_a_damaged_shard_is_named(fake_checkpoint, synth_index, tmp_path, capsys):
    out = tmp_path / "run"
    assert _evaluate(fake_checkpoint, synth_index, out) == 0
    shard = sorted((out / "shards").glob("shard-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:100])
    assert _evaluate(fake_checkpoint, synth_index, out) == 1
    err = capsys.readouterr().err
    assert shard.name in err and "rerun with --overwrite" in err


def test_chexpert_on_a_damaged_run_dir(tmp_path, capsys):
    run = _scored_run(tmp_path, "a", _frame())
    (run / "predictions.parquet").write_bytes(b"garbage")
    assert main(["chexpert", str(run)]) == 1
    assert "unreadable Parquet file" in capsys.readouterr().err


def test_one_megabyte_prediction_is_capped_counted_and_does_not_stall(tmp_path):
    """A runaway prediction (a model repeating itself for a megabyte) is cut at the text
    metrics' cap, counted, and scored with every metric, model-based ones included."""
    import time

    from cxrbench.metrics.text import MAX_TEXT_CHARS

    f = _frame(20)
    f.loc[3, "prediction"] = "There is a small left pleural effusion. " * 26_000   # ~1 MB
    path = _parquet(tmp_path, f)
    start = time.monotonic()
    assert main(["score", str(path), "--out", str(tmp_path / "out"), "--n-resamples", "20", "--no-progress"]) == 0
    assert time.monotonic() - start < 300          # a guard against the pathological case, not a speed test
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    warning = m["warnings"][f"text_truncated_to_{MAX_TEXT_CHARS}_chars"]
    assert warning["count"] == 1 and warning["examples"][0].endswith(f.loc[3, "question_id"])
    scored = pd.read_parquet(tmp_path / "out" / "predictions.parquet")
    assert len(scored.loc[3, "prediction"]) == len(f.loc[3, "prediction"])   # the user's text is kept whole
    assert not np.isnan(scored.loc[3, "clinical_term_f1"]) and not np.isnan(scored.loc[3, "rouge_l"])
