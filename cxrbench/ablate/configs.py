"""Each run's resolved training config, asked of the model package in a subprocess.

cxrbench never imports ``model``; a study still has to know, before training, what every
condition × seed will train (to hash it, to refuse a changed study on resume, and to see which
runs read the same backbone features). :func:`resolve_configs` asks ``model.config.load_config``
in a child Python process, with the arguments ``cxrbench train`` gives it (config, condition,
seed, ``--set`` overrides, ``--max-steps`` as ``train.max_steps``), and reads the configs back
as JSON. That child process and the ``cxrbench train`` command are the only contact with the
model package.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxrbench.errors import CxrbenchError

# run in a child process (stdin: the request as JSON; stdout: the configs as JSON, last line)
RESOLVER = r"""
import json, sys
request = json.loads(sys.stdin.read())
try:
    from model.config import CONDITIONS, load_config
    conditions = request["conditions"] or list(CONDITIONS)
    configs = {}
    for condition in conditions:
        for seed in request["seeds"]:
            cfg = load_config(request["config"], condition=condition, overrides=request["overrides"], seed=seed)
            configs[f"{condition}/seed{seed}"] = cfg.to_dict()
    print(json.dumps({"conditions": conditions, "configs": configs}))
except Exception as err:
    print(json.dumps({"error": f"{type(err).__name__}: {err}"}))
"""
# variables a launcher sets; a child must start its own one-process world
LAUNCHER_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_env() -> dict[str, str]:
    """Environment of every subprocess of a study: no launcher variables, one thread per job
    unless the user set OMP_NUM_THREADS."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def config_argument(config: str) -> str:
    """A config file as an absolute path (the children run in the study folder); a name
    (``tiny``, ``full``) as it is."""
    path = Path(config)
    return str(path.resolve()) if path.is_file() else config


@dataclass(frozen=True)
class RunConfig:
    """One run of the study: its condition, seed and resolved config (``train.cache_path`` unset)."""

    condition: str
    seed: int
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.condition}/seed{self.seed}"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()

    @property
    def scene_graph(self) -> bool:
        return bool(self.config["model"]["tokens"]["scene_graph"])

    def cache_key(self) -> str | None:
        """Runs with the same key read the same boxes through the same backbone, so their
        feature caches hold the same numbers; None when the run extracts features online.

        The key: the backbone section, the token boxes (scene graph on or off, node cap), whether
        flipped images are cached, and the seed when the backbone is randomly initialised (its
        weights then depend on the seed)."""
        model, train = self.config["model"], self.config["train"]
        if train["features"] != "cache":
            return None
        backbone = model["backbone"]
        what = {"backbone": backbone, "scene_graph": model["tokens"]["scene_graph"],
                "max_nodes": model["tokens"]["max_nodes"], "flip": train["augment"]["hflip"] > 0,
                "seed": None if backbone.get("weights") else self.seed}
        digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]
        return f"{backbone['name']}-{'sg' if model['tokens']['scene_graph'] else 'global'}-{digest}"


def resolve_configs(config: str, conditions: tuple[str, ...], seeds: tuple[int, ...],
                    overrides: tuple[str, ...]) -> tuple[list[str], list[RunConfig]]:
    """The conditions (all the model package defines when ``conditions`` is empty) and the
    resolved config of every condition × seed, in that order; CxrbenchError if the model
    package refuses one (unknown condition, bad override, missing file)."""
    request = {"config": config_argument(config), "conditions": list(conditions), "seeds": list(seeds),
               "overrides": list(overrides)}
    try:
        proc = subprocess.run([sys.executable, "-c", RESOLVER], input=json.dumps(request), capture_output=True,
                              text=True, env=child_env(), timeout=600)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CxrbenchError(f"could not ask the model package for the training configs ({err})") from None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise CxrbenchError(f"could not resolve the training configs: {tail} (is the model package installed? "
                            "cxrbench ablate trains with its `cxrbench train` command)") from None
    if "error" in answer:
        raise CxrbenchError(f"config {config}: {answer['error']}")
    runs = [RunConfig(c, s, answer["configs"][f"{c}/seed{s}"]) for c in answer["conditions"] for s in seeds]
    return list(answer["conditions"]), runs


def study_config_sha256(runs: list[RunConfig]) -> str:
    """One hash of every run's resolved config, in run order."""
    return hashlib.sha256("\n".join(f"{r.name} {r.sha256}" for r in runs).encode()).hexdigest()
