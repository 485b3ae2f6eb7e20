"""Pre-training distribution analysis of an index (seed 2.6.1).

The three dimensions of the seed plus the two the pre-training plan filters on:

1. observation polarity: answer positiveness (pos / neg / mixed / none) and yes/no balance of
   binary answers, against the seed's 50/50 goal;
2. anatomical region representation: share of each region category among the regions named by
   main answers (``cxrbench.data.vocabulary.region_category``), against the seed's expected
   coverage bands (cardiac 20-25%, pulmonary 35-40%, pleural 15-20%, mediastinal 10-15%,
   osseous 5-10%; shares over the five categories, "other" reported beside them);
3. question complexity (single-entity, multi-entity, relational, multi-hop) and question types;
4. quality grades; 5. views of the primary image;

each per split and overall. Streams ``qa.parquet`` in row batches (memory does not grow with the
index). Writes ``stats.json`` and one CSV + Markdown table per dimension.

example:
  cxrbench stats data/index --out data/stats
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cxrbench import questions as Qreg
from cxrbench import vocab
from cxrbench.data.vocabulary import region_category
from cxrbench.errors import CxrbenchError
from cxrbench.io import atomic_write_json, atomic_write_text, provenance

EXPECTED_COVERAGE: dict[str, tuple[float, float]] = {
    "cardiac": (0.20, 0.25), "pulmonary": (0.35, 0.40), "pleural": (0.15, 0.20),
    "mediastinal": (0.10, 0.15), "osseous": (0.05, 0.10),
}
POLARITY_GOAL = 0.5
COLUMNS = ["split", "question_type", "complexity", "quality", "answer_positiveness", "answer_binary", "answer_regions", "view"]
ALL = "all"


def compute(index: str | Path, batch_size: int = 65536) -> dict[str, Any]:
    index = Path(index)
    path = index / "qa.parquet"
    if not path.exists():
        raise CxrbenchError(f"{index} is not an index directory (no qa.parquet)")
    pf = pq.ParquetFile(path)
    counters: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    n: Counter = Counter()
    cat_cache: dict[str, str] = {}
    for batch in pf.iter_batches(batch_size=batch_size, columns=COLUMNS):
        t = pa.Table.from_batches([batch])
        d = t.to_pydict()
        regions = d["answer_regions"]
        for i, split in enumerate(d["split"]):
            for key in (split, ALL):
                n[key] += 1
                c = counters[key]
                c["polarity"][d["answer_positiveness"][i]] += 1
                b = d["answer_binary"][i]
                c["binary"]["yes" if b == 1 else "no" if b == 0 else "not_binary"] += 1
                c["question_type"][d["question_type"][i]] += 1
                c["complexity"][d["complexity"][i]] += 1
                c["quality"][d["quality"][i]] += 1
                c["view"][d["view"][i] or "none"] += 1
                for r in regions[i] or ():
                    cat = cat_cache.get(r)
                    if cat is None:
                        cat = cat_cache[r] = region_category(r)
                    c["region_category"][cat] += 1
    if not n:
        raise CxrbenchError(f"{path} has no rows")
    splits = [s for s in (*vocab.SPLITS, ALL) if n[s]]
    out: dict[str, Any] = {"n_qa": {s: n[s] for s in splits}}
    out["polarity"] = {s: _shares(counters[s]["polarity"], ("pos", "neg", "mixed", "none")) for s in splits}
    out["binary_balance"] = {}
    for s in splits:
        yes, no = counters[s]["binary"]["yes"], counters[s]["binary"]["no"]
        share = yes / (yes + no) if yes + no else None
        out["binary_balance"][s] = {"yes": yes, "no": no, "yes_share": share,
                                    "deviation_from_goal": None if share is None else share - POLARITY_GOAL}
    out["region_categories"] = {}
    for s in splits:
        cc = counters[s]["region_category"]
        core = sum(cc[k] for k in vocab.REGION_CATEGORIES)
        rows = {}
        for k in vocab.REGION_CATEGORIES:
            share = cc[k] / core if core else None
            lo, hi = EXPECTED_COVERAGE[k]
            rows[k] = {"count": cc[k], "share": share, "expected": [lo, hi],
                       "status": None if share is None else ("under" if share < lo else "over" if share > hi else "within")}
        total = core + cc[vocab.OTHER_REGION_CATEGORY]
        rows[vocab.OTHER_REGION_CATEGORY] = {"count": cc[vocab.OTHER_REGION_CATEGORY],
                                             "share_of_all_mentions": cc[vocab.OTHER_REGION_CATEGORY] / total if total else None}
        out["region_categories"][s] = rows
    out["complexity"] = {s: _shares(counters[s]["complexity"], Qreg.COMPLEXITY) for s in splits}
    qt_order = [q.code for q in Qreg.QUESTION_TYPES]
    out["question_types"] = {}
    for s in splits:
        cc = counters[s]["question_type"]
        keys = qt_order + sorted(k for k in cc if k not in qt_order)
        out["question_types"][s] = {k: {"count": cc[k], "share": cc[k] / n[s], "strategy": _strategy(k),
                                        "complexity": _complexity(k)} for k in keys if cc[k]}
    out["quality"] = {s: _shares(counters[s]["quality"], vocab.QUALITY_GRADES) for s in splits}
    out["views"] = {s: _shares(counters[s]["view"], ("PA", "AP", "none")) for s in splits}
    manifest = index / "manifest.json"
    if manifest.exists():
        import json

        m = json.loads(manifest.read_text())
        out["index"] = {"content_hash": m.get("content_hash"), "filters": m.get("filters")}
    return out


def _strategy(code: str) -> str | None:
    q = Qreg.BY_CODE.get(code)
    return q.strategy if q else None


def _complexity(code: str) -> str | None:
    q = Qreg.BY_CODE.get(code)
    return q.complexity if q else None


def _shares(c: Counter, order) -> dict[str, dict[str, float]]:
    total = sum(c.values())
    keys = list(order) + sorted(k for k in c if k not in order and k is not None)
    return {str(k): {"count": c[k], "share": c[k] / total if total else 0.0} for k in keys if c[k] or k in order}


# ----------------------------------------------------------------------------------------------
# tables


def tables(stats: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """One long-form table per dimension: rows of (dimension value, split, count, share, ...)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for dim in ("polarity", "complexity", "quality", "views"):
        out[dim] = [{"value": k, "split": s, "count": v["count"], "share": v["share"]}
                    for s, d in stats[dim].items() for k, v in d.items()]
    out["binary_balance"] = [{"split": s, **v} for s, v in stats["binary_balance"].items()]
    out["region_categories"] = []
    for s, d in stats["region_categories"].items():
        for k, v in d.items():
            lo_hi = v.get("expected", [None, None])
            out["region_categories"].append({"category": k, "split": s, "count": v["count"],
                                             "share": v.get("share", v.get("share_of_all_mentions")),
                                             "expected_low": lo_hi[0], "expected_high": lo_hi[1], "status": v.get("status")})
    out["question_types"] = [{"question_type": k, "strategy": v["strategy"], "complexity": v["complexity"], "split": s,
                              "count": v["count"], "share": v["share"]}
                             for s, d in stats["question_types"].items() for k, v in d.items()]
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def to_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(v) for k, v in r.items()})
    return buf.getvalue()


