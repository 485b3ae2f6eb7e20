"""Output folders owned by the command that writes them, committed as one set (cxrbench.outputs)."""

from __future__ import annotations

import json

import pytest

from cxrbench.errors import CxrbenchError
from cxrbench.outputs import MARKER, OutputDir, settle


def _stage(out: OutputDir, files: dict[str, str]) -> None:
    staging = out.staging()
    for name, text in files.items():
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        (staging / name).write_text(text)


def test_new_folder_is_created_marked_and_committed_as_a_set(tmp_path):
    out = OutputDir.claim(tmp_path / "run", "cxrbench score")
    _stage(out, {"metrics.json": "1", "predictions.parquet": "p1"})
    assert not (tmp_path / "run" / "metrics.json").exists()      # nothing visible before the commit
    assert out.commit() == ["metrics.json", "predictions.parquet"]
    assert (tmp_path / "run" / "metrics.json").read_text() == "1"
    marker = json.loads((tmp_path / "run" / MARKER).read_text())
    assert marker["command"] == "cxrbench score" and marker["owned"] == ["metrics.json", "predictions.parquet"]
    assert not list((tmp_path / "run").glob(".staging-*"))


def test_a_foreign_non_empty_folder_is_refused_and_overwrite_deletes_nothing_of_its_own(tmp_path):
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "thesis.docx").write_text("years of work")
    with pytest.raises(CxrbenchError, match="not empty"):
        OutputDir.claim(folder, "cxrbench index")
    out = OutputDir.claim(folder, "cxrbench index", overwrite=True)
    _stage(out, {"qa.parquet": "x"})
    out.commit()
    assert (folder / "thesis.docx").read_text() == "years of work"
    # a second --overwrite run replaces only what the command wrote
    out = OutputDir.claim(folder, "cxrbench index", overwrite=True)
    _stage(out, {"studies.parquet": "y"})
    out.commit()
    assert sorted(p.name for p in folder.iterdir() if p.name != MARKER) == ["studies.parquet", "thesis.docx"]


def test_another_commands_folder_is_refused_and_its_files_survive_a_takeover(tmp_path):
    out = OutputDir.claim(tmp_path / "r", "cxrbench evaluate")
    _stage(out, {"calibration.json": "c", "metrics.json": "old"})
    out.commit()
    with pytest.raises(CxrbenchError, match="written by 'cxrbench evaluate'"):
        OutputDir.claim(tmp_path / "r", "cxrbench score")
    out = OutputDir.claim(tmp_path / "r", "cxrbench score", overwrite=True)
    _stage(out, {"metrics.json": "new"})
    out.commit()
    assert (tmp_path / "r" / "calibration.json").read_text() == "c"
    assert (tmp_path / "r" / "metrics.json").read_text() == "new"


def test_same_command_reuses_its_folder_and_drops_entries_the_new_set_lacks(tmp_path):
    out = OutputDir.claim(tmp_path / "r", "cxrbench evaluate")
    _stage(out, {"chexpert_report.md": "old", "metrics.json": "old"})
    out.commit()
    out = OutputDir.claim(tmp_path / "r", "cxrbench evaluate")
    (tmp_path / "r" / "shards").mkdir()
    out.adopt("shards")
    _stage(out, {"metrics.json": "new"})
    out.commit(keep=("shards",))
    names = sorted(p.name for p in (tmp_path / "r").iterdir() if p.name != MARKER)
    assert names == ["metrics.json", "shards"]


def test_entries_adopted_by_this_command_survive_its_commit(tmp_path):
    """``evaluate --data`` builds RUN_DIR/index in place and adopts it; the commit of the staged
    outputs once removed it (owned, not in the new set). A later run that does not adopt it
    drops it as any entry of the old set."""
    out = OutputDir.claim(tmp_path / "r", "cxrbench evaluate")
    (tmp_path / "r" / "index").mkdir()
    (tmp_path / "r" / "index" / "manifest.json").write_text("{}")
    out.adopt("index")
    _stage(out, {"metrics.json": "new"})
    assert out.commit() == ["index", "metrics.json"]
    assert (tmp_path / "r" / "index" / "manifest.json").exists()
    again = OutputDir.claim(tmp_path / "r", "cxrbench evaluate")
    _stage(again, {"metrics.json": "newer"})
    assert again.commit() == ["metrics.json"] and not (tmp_path / "r" / "index").exists()


def test_a_kill_during_the_moves_is_rolled_forward_by_the_next_reader(tmp_path):
    run = tmp_path / "r"
    out = OutputDir.claim(run, "cxrbench evaluate")
    _stage(out, {"metrics.json": "old", "predictions.parquet": "old", "attention/summary.json": "old"})
    out.commit()
    out = OutputDir.claim(run, "cxrbench evaluate")
    _stage(out, {"metrics.json": "new", "predictions.parquet": "new", "attention/summary.json": "new"})
    staging = out.staging()
    # what commit() does, stopped after the journal entry and one move (a SIGKILL there)
    marker = json.loads((run / MARKER).read_text())
    marker["pending"] = {"staging": staging.name, "entries": ["attention", "metrics.json", "predictions.parquet"]}
    (run / MARKER).write_text(json.dumps(marker))
    (run / "metrics.json").unlink()
    (staging / "metrics.json").rename(run / "metrics.json")
    assert (run / "predictions.parquet").read_text() == "old"     # a mix on disk ...
    settle(run)                                                    # ... until a reader settles it
    assert [(run / n).read_text() for n in ("metrics.json", "predictions.parquet", "attention/summary.json")] \
        == ["new", "new", "new"]
    assert json.loads((run / MARKER).read_text())["pending"] is None
    assert not list(run.glob(".staging-*"))


def test_a_kill_before_the_commit_leaves_the_old_set_and_the_next_claim_drops_the_staging(tmp_path):
    run = tmp_path / "r"
    out = OutputDir.claim(run, "cxrbench score")
    _stage(out, {"metrics.json": "old"})
    out.commit()
    out = OutputDir.claim(run, "cxrbench score")
    _stage(out, {"metrics.json": "half"})                         # killed here
    assert (run / "metrics.json").read_text() == "old"
    OutputDir.claim(run, "cxrbench score")
    assert not list(run.glob(".staging-*"))


def test_a_folder_that_cannot_be_written_is_an_error_before_any_work(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CxrbenchError, match="not a directory"):
        OutputDir.claim(blocker, "cxrbench score")
    with pytest.raises(CxrbenchError, match="cannot"):
        OutputDir.claim(blocker / "sub", "cxrbench score")
    with pytest.raises(CxrbenchError, match="cannot"):
        OutputDir.claim("/proc/cxrbench-out", "cxrbench score")


def test_atomic_writes_get_the_users_umask(tmp_path):
    from cxrbench.io import atomic_write_text

    p = atomic_write_text(tmp_path / "a.txt", "x")
    assert p.stat().st_mode & 0o777 == 0o666 & ~_current_umask()


def _current_umask() -> int:
    import os

    old = os.umask(0)
    os.umask(old)
    return old
