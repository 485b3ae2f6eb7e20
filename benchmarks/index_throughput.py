"""Throughput, scaling and memory of `cxrbench index` against a naive json.load + pandas join, same run.

For two synthetic roots (default 200 and 2,000 patients, 64-pixel images: the index never reads
pixels; the real release's encodings unless ``--encoding legacy``) it measures, for

- ``index x2``: ``cxrbench.data.index.build_index`` with two worker processes (both cores),
- ``index x1``: the same with one process,
- ``naive``: ``json.load`` of every qa.json and scene_graph.json from the zips, one dict per QA
  pair, ``pandas`` merges with the split / metadata / question-metadata / CheXpert tables on the
  QA-pair key (study_id, question_id), one ``to_parquet`` (what a first script would do; same
  output columns in spirit; no validation, no nodes),

the wall time, studies/s, QA pairs/s, MB/s of JSON read (uncompressed bytes), the CPU seconds used
(this process + its workers, from getrusage: the work done, whatever else runs on the machine),
CPU microseconds per QA pair, and the peak memory *above the level at the start of the run*
(process + its worker processes, proportional set size, sampled every 200 ms). It prints the
ratios against the naive join, the scaling from one to two workers, the growth of peak memory
from the small root to the large one, and extrapolates the index to the real release (227,239
studies, 42,172,827 QA pairs) three ways: by QA pairs/s of the two-worker run, by MB/s of JSON
(the real JSON volume estimated from the compressed zip sizes, qa.zip 6.9 GB and
scene_data.zip 1.1 GB, and the compression ratio measured on the synthetic zips), and by CPU
seconds per QA pair spread over two cores (the least sensitive to other jobs on the machine).

    python benchmarks/index_throughput.py                   # generates the roots under --work
    python benchmarks/index_throughput.py --sizes 200 2000 --work /tmp/cxrbench-bench
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
import zipfile
from pathlib import Path

import psutil

REAL_STUDIES = 227_239
REAL_QA = 42_172_827
REAL_ZIP_BYTES = (6.9 + 1.1) * 1e9  # qa.zip + scene_data.zip as published (compressed)


class PeakRSS:
    """Peak memory of this process and its children above the level when started (bytes).

    Proportional set size (PSS): pages shared between the parent and its forked workers count
    once, split between them, so two workers are not charged twice for the same libraries."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.proc = psutil.Process()

    def _rss(self) -> int:
        total = self.proc.memory_full_info().pss
        for c in self.proc.children(recursive=True):
            try:
                total += c.memory_full_info().pss
            except psutil.Error:
                pass
        return total

    def __enter__(self) -> "PeakRSS":
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def increment_mb(self) -> float:
        return (self.peak - self.base) / 1e6


