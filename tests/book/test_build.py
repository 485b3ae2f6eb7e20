"""`jupyter-book build book/` on a small synthetic study: every chapter, its figure and table
files, numbers equal to metrics.json, publication mode, absent inputs, a failing notebook."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from tests.book.conftest import BOOK, CHAPTERS, build_book

pytestmark = pytest.mark.slow

FIGURES = ("data_polarity", "data_region_categories", "data_quality", "training_loss", "training_validation",
           "results_by_question_type", "chexpert_auroc_full", "calibration_reliability", "spatial_overall",
           "attention_distributions", "ablation_matrix_compare", "errors_overlap")
TABLES = ("inputs", "data_polarity", "data_region_categories", "data_complexity", "data_question_types", "data_quality",
          "data_views", "data_tolerance", "data_box_noise", "training_loss", "training_final_validation",
          "results_overall", "results_by_question_type", "results_by_head_targets", "results_by_region_category",
          "chexpert_full", "chexpert_consistency_full", "calibration_ece", "spatial_overall", "attention_full",
          "ablation_matrix_compare", "ablation_reports_compare", "zero_shot_overall", "zero_shot_by_type",
          "errors_question_type", "errors_iou_bin", "errors_propagation", "errors_graph_benefit",
          "errors_misaligned_counts", "errors_misaligned_cases", "provenance_runs", "provenance_training", "provenance_packages", "provenance_signatures")
ABSENT = "Not in these inputs"


def _built(result, out: Path) -> Path:
    assert result.returncode == 0, f"book build failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return out / "_build" / "html"


def _text(html: Path) -> str:
    """The page's text, whitespace collapsed."""
    return " ".join(BeautifulSoup(html.read_text(), "html.parser").get_text(" ").split())


def _pages(html: Path) -> list[Path]:
    return [html / "intro.html", *(html / "analyses" / f"{c}.html" for c in CHAPTERS)]


@pytest.fixture(scope="session")
def book(book_inputs, tmp_path_factory) -> tuple[Path, Path]:
    """The book built once per session on the inputs (publication: auto, the default); under
    xdist the first worker builds it under a lock and the others reuse it."""
    from filelock import FileLock

    from tests.fixtures.data import shared_tmp

    out = shared_tmp(tmp_path_factory) / "book-default"
    with FileLock(str(out) + ".lock"):
        if not (out / "_build" / "html" / "intro.html").is_file():
            shutil.rmtree(out, ignore_errors=True)
            _built(build_book(BOOK, out, book_inputs), out)
    return out / "_build" / "html", out


def test_every_chapter_built_without_errors(book):
    html, _ = book
    for page in _pages(html):
        assert page.is_file(), page
        soup = BeautifulSoup(page.read_text(), "html.parser")
        assert soup.find("h1") is not None, page
        # no cell failed or printed to stderr (warnings would land in the book)
        assert not soup.select("div.output.traceback, div.output.error, div.output.stderr"), page
        assert "Traceback (most recent call last)" not in soup.get_text(" "), page
    # the chapters with inputs here render them (each of these has no 'absent' line)
    for chapter in CHAPTERS:
        text = _text(html / "analyses" / f"{chapter}.html")
        # only the study's own tables (cxrbench ablate) are absent from these inputs
        study_only = {"02_training": "steps-to-target", "08_ablation": "expected-results matrix"}
        lines = [line for line in text.split(ABSENT)[1:]]
        assert all(study_only.get(chapter, "--") in line[:80] for line in lines), (chapter, lines)


def test_figures_and_tables_are_written(book):
    _, out = book
    for name in FIGURES:
        for ext in ("png", "pdf"):
            f = out / "figures" / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 1000, f
    for name in TABLES:
        for ext in ("csv", "tex"):
            f = out / "tables" / f"{name}.{ext}"
            assert f.is_file() and f.stat().st_size > 0, f
    assert (out / "figures" / "data_polarity.pdf").read_bytes().startswith(b"%PDF")
    tex = (out / "tables" / "results_overall.tex").read_text()
    assert "\\begin{tabular}" in tex and "exact\\_match" in tex


