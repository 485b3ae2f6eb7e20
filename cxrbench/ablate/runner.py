"""Run a study's steps as subprocesses, ``jobs`` at a time, resumably (docs/contracts.md §7).

``train``, ``evaluate`` and ``compare`` steps are the ``cxrbench`` commands of those names, run
in the study folder (relative paths only) with their output in ``logs/``; a step is ``done``
when its command exits 0. The manifest is rewritten at every start and finish, so a killed
study (the children die with it: ``PR_SET_PDEATHSIG``) is continued by the same command: steps
left ``running`` or ``failed`` are run again (a training with ``--resume`` from its last saved
state, an evaluation from its shards), ``done`` steps are not. A second ``cxrbench ablate`` on
the same folder is refused while one runs (an ``flock`` on the study's lock file).
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import subprocess
import sys
import time
from pathlib import Path

from cxrbench.ablate.configs import RunConfig, child_env, config_argument, resolve_configs, study_config_sha256
from cxrbench.ablate.plan import (BASELINE, MANIFEST, Manifest, Step, StudyOptions, changed_fields, compare_dir,
                                  eval_dir, identity, new_manifest, plan_steps, run_dir)
from cxrbench.errors import CxrbenchError, DataError
from cxrbench.outputs import OutputDir

COMMAND = "cxrbench ablate"
LOCK = ".cxrbench-ablate.lock"
LOGS = "logs"
FEATURES = "features"
ENTRIES = (MANIFEST, "runs", "eval", "compare", FEATURES, LOGS, LOCK)   # written in place, kept by the summary commit
POLL_S = 0.5


@contextlib.contextmanager
def _locked(study: Path):
    fh = open(study / LOCK, "a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise CxrbenchError(f"{study}: another cxrbench ablate is running on this study") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _die_with_parent() -> None:   # in the child, before exec: a killed study takes its steps with it
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _index_sha256(index: Path) -> str:
    import json

    from cxrbench.evaluate.inputs import index_hash

    path = Path(index) / "manifest.json"
    if not path.is_file():
        raise DataError(path, None, "missing: not an index directory (cxrbench index ROOT --out DIR)")
    return index_hash(Path(index), json.loads(path.read_text()))


def open_manifest(study: Path, index: Path, index_sha256: str,
                  options: StudyOptions) -> tuple[Manifest, dict[str, RunConfig]]:
    """The study's manifest: continued when the folder holds the same study (or the same with more
    conditions or seeds: their steps are added), else new (or refused: a different study is never
    continued, nor buried without ``--overwrite``)."""
    from cxrbench.io import provenance

    conditions, runs = resolve_configs(options.config, options.conditions, options.seeds, options.train_overrides())
    if BASELINE not in conditions:
        raise CxrbenchError(f"the conditions must include the baseline {BASELINE!r}")
    ident = identity(options, conditions, study_config_sha256(runs), index_sha256)
    by_name = {r.name: r for r in runs}
    old = Manifest.load(study)
    if old is not None and old.identity() == ident and not options.overwrite:
        redo_compare = old.data.get("compare") != options.compare_settings()
        for step in old.steps:
            if step.status in ("running", "failed"):
                step.status, step.message = "pending", (step.message or "interrupted")
            if redo_compare and step.kind == "compare":   # other test settings: the trainings stay valid
                step.status, step.fresh, step.message = "pending", True, "comparison settings changed"
        old.data["compare"] = options.compare_settings()
        old.save()
        return old, by_name
    if old is not None and not options.overwrite and _extends(old, ident, runs):
        return _extend(old, ident, runs, options), by_name
    if old is not None and not options.overwrite:
        changed = changed_fields(old.identity(), ident)
        if {"conditions", "seeds"} & set(changed):        # the hash of every run's config follows from them
            changed = [c for c in changed if c != "config.sha256"]
        raise CxrbenchError(f"{study}: holds a study with another {', '.join(changed)}; choose another --out, or "
                            "--overwrite to start this one over (only what the study wrote is replaced)")
    meta = {r.name: _run_meta(r) for r in runs}
    steps = plan_steps(conditions, options.seeds)
    for step in steps:
        step.fresh = old is not None
    prov = provenance(COMMAND)
    manifest = new_manifest(study, index, ident, meta, steps, {k: prov[k] for k in ("command", "git_commit",
                                                                                    "python", "packages")})
    manifest.data["compare"] = options.compare_settings()
    manifest.save()
    return manifest, by_name


def _run_meta(r: RunConfig) -> dict:
    return {"condition": r.condition, "seed": r.seed, "config_sha256": r.sha256, "scene_graph": r.scene_graph,
            "cache": None}


def _extends(old: Manifest, ident: dict, runs: list[RunConfig]) -> bool:
    """The new study is the old one with more conditions or seeds: everything else equal, and
    every run the old study has is configured as before."""
    before = old.identity()
    same = {k: v for k, v in ident.items() if k not in ("conditions", "seeds", "config")}
    if any(before.get(k) != v for k, v in same.items()):
        return False
    if {k: v for k, v in ident["config"].items() if k != "sha256"} != \
            {k: v for k, v in (before["config"] or {}).items() if k != "sha256"}:
        return False
    if not (set(before["conditions"]) <= set(ident["conditions"]) and set(before["seeds"]) <= set(ident["seeds"])):
        return False
    old_runs = old.data["runs"]
    return all(old_runs[r.name]["config_sha256"] == r.sha256 for r in runs if r.name in old_runs)


def _extend(old: Manifest, ident: dict, runs: list[RunConfig], options: StudyOptions) -> Manifest:
    """Add the new runs' steps; finished steps are kept, the comparisons of seeds that gained a
    condition are redone."""
    kept = {s.id: s for s in old.steps}
    steps = plan_steps(ident["conditions"], tuple(ident["seeds"]))
    for i, step in enumerate(steps):
        if step.id in kept:
            steps[i] = kept[step.id]
            if steps[i].status in ("running", "failed"):
                steps[i].status = "pending"
        if step.kind == "compare" and (step.id not in kept or set(old.data["conditions"]) != set(ident["conditions"])):
            steps[i].status, steps[i].fresh = "pending", step.id in kept
    old.steps = steps
    old.data.update(conditions=ident["conditions"], seeds=ident["seeds"], config=ident["config"],
                    compare=options.compare_settings())
    old.data["runs"] = {r.name: old.data["runs"].get(r.name) or _run_meta(r) for r in runs}
    old.save()
    return old


class Scheduler:
    """Starts ready steps (dependencies done, feature cache free) until ``jobs`` run, and
    records each finish."""

    def __init__(self, study: Path, index: Path, manifest: Manifest, runs: dict[str, RunConfig],
                 options: StudyOptions):
        self.study, self.manifest, self.runs, self.options = Path(study), manifest, runs, options
        self.index = str(Path(index).resolve())
        self.running: dict[str, tuple[subprocess.Popen, object]] = {}

    # ---- what a step runs -----------------------------------------------------------------------
    def _caches_in_use(self) -> set[str]:
        runs = self.manifest.data["runs"]
        steps = [self.manifest.step(i) for i in self.running]
        return {runs[f"{s.condition}/seed{s.seed}"]["cache"] for s in steps if s.kind == "train"} - {None}

    def _cache_for(self, step: Step, busy: set[str]) -> tuple[bool, str | None]:
        """(may start now, cache path), given the caches ``busy`` trainings hold. A cache is
        used by one training at a time (HDF5 locks it while a training reads it); a new run takes
        the first free copy of its key, a started run keeps its path (its config.yaml records it)."""
        name = f"{step.condition}/seed{step.seed}"
        meta = self.manifest.data["runs"][name]
        key = self.runs[name].cache_key() if self.options.share_features else None
        if key is None:
            return True, None
        if meta["cache"] is None:
            k = 0
            while f"{FEATURES}/{key}-{k}.h5" in busy:
                k += 1
            meta["cache"] = f"{FEATURES}/{key}-{k}.h5"
            self.manifest.save()
        return meta["cache"] not in busy, meta["cache"]

    def argv(self, step: Step, cache: str | None) -> list[str]:
        o = self.options
        if step.kind == "train":
            args = ["train", "--config", config_argument(o.config), "--index", self.index, "--out", step.out,
                    "--condition", step.condition, "--seed", str(step.seed), "--no-progress"]
            if o.max_steps is not None:
                args += ["--max-steps", str(o.max_steps)]
            for text in o.overrides:
                args += ["--set", text]
            if cache is not None:
                args += ["--set", f"train.cache_path={cache}"]
            if step.fresh:
                args.append("--overwrite")
            elif (self.study / step.out / "deepspeed" / "latest").is_file():
                args.append("--resume")
        elif step.kind == "evaluate":
            args = ["evaluate", f"{run_dir(step.condition, step.seed)}/checkpoint", "--split", o.split,
                    "--index", self.index, "--out", step.out, "--n-resamples", str(o.n_resamples),
                    "--seed", str(o.bootstrap_seed), "--no-progress"]
            if o.skip:
                args += ["--skip", *o.skip]
        else:
            conditions = self.manifest.data["conditions"]
            args = ["compare", eval_dir(BASELINE, step.seed),
                    *(eval_dir(c, step.seed) for c in conditions if c != BASELINE), "--out", compare_dir(step.seed),
                    "--n-resamples", str(o.n_resamples), "--seed", str(o.bootstrap_seed), "--alpha", str(o.alpha),
                    "--correction", o.correction, "--matrix-metric", o.matrix_metric, "--no-progress"]
        if step.fresh and step.kind != "train":
            args.append("--overwrite")
        return args

    # ---- the loop ---------------------------------------------------------------------------------
    def _start(self, step: Step, cache: str | None) -> None:
        args = self.argv(step, cache)
        (self.study / LOGS).mkdir(exist_ok=True)
        log = open(self.study / LOGS / step.log_name, "a")
        step.attempts += 1
        log.write(f"--- attempt {step.attempts}: cxrbench {' '.join(args)}\n")
        log.flush()
        proc = subprocess.Popen([sys.executable, "-m", "cxrbench", *args], cwd=self.study, stdout=log,
                                stderr=subprocess.STDOUT, env=child_env(), preexec_fn=_die_with_parent)
        step.status, step.message = "running", None
        self.running[step.id] = (proc, log)
        self.manifest.save()

    def _finish(self, step: Step, rc: int) -> str:
        proc, log = self.running.pop(step.id)
        log.close()
        if rc == 0:
            step.status, step.message, step.fresh = "done", None, False
        else:
            step.status, step.message = "failed", _last_error(self.study / LOGS / step.log_name, rc)
        self.manifest.save()
        return step.status

    def _startable(self) -> list[tuple[Step, str | None]]:
        done = {s.id for s in self.manifest.steps if s.status == "done"}
        busy = self._caches_in_use()
        out = []
        for step in self.manifest.steps:
            if len(self.running) + len(out) >= self.options.jobs:
                break
            if step.status != "pending" or step.kind == "summary" or not set(step.needs) <= done:
                continue
            ok, cache = self._cache_for(step, busy) if step.kind == "train" else (True, None)
            if ok:
                out.append((step, cache))
                busy |= {cache} - {None}
        return out

    def run(self) -> None:
        from tqdm.auto import tqdm

        steps = self.manifest.steps
        bar = tqdm(total=len(steps), initial=sum(s.status == "done" for s in steps), desc="ablate", unit="step",
                   disable=not self.options.progress)
        try:
            while True:
                for step, cache in self._startable():
                    self._start(step, cache)
                if not self.running:
                    break
                time.sleep(POLL_S)
                for step_id, (proc, _) in list(self.running.items()):
                    rc = proc.poll()
                    if rc is None:
                        continue
                    step = self.manifest.step(step_id)
                    status = self._finish(step, rc)
                    bar.update(status == "done")
                    line = f"{status} {step.id}" + (f": {step.message} (see {LOGS}/{step.log_name})"
                                                    if status == "failed" else "")
                    tqdm.write(line, file=sys.stderr)
        except BaseException:
            self._stop_all()
            raise
        finally:
            bar.close()

    def _stop_all(self) -> None:
        for step_id, (proc, log) in list(self.running.items()):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            step = self.manifest.step(step_id)
            step.status, step.message = "pending", "interrupted"
        self.running.clear()
        self.manifest.save()


def _last_error(log: Path, rc: int) -> str:
    """The command's one-line error (``cxrbench X: error: ...``), else the log's last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line or line.startswith(("Error", "RuntimeError"))]
    text = (errors or lines or [""])[-1]
    return f"exit {rc}: {text[:300]}"


