"""Bad-input probes of `cxrbench train` (issue 12), tried as a user would: one row per probe.

Each probe damages a copy of a finished two-step run (or builds a folder) and runs the real
command in a subprocess; the expected outcome is the exit code and a one-line error naming the
file, and for planted payloads that the payload never ran. Probes of the resume state are
refused before any data is read or the model is built.
"""

from __future__ import annotations

import builtins
import pickle
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.model import REPO, train_command, train_env

SMALL = ["model.encoder.hidden_size=32", "model.encoder.num_layers=1", "model.encoder.num_heads=2",
         "model.encoder.intermediate_size=64", "model.heads.hidden=32", "model.backbone.image_size=64",
         "train.batch_size=4", "train.save_every=2", "train.eval_every_epoch=false", "train.tune_thresholds=false"]
ARGS = ["--max-steps", "2", *[x for s in SMALL for x in ("--set", s)]]
TAG = "step00000002"
MODEL_STATES = f"deepspeed/{TAG}/mp_rank_00_model_states.pt"
OPTIM_STATES = f"deepspeed/{TAG}/zero_pp_rank_0_mp_rank_00_optim_states.pt"


class Payload:
    """Unpickling this object runs code: it writes the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').write('the payload ran')",)


def _plant_pickle(run: Path, rel: str, marker: Path) -> None:
    (run / rel).write_bytes(pickle.dumps(Payload(marker)))


def _plant_torch_zip(run: Path, rel: str, marker: Path) -> None:
    import torch

    torch.save({"module": {}, "client": Payload(marker)}, run / rel)   # DeepSpeed's own file format


def _truncate(run: Path, rel: str, marker: Path) -> None:
    data = (run / rel).read_bytes()
    (run / rel).write_bytes(data[: len(data) // 2])


def _garbage(run: Path, rel: str, marker: Path) -> None:
    (run / rel).write_bytes(b"\x00not a checkpoint\xff" * 64)


def _latest(text: str):
    def plant(run: Path, rel: str, marker: Path) -> None:
        (run / "deepspeed" / "latest").write_text(text)
    return plant


def _delete(run: Path, rel: str, marker: Path) -> None:
    (run / rel).unlink()


# (probe, how the run is damaged, file, extra arguments, expected exit code, expected error text)
RESUME_PROBES = [
    ("pickle payload as the model state", _plant_pickle, MODEL_STATES, [], 1, "refused without unpickling"),
    ("pickle payload as the ZeRO optimizer state", _plant_pickle, OPTIM_STATES, [], 1, "refused without unpickling"),
    ("payload inside a torch.save zip (model state)", _plant_torch_zip, MODEL_STATES, [], 1,
     "refused to load: it pickles exec"),
    ("payload inside a torch.save zip (optimizer state)", _plant_torch_zip, OPTIM_STATES, [], 1,
     "refused to load: it pickles exec"),
    ("truncated model state", _truncate, MODEL_STATES, [], 1, "unreadable resume state"),
    ("garbage optimizer state", _garbage, OPTIM_STATES, [], 1, "unreadable resume state"),
    ("optimizer state deleted", _delete, OPTIM_STATES, [], 1, "missing"),
    ("latest names a path outside the run", _latest("../../../etc"), None, [], 1, "not a checkpoint tag"),
    ("latest names a tag that is not there", _latest("step00000099"), None, [], 1, "does not exist"),
    ("resume with a changed config", None, None, ["--set", "train.lr=0.1"], 1, "different config (changed: train.lr)"),
]


@pytest.fixture(scope="module")
def finished_run(handmade_index, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("probes") / "run"
    proc = subprocess.run(train_command(handmade_index, run, *ARGS), env=train_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / MODEL_STATES).is_file() and (run / OPTIM_STATES).is_file()
    return run


def _train(index: Path, run: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(train_command(index, run, *ARGS, *extra), env=train_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=600)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.startswith("cxrbench train: error:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return lines[0]


def test_the_payload_is_live(tmp_path):
    """The probes' payload really runs code when unpickled the way DeepSpeed would."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.read_text() == "the payload ran"


@pytest.mark.parametrize("probe, damage, rel, extra, code, message", RESUME_PROBES, ids=[p[0] for p in RESUME_PROBES])
def test_resume_probe(finished_run, handmade_index, tmp_path, probe, damage, rel, extra, code, message):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    marker = tmp_path / "ran"
    if damage is not None:
        damage(run, rel, marker)
    proc = _train(handmade_index, run, "--resume", *extra)
    assert proc.returncode == code, proc.stderr[-3000:]
    line = _error_line(proc)
    assert message in line, line
    if rel is not None:
        assert str(run / rel) in line                         # names the file
    assert not marker.exists()                                # the payload never ran
    assert "extracting RoI features" not in proc.stderr and "feature cache" not in proc.stderr   # refused before work


def test_resume_of_a_folder_train_did_not_create_is_refused(finished_run, handmade_index, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / ".cxrbench-output.json").unlink()                  # e.g. a run dir copied from elsewhere by hand
    proc = _train(handmade_index, run, "--resume")
    assert proc.returncode == 1 and "not an output folder of 'cxrbench train'" in _error_line(proc)


def test_overwrite_never_replaces_what_train_did_not_write(handmade_index, tmp_path):
    folder = tmp_path / "mine"
    (folder / "checkpoint").mkdir(parents=True)
    (folder / "checkpoint" / "thesis.tex").write_text("years of work")
    (folder / "notes.txt").write_text("keep me")
    proc = _train(handmade_index, folder)
    assert proc.returncode == 1 and "not empty and not an output folder" in _error_line(proc)
    proc = _train(handmade_index, folder, "--overwrite")
    assert proc.returncode == 1 and "holds checkpoint, not written by cxrbench train" in _error_line(proc)
    assert (folder / "checkpoint" / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in folder.iterdir()) == sorted(["checkpoint", "notes.txt", ".cxrbench-output.json"])


def test_overwrite_of_a_foreign_folder_trains_beside_its_files_and_restarts_its_own_run(handmade_index, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    proc = _train(handmade_index, folder, "--overwrite")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "checkpoint" / "model.safetensors").is_file()
    proc = _train(handmade_index, folder)                    # a second start: the state is not buried silently
    assert proc.returncode == 1 and "pass --resume" in _error_line(proc)
    before = (folder / "train_log.jsonl").read_text()
    proc = _train(handmade_index, folder, "--overwrite")     # starts over: same seed, same log
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (folder / "train_log.jsonl").read_text() == before
    assert (folder / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in (folder / "deepspeed").glob("step*")) == [TAG]
