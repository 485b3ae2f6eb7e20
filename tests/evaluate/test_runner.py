"""The resumable, deterministic sharded inference runner, with a fake predictor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from cxrbench.errors import CxrbenchError
from cxrbench.evaluate.shards import SHARD_DIR, read_shards, run_sharded
from tests.evaluate.fakes import FakePredictor, qa_frame, run_fake

REPO = Path(__file__).resolve().parents[2]


def _calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def test_shards_cover_the_frame_in_order(tmp_path):
    log = tmp_path / "calls.log"
    frame = qa_frame(23)
    out = run_sharded(FakePredictor(log).predict, frame, tmp_path / "shards", inputs={"a": 1}, shard_size=5,
                      progress=False)
    assert out["question_id"].tolist() == frame["question_id"].tolist()
    assert sorted(p.name for p in (tmp_path / "shards").glob("shard-*.parquet")) == [
        f"shard-{i:05d}.parquet" for i in range(5)]
    assert _calls(log) == ["q00000", "q00005", "q00010", "q00015", "q00020"]
    # a second call finds every shard done and predicts nothing; same frame back
    again = run_sharded(FakePredictor(log).predict, frame, tmp_path / "shards", inputs={"a": 1}, shard_size=5,
                        progress=False)
    assert len(_calls(log)) == 5
    pd.testing.assert_frame_equal(out, again)
    pd.testing.assert_frame_equal(read_shards(tmp_path), out)


def test_missing_shards_are_recomputed_and_leftover_temp_files_removed(tmp_path):
    log = tmp_path / "calls.log"
    frame = qa_frame(12)
    first = run_sharded(FakePredictor(log).predict, frame, tmp_path / "shards", inputs={"a": 1}, shard_size=4,
                        progress=False)
    (tmp_path / "shards" / "shard-00001.parquet").unlink()
    (tmp_path / "shards" / ".shard-00002.parquet.abc.tmp").write_bytes(b"half a file")
    again = run_sharded(FakePredictor(log).predict, frame, tmp_path / "shards", inputs={"a": 1}, shard_size=4,
                        progress=False)
    assert _calls(log)[3:] == ["q00004"]
    assert not list((tmp_path / "shards").glob("*.tmp"))
    pd.testing.assert_frame_equal(first, again)


def test_other_inputs_are_refused_unless_overwrite(tmp_path):
    frame = qa_frame(8)
    run_sharded(FakePredictor().predict, frame, tmp_path / "s", inputs={"checkpoint": "a"}, shard_size=4,
                progress=False)
    with pytest.raises(CxrbenchError, match="changed: checkpoint"):
        run_sharded(FakePredictor().predict, frame, tmp_path / "s", inputs={"checkpoint": "b"}, shard_size=4,
                    progress=False)
    with pytest.raises(CxrbenchError, match="qa_keys_sha256"):
        run_sharded(FakePredictor().predict, qa_frame(9), tmp_path / "s", inputs={"checkpoint": "a"},
                    shard_size=4, progress=False)
    log = tmp_path / "calls.log"
    run_sharded(FakePredictor(log).predict, frame, tmp_path / "s", inputs={"checkpoint": "b"}, shard_size=4,
                overwrite=True, progress=False)
    assert len(_calls(log)) == 2


def test_a_predictor_that_drops_rows_is_an_error(tmp_path):
    def bad(part):
        return FakePredictor().predict(part).iloc[1:]

    with pytest.raises(CxrbenchError, match="every QA pair must get exactly one row"):
        run_sharded(bad, qa_frame(6), tmp_path / "s", inputs={}, shard_size=3, progress=False)
    assert not list((tmp_path / "s").glob("shard-*.parquet"))


def test_killed_run_resumes_to_identical_files(tmp_path):
    """Kill a run after some shards, rerun it: the same final bytes as an uninterrupted run,
    and the finished shards are not predicted again."""
    n, shard_size = 40, 5
    clean = tmp_path / "clean"
    run_fake(str(clean), n, shard_size)

    killed = tmp_path / "killed"
    log = tmp_path / "calls.log"
    code = (f"from tests.evaluate.fakes import run_fake; "
            f"run_fake({str(killed)!r}, {n}, {shard_size}, delay=0.15, log={str(log)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, start_new_session=True)
    deadline = time.time() + 60
    shards = killed / SHARD_DIR
    while time.time() < deadline and len(list(shards.glob("shard-*.parquet"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in shards.glob("shard-*.parquet"))
    assert 3 <= len(done) < n // shard_size, "the run must be killed mid-way"
    assert not (killed / "predictions.parquet").exists()

    before = len(_calls(log))
    run_fake(str(killed), n, shard_size, log=str(log))
    resumed_calls = _calls(log)[before:]
    assert sorted(resumed_calls) == sorted(f"q{i * shard_size:05d}" for i in range(n // shard_size)
                                           if f"shard-{i:05d}.parquet" not in done)
    assert (killed / "predictions.parquet").read_bytes() == (clean / "predictions.parquet").read_bytes()
    for i in range(n // shard_size):
        name = f"shard-{i:05d}.parquet"
        assert (killed / SHARD_DIR / name).read_bytes() == (clean / SHARD_DIR / name).read_bytes()


def test_studies_without_a_frontal_image_are_excluded_counted_and_warned(capsys, tmp_path):
    from cxrbench.errors import DataError
    from cxrbench.evaluate.inputs import drop_unanswerable

    qa = pd.DataFrame({"question_id": ["q1", "q2", "q3", "q4"], "study_id": [1, 1, 2, 3]})
    studies = pd.DataFrame({"study_id": [1, 2, 3], "image_id": ["a", None, "c"]})   # study 2: lateral only
    kept, excluded = drop_unanswerable(qa, studies, tmp_path / "studies.parquet")
    assert kept["question_id"].tolist() == ["q1", "q2", "q4"]
    assert excluded == {"no_frontal_image": {"qa_pairs": 1, "studies": 1}}
    assert "1 QA pairs of 1 studies without a frontal" in capsys.readouterr().err
    _, none = drop_unanswerable(qa[qa["study_id"] != 2], studies, tmp_path / "studies.parquet")
    assert none["no_frontal_image"]["qa_pairs"] == 0 and capsys.readouterr().err == ""
    with pytest.raises(DataError, match="no study of the split has a frontal"):
        drop_unanswerable(qa[qa["study_id"] == 2], studies, tmp_path / "studies.parquet")