def naive_index(root: Path, out: Path) -> int:
    """The baseline: load everything, join with pandas on (study_id, question_id), write one Parquet file."""
    import pandas as pd

    from cxrbench.data.layout import column_meaning

    jpg, qba = root / "mimic-cxr-jpg", root / "mimic-ext-cxr-qba"
    split = pd.read_csv(jpg / "mimic-cxr-2.0.0-split.csv.gz")
    meta = pd.read_csv(jpg / "mimic-cxr-2.0.0-metadata.csv.gz")
    cx = pd.read_csv(jpg / "mimic-cxr-2.0.0-chexpert.csv.gz")
    qmeta = pd.read_parquet(qba / "metadata" / "question_metadata.parquet").reset_index()
    qmeta = qmeta.rename(columns={c: column_meaning(c) for c in qmeta.columns})
    qmeta["study_id"] = qmeta["study_id"].str[1:].astype("int64")
    grades = {f"{i}_{g}": g for i, g in enumerate(("", "D", "C", "B", "A", "A+", "A++"))} | {i: g for i, g in enumerate(
        ("unrated", "D", "C", "B", "A", "A+", "A++"))}
    qmeta["grade"] = qmeta["quality"].map(grades)
    frontal = meta[meta.ViewPosition.isin(["PA", "AP"])].assign(rank=lambda d: d.ViewPosition.map({"PA": 0, "AP": 1}))
    prim = frontal.sort_values(["study_id", "rank", "dicom_id"]).groupby("study_id").head(1).set_index("study_id")
    rows = []
    with zipfile.ZipFile(qba / "qa.zip") as zq, zipfile.ZipFile(qba / "scene_data.zip") as zs:
        scene_names = {n.rsplit("/", 1)[-1].split(".")[0]: n for n in zs.namelist() if n.endswith(".scene_graph.json")}
        for name in zq.namelist():
            doc = json.loads(zq.read(name))
            sg = json.loads(zs.read(scene_names[doc["study_id"]]))
            sid = int(doc["study_id"][1:])
            img = prim["dicom_id"].get(sid)
            for q in doc["questions"]:
                mains = [a for a in q["answers"] if a["answer_type"] == "main_answer"]
                rows.append({
                    "question_id": str(q["question_id"]), "study_id": sid, "subject_id": int(doc["patient_id"][1:]),
                    "question": q["question"], "question_type_json": q["question_type"],
                    "variables": json.dumps(q["variables"]), "answer": " ".join(a["text"] for a in mains),
                    "answer_regions": [r for a in mains for r in a["regions"]],
                    "answer_entities": [e for a in mains for e in a["obs_entities"]],
                    "answer_bboxes": [b for a in mains for b in a["localization"].get(img, {}).get("bboxes", [])],
                    "n_observations": len(sg["observations"]),
                })
    df = pd.DataFrame(rows)
    df = df.merge(qmeta[["study_id", "question_id", "grade", "question_strategy"]], on=["study_id", "question_id"], how="left")
    df = df.merge(split.groupby("study_id")["split"].first().reset_index(), on="study_id", how="left")
    df = df.merge(prim[["dicom_id", "ViewPosition", "Rows", "Columns"]].reset_index(), on="study_id", how="left")
    df = df.merge(cx, on=["subject_id", "study_id"], how="left")
    df.to_parquet(out, index=False)
    return len(df)


def zip_volume(root: Path) -> tuple[int, int]:
    """(uncompressed, compressed) bytes of the study JSON in the two zips."""
    u = c = 0
    for name in ("qa.zip", "scene_data.zip"):
        with zipfile.ZipFile(root / "mimic-ext-cxr-qba" / name) as z:
            for i in z.infolist():
                if i.filename.endswith((".qa.json", ".scene_graph.json")):
                    u += i.file_size
                    c += i.compress_size
    return u, c


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def measure(label: str, fn) -> dict:
    t0, c0 = time.perf_counter(), _cpu()
    with PeakRSS() as mem:
        result = fn()
    return {"label": label, "seconds": time.perf_counter() - t0, "cpu_seconds": _cpu() - c0, "peak_mb": mem.increment_mb,
            "result": result}