def run_study(index: Path, out: Path, options: StudyOptions) -> Manifest:
    """Run (or continue) the study into ``out``; returns the manifest. Raises CxrbenchError
    naming the failed steps when any failed (the others were run; rerun to retry)."""
    from cxrbench.ablate.summary import write_summary

    study = Path(out)
    index_sha256 = _index_sha256(Path(index))
    claim = OutputDir.claim(study, COMMAND, overwrite=options.overwrite)    # before any long work
    with _locked(study):
        claim.adopt(*ENTRIES)
        manifest, runs = open_manifest(study, Path(index), index_sha256, options)
        Scheduler(study, Path(index), manifest, runs, options).run()
        failed = [s for s in manifest.steps if s.status == "failed"]
        summary = manifest.step("summary")
        if not failed:   # always rewritten (seconds): summary options may differ from the last run's
            write_summary(claim, manifest, options)
            summary.status, summary.attempts, summary.fresh = "done", summary.attempts + 1, False
            manifest.save()
    if failed:
        listed = "; ".join(f"{s.id} ({s.message}; {LOGS}/{s.log_name})" for s in failed)
        raise CxrbenchError(f"{len(failed)} step(s) failed: {listed}. The other steps ran; run the same command "
                            "again to retry the failed ones")
    return manifest
