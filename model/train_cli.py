"""Train SSG-VQA-Net (or one of its ablations) from a YAML config with DeepSpeed.

    cxrbench train --config model/configs/tiny.yaml --index INDEX --out runs/full
    cxrbench train --config model/configs/tiny.yaml --index INDEX --out runs/nosg --condition no_scene_graph
    cxrbench train ... --resume                     # continue a killed run where it stopped
    cxrbench train ... --overwrite                  # start over (replaces only what train wrote)
    cxrbench train ... --nproc 2                    # two processes (torchrun); gloo on CPU
    deepspeed --num_gpus 4 --module model.train_cli ...   # or any launcher that sets RANK/WORLD_SIZE

Conditions: full, no_scene_graph, late_fusion, resnet18, generic_tokenizer, single_head.
Outputs RUN/checkpoint/ (the checkpoint `cxrbench evaluate` reads), RUN/deepspeed/ (resume
state, loaded without unpickling code), RUN/train_log.jsonl, RUN/tensorboard/ (model/run_dir.py).
RUN must be new, empty, or a run directory of `cxrbench train`. Without a launcher, the command runs as a
one-process DeepSpeed world (it sets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys

from model.config import CONDITIONS
from model.logs import quiet_libraries, setup_logging


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="model/configs/tiny.yaml",
                        help="YAML config or a name under model/configs/ (tiny, full)")
    parser.add_argument("--out", required=True, help="run directory (checkpoint/, deepspeed/, logs)")
    parser.add_argument("--index", help="index directory of `cxrbench index` (default: the config's train.index)")
    parser.add_argument("--condition", choices=sorted(CONDITIONS), help="ablation condition (seed 16.1)")
    parser.add_argument("--seed", type=int, help="override the config's seed")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last state")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set train.lr=1e-4 (repeatable)")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps")
    parser.add_argument("--nproc", type=int, default=1, help="processes to launch (torchrun) when not under a launcher")
    parser.add_argument("--wandb", action="store_true", help="also log to Weights & Biases, offline mode")
    parser.add_argument("--push-to-hub", metavar="REPO",
                        help="upload the final checkpoint to a PRIVATE Hub repo (MIMIC data use agreement!)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in a run directory (only what train wrote is replaced; the feature cache "
                             "is kept), or use a non-empty folder train did not create")
    # the DeepSpeed launcher appends --local_rank=N to every process's arguments; LOCAL_RANK in the
    # environment (which it also sets) is what the trainer reads
    parser.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", "--quiet", dest="no_progress", action="store_true",
                        help="no progress bars (nor those of the libraries that build the model)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _relaunch(args: argparse.Namespace) -> int:
    """Run this module under torchrun with ``args.nproc`` processes (same arguments)."""
    argv = ["--config", args.config, "--out", args.out]
    for flag, value in (("--index", args.index), ("--condition", args.condition), ("--seed", args.seed),
                        ("--max-steps", args.max_steps), ("--push-to-hub", args.push_to_hub)):
        if value is not None:
            argv += [flag, str(value)]
    for text in args.overrides:
        argv += ["--set", text]
    argv += [flag for flag, on in (("--resume", args.resume), ("--overwrite", args.overwrite), ("--wandb", args.wandb),
                                   ("--no-progress", args.no_progress)) if on]
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={args.nproc}",
           f"--master_port={_free_port()}", "-m", "model.train_cli", *argv]
    return subprocess.call(cmd)


def run(args: argparse.Namespace) -> int:
    from model.config import load_config

    under_launcher = "WORLD_SIZE" in os.environ and "RANK" in os.environ
    if args.nproc > 1 and not under_launcher:
        return _relaunch(args)
    overrides = list(args.overrides)
    if args.max_steps is not None:
        overrides.append(f"train.max_steps={args.max_steps}")
    if args.wandb:
        overrides.append("train.wandb=true")
    cfg = load_config(args.config, condition=args.condition, overrides=overrides, seed=args.seed)
    index = args.index
    if index is None:
        from cxrbench.errors import CxrbenchError

        raise CxrbenchError("--index INDEX is required (the directory `cxrbench index` wrote)")
    if not under_launcher:
        os.environ.update({"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    setup_logging(int(os.environ.get("RANK", 0)))
    if args.no_progress:
        quiet_libraries()
    from model.trainer import train

    summary = train(cfg, index, args.out, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress,
                    push_to_hub=args.push_to_hub)
    if int(os.environ.get("RANK", 0)) == 0:
        first, last = summary["first_loss"], summary["last_loss"]
        val = summary["validation"].get("accuracy/overall")
        print(f"trained {cfg.model.condition}: {summary['step']} steps, loss {first if first is None else round(first, 4)}"
              f" -> {last if last is None else round(last, 4)}"
              + (f", validation accuracy {val:.3f}" if val is not None else "")
              + f"; checkpoint {summary['checkpoint']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from cxrbench.errors import CxrbenchError

    parser = argparse.ArgumentParser(prog="cxrbench train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except CxrbenchError as err:
        print(f"cxrbench train: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # the entry point of launched processes (torchrun, deepspeed)
    sys.exit(main())
