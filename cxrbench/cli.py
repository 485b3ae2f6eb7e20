"""The ``cxrbench`` command line.

Each subcommand lives in its own module under ``cxrbench.commands`` that defines
``add_arguments(parser)`` and ``run(args) -> int``; the module is imported only when its command
runs, so ``cxrbench --help`` stays fast and importing one command never drags in another's heavy
dependencies. Packages add commands through the entry-point group ``cxrbench.commands``
(``model`` adds ``train`` that way: cxrbench never imports model).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cxrbench.errors import CxrbenchError

# name -> (module, one-line help). Adding a command is one entry here plus its module.
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("cxrbench.commands.synth", "generate a synthetic MIMIC-CXR-JPG + MIMIC-Ext-CXR-QBA tree"),
    "index": ("cxrbench.commands.index", "build the Parquet index of a dataset root (synthetic or real)"),
    "stats": ("cxrbench.commands.stats", "pre-training distribution analysis of an index (seed 2.6.1)"),
    "check": ("cxrbench.commands.check", "check what the readers make of a dataset install (run before a long index)"),
    "score": ("cxrbench.commands.score", "score a predictions file from any model: metrics.json with CIs"),
    "compare": ("cxrbench.commands.compare", "paired statistical comparison of run dirs against a baseline"),
    "evaluate": ("cxrbench.commands.evaluate", "evaluate a checkpoint on a split: predictions, metrics, CheXpert, attention"),
    "chexpert": ("cxrbench.commands.chexpert", "per-pathology CheXpert report of a run dir"),
    "detector-data": ("cxrbench.commands.detector_data", "scene-graph boxes of an index as a YOLO detection dataset"),
    "detector-train": ("cxrbench.commands.detector_train", "train the YOLOv8 scene-graph detector offline (extra: detect)"),
    "detector-eval": ("cxrbench.commands.detector_eval", "detector mAP on a split: cxrbench's and ultralytics' numbers"),
    "scene-graph": ("cxrbench.commands.scene_graph", "detected scene graphs of new images in the release's format"),
    "ablate": ("cxrbench.commands.ablate", "ablation study: train, evaluate and compare every condition × seed"),
    "errors": ("cxrbench.commands.errors", "error analysis of a run dir: strata, box overlap, scene-graph error propagation"),
}


PLUGIN_GROUP = "cxrbench.commands"


def all_commands() -> dict[str, tuple[str, str]]:
    """Built-in commands and those installed packages register (entry point value: the module;
    its docstring's first line is the help)."""
    from importlib.metadata import entry_points

    out = dict(COMMANDS)
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        out.setdefault(ep.name, (ep.value, f"(from {ep.dist.name if ep.dist else 'a plugin'})"))
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxrbench",
        description="Evaluation and analysis suite for chest X-ray VQA.",
    )
    from cxrbench import __version__

    parser.add_argument("--version", action="version", version=f"cxrbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in all_commands().items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    commands = all_commands()
    if not argv or argv[0] not in commands:
        args = parser.parse_args(argv)  # prints help / version / the unknown-command error
        parser.print_help()
        return 2
    name, rest = argv[0], argv[1:]
    module_name, help_text = commands[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=f"cxrbench {name}", description=module.__doc__ or help_text,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(sub)
    args = sub.parse_args(rest)
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except CxrbenchError as err:  # expected, user-facing failures: one clear line, no traceback
        print(f"cxrbench {name}: error: {err}", file=sys.stderr)
        return err.exit_code