def run_size(n: int, args, build_index, resolve_roots, generate) -> dict:
    root = args.work / f"root{n}-{args.encoding}"
    if not (root / "mimic-ext-cxr-qba" / "qa.zip").exists():
        t0 = time.perf_counter()
        generate(root, n, seed=1, image_size=64, workers=args.workers, force=True, progress=True, encoding=args.encoding)
        print(f"generated {n} patients ({args.encoding} encoding) in {time.perf_counter() - t0:.0f} s")
    roots = resolve_roots(root)
    json_u, json_c = zip_volume(root)
    runs = []
    for label, workers in ((f"index x{args.workers}", args.workers), ("index x1", 1)):
        out = args.work / f"idx{n}-{args.encoding}-{workers}"
        r = measure(label, lambda out=out, workers=workers: build_index(roots, out, workers=workers, progress=False,
                                                                        overwrite=True))
        r["qa"], r["studies"] = r["result"]["rows"]["qa"], r["result"]["read"]["studies"]
        runs.append(r)
    r = measure("naive", lambda: naive_index(root, args.work / f"naive{n}.parquet"))
    r["qa"], r["studies"] = r["result"], runs[0]["studies"]
    runs.append(r)
    for r in runs:
        r["studies_s"] = r["studies"] / r["seconds"]
        r["qa_s"] = r["qa"] / r["seconds"]
        r["mb_s"] = json_u / 1e6 / r["seconds"]
        r["cpu_us_qa"] = r["cpu_seconds"] / r["qa"] * 1e6
        r.pop("result")
    print(f"\n== {n} patients: {runs[0]['studies']} studies, {runs[0]['qa']} QA pairs, "
          f"{json_u / 1e6:.1f} MB JSON ({json_c / 1e6:.1f} MB zipped)")
    print(f"{'':10s} {'seconds':>8s} {'CPU s':>7s} {'CPU us/QA':>10s} {'studies/s':>10s} {'QA/s':>9s} {'JSON MB/s':>10s} "
          f"{'peak MB':>8s}")
    for r in runs:
        print(f"{r['label']:10s} {r['seconds']:8.2f} {r['cpu_seconds']:7.2f} {r['cpu_us_qa']:10.1f} {r['studies_s']:10.1f} "
              f"{r['qa_s']:9.0f} {r['mb_s']:10.2f} {r['peak_mb']:8.0f}")
    naive = runs[-1]
    for r in runs[:-1]:
        print(f"{r['label']} vs naive: {naive['seconds'] / r['seconds']:.2f}x the speed (wall), "
              f"{naive['cpu_seconds'] / r['cpu_seconds']:.2f}x less CPU, {naive['peak_mb'] / max(r['peak_mb'], 1):.1f}x less peak memory")
    two, one = runs[0], runs[1]
    print(f"scaling 1 -> {args.workers} workers: {one['seconds'] / two['seconds']:.2f}x the speed "
          f"({one['seconds'] / two['seconds'] / args.workers:.0%} parallel efficiency), CPU per QA pair "
          f"{one['cpu_us_qa']:.1f} -> {two['cpu_us_qa']:.1f} us")
    return {"patients": n, "json_mb": json_u / 1e6, "json_zip_mb": json_c / 1e6, "runs": runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[200, 2000], help="patients per synthetic root")
    ap.add_argument("--work", type=Path, default=Path("/tmp/cxrbench-index-bench"), help="where roots are generated and kept")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--encoding", choices=("real", "legacy"), default="real", help="spelling of the synthetic roots")
    args = ap.parse_args()

    from cxrbench.data.index import build_index
    from cxrbench.data.layout import resolve_roots
    from cxrbench.data.synth.generate import generate

    args.work.mkdir(parents=True, exist_ok=True)
    report = [run_size(n, args, build_index, resolve_roots, generate) for n in args.sizes]
    if len(report) >= 2:
        a, b = report[0], report[-1]
        scale = b["runs"][0]["qa"] / a["runs"][0]["qa"]
        print(f"\npeak memory growth for {scale:.1f}x the QA pairs: "
              + ", ".join(f"{ra['label']} {ra['peak_mb']:.0f} -> {rb['peak_mb']:.0f} MB" for ra, rb in zip(a["runs"], b["runs"])))
    big = report[-1]
    best = big["runs"][0]
    ratio = big["json_mb"] / big["json_zip_mb"]
    real_json_mb = REAL_ZIP_BYTES * ratio / 1e6
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs slow the wall times)")
    print(f"\nextrapolation to the real release ({REAL_STUDIES:,} studies, {REAL_QA:,} QA pairs), {best['label']}:")
    print(f"  by QA pairs/s ({best['qa_s']:.0f}/s): {REAL_QA / best['qa_s'] / 60:.0f} min")
    print(f"  by JSON MB/s ({best['mb_s']:.1f} MB/s; real JSON ~{real_json_mb / 1e3:.0f} GB at the synthetic "
          f"compression ratio {ratio:.1f}x): {real_json_mb / best['mb_s'] / 60:.0f} min")
    print(f"  by CPU per QA pair ({best['cpu_us_qa']:.1f} us) over {args.workers} cores: "
          f"{REAL_QA * best['cpu_us_qa'] / 1e6 / args.workers / 60:.0f} min")
    per_qa_naive = big["runs"][-1]["peak_mb"] / big["runs"][-1]["qa"]
    print(f"  naive peak memory at {per_qa_naive * 1e3:.2f} KB per QA pair would be ~{per_qa_naive * REAL_QA / 1e3:.0f} GB")
    out = args.work / "index_throughput.json"
    out.write_text(json.dumps(report, indent=2))
    print(f"\nnumbers in {out}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
