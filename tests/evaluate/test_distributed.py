"""Evaluation on several processes (RANK / WORLD_SIZE, as torchrun sets them): each rank predicts its
shards, rank 0 merges, and the run dir is byte-identical to a one-process run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.evaluate.fakes import write_fake_checkpoint

REPO = Path(__file__).resolve().parents[2]
OUTPUTS = ("predictions.parquet", "metrics.json", "calibration.json", "chexpert_report.json", "attention/summary.json")
SCRIPT = """
import sys
from cxrbench.cli import main
from cxrbench.predictor import register_loader
from tests.evaluate.fakes import FakeLoader
register_loader(FakeLoader())
sys.exit(main(sys.argv[1:]))
"""


def _launch(ckpt: Path, index: Path, out: Path, world: int) -> list[subprocess.Popen]:
    args = ["evaluate", str(ckpt), "--index", str(index), "--out", str(out), "--shard-size", "50", "--n-resamples",
            "30", "--no-progress", "--n-overlays", "1", "--skip", "bertscore_f1", "clinical_term_f1",
            "semantic_type_accuracy", "graph_entity_recall"]
    procs = []
    for rank in range(world):
        env = dict(os.environ, OMP_NUM_THREADS="1")
        if world > 1:
            env.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
        procs.append(subprocess.Popen([sys.executable, "-c", SCRIPT, *args], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out_, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    return procs


@pytest.fixture()
def fake_checkpoint(tmp_path):
    return write_fake_checkpoint(tmp_path / "ckpt")


def test_two_ranks_give_the_bytes_of_one_process(fake_checkpoint, synth_index, tmp_path):
    _launch(fake_checkpoint, synth_index, tmp_path / "one", 1)
    _launch(fake_checkpoint, synth_index, tmp_path / "two", 2)
    shards = sorted(p.name for p in (tmp_path / "two" / "shards").glob("shard-*.parquet"))
    assert len(shards) >= 3                                    # both ranks had work
    for name in OUTPUTS:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    for name in shards:
        assert (tmp_path / "one" / "shards" / name).read_bytes() == (tmp_path / "two" / "shards" / name).read_bytes()


def test_a_failing_rank_stops_rank_zero_with_its_error(tmp_path):
    """Rank 1 failed (its report is in the shard folder): rank 0 must say so, not wait for ever."""
    import time

    import pandas as pd

    from cxrbench.errors import CxrbenchError
    from cxrbench.evaluate.shards import World, run_sharded
    from tests.evaluate.fakes import FakePredictor, qa_frame

    shards = tmp_path / "shards"
    shards.mkdir()
    report = shards / "failed-rank1.txt"
    report.write_text("CxrbenchError: no checkpoint loader recognises this directory\n")
    later = time.time() + 60                                   # written during this launch, not before it
    os.utime(report, (later, later))
    with pytest.raises(CxrbenchError, match="rank 1 failed: CxrbenchError: no checkpoint loader"):
        run_sharded(FakePredictor().predict, qa_frame(10), shards, inputs={}, shard_size=3, progress=False,
                    world=World(0, 2, 0), timeout=60)
    assert isinstance(pd.read_parquet(shards / "shard-00000.parquet"), pd.DataFrame)   # rank 0 did its own share
