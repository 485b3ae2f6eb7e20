"""Bad-input probes of `cxrbench index` and `cxrbench check` (issue 12), tried as a user would.

One row per probe: how a copy of a small synthetic root (or the output folder) is damaged, the
command, and the expected outcome: the exit code, text the output must hold, and for errors that
the error is one line without a traceback. Every probe runs the real command in a subprocess
with a time limit (so a hang fails the probe instead of the suite), the index with two worker
processes and small chunks, so the damaged study is read in a worker and its error must cross
the process boundary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cxrbench.data import layout as L
from tests.data.helpers import clone, corrupt_deflate, edit_json, first_member, rewrite_member

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 120
INDEX = ["index", "{root}", "--out", "{out}", "--workers", "2", "--chunk-size", "2", "--no-progress"]
CHECK = ["check", "{root}", "--studies", "8"]


@dataclass
class Probe:
    name: str
    damage: Callable[[Path, Path], None]        # (root, out) -> None
    command: list[str]
    exit_code: int
    expect: tuple[str, ...] = ()               # substrings of the output (stderr for errors)
    after: Callable[[Path, Path, str], None] | None = None
    notes: dict = field(default_factory=dict)


def qa_zip(root: Path) -> Path:
    return root / L.QBA_DIR / L.QA_ZIP


def _member(root: Path, kind: str = "qa") -> str:
    return first_member(root, L.QA_ZIP if kind == "qa" else L.SCENE_ZIP, kind)


# ---- damages


def truncated_member(root, out):
    rewrite_member(qa_zip(root), _member(root), lambda b: b[: len(b) // 2])


def question_without_answers(root, out):
    rewrite_member(qa_zip(root), _member(root), edit_json(lambda d: d["questions"][2].pop("answers")))


def scene_graph_without_observations(root, out):
    rewrite_member(root / L.QBA_DIR / L.SCENE_ZIP, _member(root, "scene_graph"), edit_json(lambda d: d.pop("observations")))


def corrupt_deflate_stream(root, out):
    corrupt_deflate(qa_zip(root), _member(root))


def truncated_zip_file(root, out):
    data = qa_zip(root).read_bytes()
    qa_zip(root).write_bytes(data[: len(data) // 2])


def answer_text_null(root, out):
    def edit(d):
        d["questions"][1]["answers"][0]["text"] = None
    rewrite_member(qa_zip(root), _member(root), edit_json(edit))


def empty_question_metadata(root, out):
    (root / L.QBA_DIR / "metadata" / "question_metadata.parquet").write_bytes(b"")


def csv_labelled_parquet(root, out):
    (root / L.QBA_DIR / "metadata" / "question_metadata.parquet").write_text("patient_id,study_id\np1,s1\n")


def truncated_split_file(root, out):
    p = root / L.JPG_DIR / L.SPLIT_CSV
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def unknown_rating_value(root, out):
    p = root / L.QBA_DIR / "metadata" / "question_metadata.parquet"
    t = pq.read_table(p)
    df = t.to_pandas()
    col = next(c for c in df.columns if L.column_meaning(c) == "quality")
    df.iloc[5, df.columns.get_loc(col)] = 9 if pd.api.types.is_integer_dtype(df[col]) else "8_X"  # either spelling
    df.to_parquet(p)


def zero_rows_in_image_metadata(root, out):
    p = root / L.JPG_DIR / L.METADATA_CSV
    df = pd.read_csv(p)
    df.loc[3, "Rows"] = 0
    df.to_csv(p, index=False, compression="gzip")


def study_missing_from_split_file(root, out):
    p = root / L.JPG_DIR / L.SPLIT_CSV
    df = pd.read_csv(p)
    first = df["study_id"].iloc[0]
    df[df["study_id"] != first].to_csv(p, index=False, compression="gzip")
    (out.parent / "removed.txt").write_text(f"s{first}")


def qa_member_missing(root, out):
    member = _member(root)
    import zipfile

    with zipfile.ZipFile(qa_zip(root)) as z:
        items = [(i, z.read(i.filename)) for i in z.infolist() if i.filename != member]
    with zipfile.ZipFile(qa_zip(root), "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in items:
            z.writestr(info, data)
    (out.parent / "removed.txt").write_text(member.rsplit("/", 1)[-1].split(".")[0])


def user_folder_as_output(root, out):
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")


def output_is_a_file(root, out):
    out.write_text("not a folder")


def qa_zip_missing(root, out):
    qa_zip(root).unlink()


def malformed_dataset_info(root, out):
    (root / L.QBA_DIR / "metadata" / "dataset_info.json").write_text('{"regions": ["left lung", ')


def nothing(root, out):
    pass


# ---- checks run after the command


def untouched_thesis(root, out, text):
    assert (out / "thesis.tex").read_text() == "years of work"
    assert not (out / "qa.parquet").exists()


def thesis_kept_beside_the_index(root, out, text):
    assert (out / "thesis.tex").read_text() == "years of work" and (out / "qa.parquet").exists()


def root_untouched(root, out, text):
    assert (root / L.QBA_DIR / L.QA_ZIP).exists() and not (root / "qa.parquet").exists()


def named_in_manifest(key):
    def check(root, out, text):
        removed = (out.parent / "removed.txt").read_text()
        m = json.loads((out / "manifest.json").read_text())
        assert m["missing"][key]["count"] == 1 and m["missing"][key]["examples"] == [removed]
        assert removed in text   # the console summary names it too
        assert str(out.parent) not in (out / "manifest.json").read_text()  # no absolute paths
    return check


def no_progress_bars(root, out, text):
    assert "index studies" not in text and "it/s" not in text


PROBES = [
    Probe("truncated qa.json member", truncated_member, INDEX, 1, ("qa.zip:", ".qa.json", "malformed JSON")),
    Probe("question without answers", question_without_answers, INDEX, 1, (".qa.json", "missing required field 'answers'")),
    Probe("scene graph without observations", scene_graph_without_observations, INDEX, 1,
          (".scene_graph.json", "missing required field 'observations'")),
    Probe("corrupt deflate stream in a zip member", corrupt_deflate_stream, INDEX, 1,
          ("qa.zip:", ".qa.json", "damaged or truncated zip member")),
    Probe("truncated qa.zip (download cut short)", truncated_zip_file, INDEX, 1, ("qa.zip", "damaged or truncated zip file")),
    Probe("answer text null", answer_text_null, INDEX, 1, (".qa.json", "'text' must be a string, got NoneType")),
    Probe("empty question_metadata.parquet", empty_question_metadata, INDEX, 1,
          ("question_metadata.parquet", "unreadable Parquet file")),
    Probe("CSV text in a .parquet file", csv_labelled_parquet, INDEX, 1, ("question_metadata.parquet", "unreadable Parquet file")),
    Probe("truncated split file", truncated_split_file, INDEX, 1, ("mimic-cxr-2.0.0-split.csv.gz", "CSV file")),
    Probe("unknown rating value", unknown_rating_value, INDEX, 1,
          ("question_metadata.parquet", "question", "quality value", "is not a rating")),
    Probe("Rows 0 in the image metadata", zero_rows_in_image_metadata, INDEX, 1,
          ("mimic-cxr-2.0.0-metadata.csv.gz", "Rows must be a positive integer, got 0")),
    Probe("study missing from the split file", study_missing_from_split_file, INDEX, 0, ("studies not in split file: 1",),
          named_in_manifest("studies_not_in_split_file")),
    Probe("qa.json missing for a study", qa_member_missing, INDEX, 0, ("missing qa: 1",), named_in_manifest("missing_qa")),
    Probe("--out is a folder with a user's files", user_folder_as_output, INDEX, 1,
          ("not empty and not an output folder of 'cxrbench index'", "thesis.tex"), untouched_thesis),
    Probe("--out with --overwrite on a user's folder", user_folder_as_output, [*INDEX, "--overwrite"], 0, ("wrote",),
          thesis_kept_beside_the_index),
    Probe("--out is the synthetic dataset root", nothing, ["index", "{root}", "--out", "{root}", "--no-progress"], 1,
          ("written by 'cxrbench synth', not 'cxrbench index'",), root_untouched),
    Probe("--out is a release folder", nothing, ["index", "{root}", "--out", "{root}/mimic-ext-cxr-qba", "--no-progress"], 1,
          ("not empty and not an output folder of 'cxrbench index'",), root_untouched),
    Probe("--out is a file", output_is_a_file, INDEX, 1, ("exists and is not a directory",)),
    Probe("--no-progress silences every bar", nothing, INDEX, 0, ("wrote",), no_progress_bars),
    Probe("malformed dataset_info.json", malformed_dataset_info, INDEX, 1, ("dataset_info.json", "malformed JSON")),
    Probe("check: empty question_metadata.parquet", empty_question_metadata, CHECK, 1,
          ("unreadable table in metadata/question_metadata.parquet", "unreadable Parquet file")),
    Probe("check: clean tree", nothing, CHECK, 0, ("problems (the readers stop here): none", "index: would succeed")),
    Probe("check: unknown rating value", unknown_rating_value, CHECK, 1, ("unknown rating value", "would FAIL")),
    Probe("check: qa.zip missing", qa_zip_missing, CHECK, 1, ("missing or unreadable archive in qa.zip",)),
    Probe("check: corrupt deflate stream", corrupt_deflate_stream, CHECK, 1, ("damaged or truncated zip member",)),
]


@pytest.fixture(scope="module")
def probe_root(tmp_path_factory) -> Path:
    from cxrbench.data.synth.generate import generate

    root = tmp_path_factory.mktemp("probe-root") / "root"
    generate(root, 4, seed=3, image_size=64, workers=1, progress=False)
    return root


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
def test_probe(probe: Probe, probe_root, tmp_path):
    root = clone(probe_root, tmp_path)
    out = tmp_path / "idx"
    probe.damage(root, out)
    args = [a.format(root=root, out=out) for a in probe.command]
    try:
        res = subprocess.run([sys.executable, "-m", "cxrbench", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{probe.name}: no answer within {TIMEOUT} s (a hang)")
    text = res.stdout + res.stderr
    assert res.returncode == probe.exit_code, text
    assert "Traceback" not in text, text
    if probe.exit_code == 1 and probe.command[0] == "index":
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cxrbench index: error: "), res.stderr
        assert "np." not in lines[0]
    for s in probe.expect:
        assert s in text, (s, text)
    if probe.after is not None:
        probe.after(root, out, text)


def test_probe_table_covers_the_issue_classes():
    names = {p.name for p in PROBES}
    # the damaged inputs issue 12 names for the two-worker index: each has a row
    assert {"truncated qa.json member", "question without answers", "scene graph without observations",
            "corrupt deflate stream in a zip member"} <= names
    assert len(PROBES) >= 20




def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_killed_index_leaves_the_previous_index_and_a_rerun_completes(probe_root, tmp_path):
    import signal
    import time

    root, out = clone(probe_root, tmp_path), tmp_path / "idx"
    cmd = [sys.executable, "-m", "cxrbench", *[a.format(root=root, out=out) for a in INDEX]]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, timeout=TIMEOUT)
    before = _hashes(out)
    proc = subprocess.Popen([*cmd[:-5], "--workers", "1", "--chunk-size", "1", "--no-progress"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + TIMEOUT
    while not list(out.glob(".staging-*/qa.parquet")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    assert proc.returncode == -signal.SIGKILL, "the index finished before it could be killed"
    assert _hashes(out) == before   # the previous index, as it was
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stderr
    assert not list(out.glob(".staging-*")) and json.loads((out / "manifest.json").read_text())["rows"]["qa"] > 0