def to_markdown(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def analyse(index: str | Path, out: str | Path, overwrite: bool = False, command: str = "cxrbench stats") -> dict[str, Any]:
    """``cxrbench stats``: claim ``out`` (before the long pass over the index), compute, write."""
    from cxrbench.outputs import OutputDir

    folder = OutputDir.claim(out, "cxrbench stats", overwrite=overwrite)
    stats = compute(index)
    _write_into(stats, folder, command)
    return stats


def write(stats: dict[str, Any], out: str | Path, command: str = "cxrbench stats", overwrite: bool = False) -> list[Path]:
    """Write ``stats.json`` and the tables into ``out``, claimed for ``cxrbench stats`` and
    committed as one set (:class:`cxrbench.outputs.OutputDir`)."""
    from cxrbench.outputs import OutputDir

    return _write_into(stats, OutputDir.claim(out, "cxrbench stats", overwrite=overwrite), command)


def _write_into(stats: dict[str, Any], folder, command: str) -> list[Path]:
    staging = folder.staging()
    names = [atomic_write_json(staging / "stats.json", {"provenance": provenance(command), **stats}).name]
    for name, rows in tables(stats).items():
        if rows:
            names.append(atomic_write_text(staging / f"{name}.csv", to_csv(rows)).name)
            names.append(atomic_write_text(staging / f"{name}.md", to_markdown(rows)).name)
    folder.commit()
    return [folder.path / n for n in names]
