import subprocess
import sys

from cxrbench import questions, vocab
from cxrbench.cli import COMMANDS


def test_cli_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "cxrbench", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in COMMANDS:
        assert name in out.stdout


def test_unknown_command_is_a_usage_error():
    out = subprocess.run([sys.executable, "-m", "cxrbench", "no-such-command"], capture_output=True, text=True)
    assert out.returncode == 2


def test_importing_cxrbench_does_not_import_torch_or_deepspeed():
    code = ("import sys, cxrbench, cxrbench.cli, cxrbench.questions, cxrbench.vocab, cxrbench.io;"
            "print('torch' in sys.modules, 'deepspeed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_question_type_normalisation_resolves_ambiguous_short_names():
    assert questions.normalize_question_type("is_abnormal") == "B03_is_abnormal"
    assert questions.normalize_question_type("describe_device", "abnormal") == "B12_describe_device"
    assert questions.normalize_question_type("describe_device", "finding") == "D05_describe_device"
    # ambiguous without a strategy, and foreign types, stay as they are
    assert questions.normalize_question_type("describe_device") == "describe_device"
    assert questions.normalize_question_type("PRES") == "PRES"
    assert len({q.code for q in questions.QUESTION_TYPES}) == 27


def test_quality_rank_orders_grades_best_first():
    ranks = [vocab.QUALITY_RANK[g] for g in vocab.QUALITY_GRADES]
    assert ranks == sorted(ranks, reverse=True)
