import json

import pytest
import torch

from cxrbench.errors import CxrbenchError
from model.answers import AnswerBank
from model.checkpoint import load_checkpoint, save_checkpoint
from tests.model.helpers import Setup


@pytest.mark.parametrize("condition, overrides", [("full", ()), ("single_head", ()), ("late_fusion", ()),
                                                  ("full", ("model.tokens.name_embeddings=true",))])
def test_round_trip_gives_bit_identical_outputs_without_unpickling(handmade_index, tmp_path, monkeypatch, condition,
                                                                    overrides):
    s = Setup(handmade_index, condition, *overrides)
    model = s.model.eval()
    with torch.no_grad():   # move weights off their init so a silent re-init could not pass
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    bank = AnswerBank({"is there pleural effusion?": {"yes": "Yes."}}, {}, 5)
    meta = {"step": 3, "epoch": 1, "seed": 0, "condition": condition, "data_index_hash": "abc"}
    out = save_checkpoint(tmp_path / "ckpt", model, s.cfg.model, s.vocabs, s.tokenizer, bank, meta)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["README.md", "answer_bank.json", "config.json", "model.safetensors", "tokenizer.json",
         "tokenizer_config.json", "training_metadata.json", "vocab.txt"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]    # no temp dirs left behind
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["condition"] == condition and cfg["token_dim"] == 646 and cfg["model"]["condition"] == condition

    def no_pickle(*a, **k):
        raise AssertionError("torch.load called: weights must load through safetensors")

    monkeypatch.setattr(torch, "load", no_pickle)
    bundle = load_checkpoint(out)
    assert not bundle.model.training and bundle.condition == condition
    assert bundle.answer_bank.by_question == bank.by_question
    assert bundle.vocabularies.to_json() == s.vocabs.to_json()
    batch = s.batch(range(6))
    with torch.no_grad():
        a, b = model(batch, output_attentions=True), bundle.model(batch, output_attentions=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_saving_again_replaces_the_directory_atomically(handmade_index, tmp_path):
    s = Setup(handmade_index)
    bank = AnswerBank()
    save_checkpoint(tmp_path / "ckpt", s.model, s.cfg.model, s.vocabs, s.tokenizer, bank, {"step": 1})
    save_checkpoint(tmp_path / "ckpt", s.model, s.cfg.model, s.vocabs, s.tokenizer, bank, {"step": 2})
    assert json.loads((tmp_path / "ckpt" / "training_metadata.json").read_text())["step"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_loading_rejects_weights_that_do_not_match_the_config(handmade_index, tmp_path):
    from safetensors.torch import load_file, save_file

    s = Setup(handmade_index)
    out = save_checkpoint(tmp_path / "ckpt", s.model, s.cfg.model, s.vocabs, s.tokenizer, AnswerBank(), {})
    state = load_file(str(out / "model.safetensors"))
    state.pop(next(k for k in state if k.startswith("heads.")))
    save_file(state, str(out / "model.safetensors"))
    with pytest.raises(CxrbenchError, match="do not match"):
        load_checkpoint(out)
    with pytest.raises(CxrbenchError, match="not a checkpoint"):
        load_checkpoint(tmp_path)


def test_weights_file_is_byte_identical_from_process_to_process(tmp_path):
    """safetensors orders its header's metadata by hash, which differs between processes: the
    weights file of the same state must not (same inputs and seed, same bytes)."""
    import hashlib
    import subprocess
    import sys

    from tests.fixtures.model import REPO

    code = ("import sys, torch; from model.checkpoint import write_weights; "
            "write_weights({'b.weight': torch.arange(6.0).reshape(2, 3), 'a.bias': torch.ones(2)}, sys.argv[1])")
    digests = set()
    for k in range(6):          # two metadata keys would collide in all six with probability 1/32
        path = tmp_path / f"w{k}.safetensors"
        subprocess.run([sys.executable, "-c", code, str(path)], cwd=REPO, check=True)
        digests.add(hashlib.sha256(path.read_bytes()).hexdigest())
    assert len(digests) == 1