def _table_after(html: Path, caption: str) -> pd.DataFrame:
    """The rendered table whose caption paragraph starts with 'Table CAPTION.'."""
    soup = BeautifulSoup(html.read_text(), "html.parser")
    for p in soup.find_all("p"):
        if p.get_text().startswith(f"Table {caption}."):
            table = p.find_next("table")
            head = [th.get_text(strip=True) for th in table.find("thead").find_all("th")]
            rows = [[td.get_text(strip=True) for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
            return pd.DataFrame(rows, columns=head)
    raise AssertionError(f"no table {caption} in {html}")


def test_rendered_numbers_equal_metrics_json(book, book_inputs):
    html, out = book
    metrics = json.loads((book_inputs / "eval" / "full" / "metrics.json").read_text())
    rendered = _table_after(html / "analyses" / "03_results.html", "results_overall").set_index("condition")
    for metric in ("exact_match", "token_f1", "rouge_l", "bleu4"):
        e = metrics["overall"][metric]
        assert rendered.loc["full", metric] == f"{e['value']:.3f} [95% CI: {e['ci'][0]:.3f}, {e['ci'][1]:.3f}]"
    raw = pd.read_csv(out / "tables" / "results_overall.csv")
    row = raw[(raw["condition"] == "full") & (raw["metric"] == "exact_match")].iloc[0]
    assert row["value"] == metrics["overall"]["exact_match"]["value"]          # the CSV keeps the full number
    by_type = _table_after(html / "analyses" / "03_results.html", "results_by_question_type").set_index("question type")
    e = metrics["by_question_type"]["B03_is_abnormal"]["exact_match"]
    assert by_type.loc["B03_is_abnormal", "full"].startswith(f"{e['value']:.3f} [95% CI: {e['ci'][0]:.3f}, ")
    assert by_type.loc["B03_is_abnormal", "expected (18.3)"] == "0.70–0.75"
    # the ablation matrix: the paired bootstrap difference of compare, in points
    cells = json.loads((book_inputs / "compare" / "ablation_matrix.json").read_text())["cells"]
    cell = next(c for c in cells if c["condition"] == "late_fusion" and c["subset"] == "overall")
    matrix = _table_after(html / "analyses" / "08_ablation.html", "ablation_matrix_compare")
    got = matrix[(matrix["condition"] == "late_fusion") & (matrix["subset"] == "overall")].iloc[0]
    assert got["Δ points [95% CI]"].startswith(f"{cell['diff'] * 100:+.1f} [")


def test_statistics_in_the_15_3_format(book):
    html, _ = book
    reports = _table_after(html / "analyses" / "08_ablation.html", "ablation_reports_compare")
    t = reports[reports["test"] == "paired_t"]["report"]
    pattern = r"t\(\d+\) = -?\d+\.\d\d, p [=<] \d\.\d{3}, d = -?\d+\.\d\d; Bonferroni-corrected p [=<] \d\.\d{3}"
    assert sum(bool(re.fullmatch(pattern, s)) for s in t) >= 2, t.tolist()
    assert all(re.fullmatch(pattern, s) or re.fullmatch(r"n/a \(.+\)", s) for s in t), t.tolist()
    chi = reports[reports["test"] == "mcnemar_chi2"]["report"]
    assert all(s.startswith("χ²(1) = ") or s.startswith("n/a") for s in chi)
    text = _text(html / "analyses" / "03_results.html")
    assert re.search(r"\d\.\d{3} \[95% CI: \d\.\d{3}, \d\.\d{3}\]", text)


def _content(book_inputs: Path) -> tuple[set[str], set[str], list[bytes]]:
    """Study ids, question and answer texts and overlay images of the inputs (the content that
    publication mode must keep out)."""
    ids, texts, images = set(), set(), []
    for run in (book_inputs / "eval").iterdir():
        if not (run / "predictions.parquet").is_file():
            continue
        pred = pd.read_parquet(run / "predictions.parquet")
        if "study_id" in pred.columns and pd.api.types.is_integer_dtype(pred["study_id"]):   # MIMIC study ids
            ids |= {str(s) for s in pred["study_id"].dropna()}
        for col in ("question", "answer", "prediction"):
            if col in pred.columns:
                texts |= {t for t in pred[col].dropna().astype(str) if len(t.split()) >= 4}
        images += [p.read_bytes() for p in (run / "attention").glob("*.png")]
    images += [p.read_bytes() for p in (book_inputs / "errors" / "overlays").glob("*.png")]
    return ids, texts, images


def _leaks(html: Path, ids, texts, images) -> dict[str, list[str]]:
    found = {"ids": [], "texts": [], "images": []}
    for page in html.rglob("*.html"):
        text = _text(page)
        numbers = set(re.findall(r"\d+", text))
        found["ids"] += [f"{page.name}: {i}" for i in ids if i in numbers]
        found["texts"] += [f"{page.name}: {t[:40]}" for t in texts if " ".join(t.split()) in text]
    for img in (html / "_images").glob("*"):
        if img.read_bytes() in images:
            found["images"].append(img.name)
    return found


def test_publication_mode_leaves_no_content(book, book_inputs, tmp_path):
    ids, texts, images = _content(book_inputs)
    assert ids and texts and images
    # the same build outside publication mode shows content (so the search below can find it)
    leaks_off = _leaks(book[0], ids, texts, images)
    assert leaks_off["images"] and leaks_off["texts"] and leaks_off["ids"], leaks_off
    html = _built(build_book(BOOK, tmp_path, book_inputs, publication="on"), tmp_path)
    intro = _text(html / "intro.html")
    assert "Publication mode: on" in intro
    leaks = _leaks(html, ids, texts, images)
    assert leaks == {"ids": [], "texts": [], "images": []}, leaks
    assert "attention overlays show studies and are left out" in _text(html / "analyses" / "07_explainability.html")


def test_synthetic_default_is_not_publication_mode_and_real_data_is(book, book_inputs, tmp_path, monkeypatch):
    assert "Publication mode: off (auto: all 1 dataset root(s) were written by cxrbench synth)" in \
        _text(book[0] / "intro.html")
    from cxrbench.book.settings import load

    real = tmp_path / "real"               # a run dir whose dataset cannot be found: treated as real data
    shutil.copytree(book_inputs / "eval" / "full", real / "eval" / "full", ignore=shutil.ignore_patterns("shards"))
    monkeypatch.delenv("CXRBENCH_BOOK_PUBLICATION", raising=False)
    monkeypatch.setenv("CXRBENCH_BOOK_INPUTS", str(book_inputs))
    assert load(BOOK).publication is False
    monkeypatch.setenv("CXRBENCH_BOOK_INPUTS", str(real))
    assert load(BOOK).publication is True


def test_absent_inputs_say_so_in_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    html = _built(build_book(BOOK, out, empty), out)
    for chapter in CHAPTERS:
        text = _text(html / "analyses" / f"{chapter}.html")
        assert ABSENT in text, chapter
    assert not list((html / "_images").glob("*.png")) if (html / "_images").exists() else True
    assert not (out / "figures").exists() or not list((out / "figures").iterdir())


def test_a_failing_notebook_fails_the_build(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(BOOK / "_config.yml", book / "_config.yml")
    header = (BOOK / "analyses" / "01_data.md").read_text().split("---\n")[1]
    (book / "intro.md").write_text("# intro\n")
    (book / "bad.md").write_text(f"---\n{header}---\n\n# Bad\n\n```{{code-cell}} ipython3\n"
                                 "raise ValueError('a chapter that raises')\n```\n")
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: bad\n")
    result = build_book(book, tmp_path / "out", tmp_path, timeout=600)
    assert result.returncode != 0
    assert "a chapter that raises" in result.stdout + result.stderr


def test_study_tables_of_cxrbench_ablate(book_inputs, tmp_path):
    """The chapters that read a study dir's own tables (§7), on a study over the same runs."""
    from tests.book.builder import build_study

    study = build_study(tmp_path / "study", book_inputs)
    book = tmp_path / "book"
    book.mkdir()
    for name in ("_config.yml", "intro.md"):
        shutil.copy(BOOK / name, book / name)
    shutil.copytree(BOOK / "_static", book / "_static")
    (book / "analyses").symlink_to((BOOK / "analyses").resolve(), target_is_directory=True)
    (book / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: analyses/02_training\n"
                                   "  - file: analyses/08_ablation\n  - file: analyses/11_provenance\n")
    html = _built(build_book(book, tmp_path / "out", study, publication="off"), tmp_path / "out")
    for chapter in ("02_training", "08_ablation"):
        assert ABSENT not in _text(html / "analyses" / f"{chapter}.html"), chapter
    expected = pd.read_csv(study / "expected_matrix.csv")
    shown = _table_after(html / "analyses" / "08_ablation.html", "ablation_expected_matrix")
    row = expected[(expected["seed"].astype(str) == "0") & (expected["condition"] == "no_scene_graph")
                   & (expected["subset"] == "overall")].iloc[0]
    got = shown[(shown["condition"] == "no_scene_graph") & (shown["subset"] == "overall")].iloc[0]
    assert got["verdict"] == row["verdict"] and got["expected"] == "-12.0 to -8.0"
    assert got["measured"] == f"{row['diff'] * 100:+.1f}"
    spread = pd.read_csv(study / "seed_spread.csv")
    one = spread[(spread["condition"] == "no_scene_graph") & (spread["stratum"] == "overall")
                 & (spread["metric"] == "exact_match")].iloc[0]
    table = _table_after(html / "analyses" / "08_ablation.html", "ablation_seed_spread")
    assert set(table["stratum"]) <= {"overall", "spatial", "relational"}              # not every question type
    shown_one = table[(table["condition"] == "no_scene_graph") & (table["stratum"] == "overall")].iloc[0]
    assert shown_one["Δ mean (points)"] == f"{one['diff_mean'] * 100:+.1f}"           # points, not raw fractions
    conv = _table_after(html / "analyses" / "02_training.html", "training_convergence")
    assert set(conv["no_scene_graph"]) == {"late_fusion", "no_scene_graph"}
    assert "seeds 0" in _text(html / "analyses" / "11_provenance.html")
