import numpy as np
import pytest
import torch

from model.config import CONDITIONS
from model.data import box_geometry
from model.losses import VQALoss
from tests.model.helpers import Setup


def test_visual_token_is_134_scene_plus_512_visual(handmade_index):
    s = Setup(handmade_index)
    batch = s.batch(range(6))
    model = s.model.eval()
    scene = model.tokens.scene(batch["geometry"], batch["region_ids"], batch["entity_ids"])
    visual = model.tokens.visual(model.roi_features(batch))
    b, n = batch["visual_mask"].shape
    assert scene.shape == (b, n, 134) and visual.shape == (b, n, 512)
    assert model.encoder.embeddings.visual_projection.in_features == 646
    # the geometry block is the normalised box, area and aspect ratio, verbatim
    assert torch.equal(scene[..., :6], batch["geometry"])
    g = box_geometry(np.array([[24.0, 0.0, 72.0, 48.0]]), 96, 96)
    np.testing.assert_allclose(g, [[0.25, 0.0, 0.75, 0.5, 0.25, 1.0]])


def test_region_and_entity_embeddings_mean_pool_and_ignore_padding(handmade_index):
    s = Setup(handmade_index)
    tokens = s.model.tokens
    ids = torch.tensor([[[2, 3, 0, 0]]])
    pooled = tokens.scene(torch.zeros(1, 1, 6), ids, torch.zeros(1, 1, 4, dtype=torch.long))
    expected = (tokens.region_embedding.weight[2] + tokens.region_embedding.weight[3]) / 2
    torch.testing.assert_close(pooled[0, 0, 6:70], expected)
    assert torch.count_nonzero(pooled[0, 0, 70:]) == 0      # no entities: the zero vector


def test_padded_visual_tokens_and_question_padding_do_not_change_outputs(handmade_index):
    s = Setup(handmade_index)
    model = s.model.eval()
    batch = s.batch([0, 1, 2])
    with torch.no_grad():
        ref = model(batch, output_attentions=True)
        # pad every item with 3 junk tokens that the mask hides
        padded = dict(batch)
        b, n = batch["visual_mask"].shape
        extra = 3
        padded["visual_mask"] = torch.cat([batch["visual_mask"], torch.zeros(b, extra, dtype=torch.bool)], 1)
        padded["geometry"] = torch.cat([batch["geometry"], torch.rand(b, extra, 6)], 1)
        padded["roi_boxes"] = torch.cat([batch["roi_boxes"], torch.rand(b, extra, 4) * 30 + torch.tensor([0, 0, 31, 31])], 1)
        r = batch["region_ids"].shape[2]
        padded["region_ids"] = torch.cat([batch["region_ids"], torch.randint(1, 5, (b, extra, r))], 1)
        padded["entity_ids"] = torch.cat([batch["entity_ids"], torch.randint(1, 3, (b, extra, batch["entity_ids"].shape[2]))], 1)
        out = model(padded, output_attentions=True)
    for key in ("binary", "region", "severity", "text", "chexpert"):
        torch.testing.assert_close(out[key], ref[key], atol=1e-5, rtol=1e-5)
    for key in ("attn_text_visual", "attn_sim"):
        torch.testing.assert_close(out[key][:, :n], ref[key], atol=1e-5, rtol=1e-5)
        assert torch.all(out[key][:, n:] == 0)
        torch.testing.assert_close(ref[key].sum(-1), torch.ones(3))


def test_sim_fuses_the_question_into_the_scene_tokens(handmade_index):
    s = Setup(handmade_index)
    model = s.model.eval()
    batch = s.batch([0])
    other = dict(batch)
    enc = s.tokenizer(["Is the heart enlarged?"], return_tensors="pt")
    other.update(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], token_type_ids=enc["token_type_ids"])
    with torch.no_grad():
        a, b = model(batch, output_attentions=True), model(other, output_attentions=True)
    assert not torch.allclose(a["attn_sim"], b["attn_sim"])     # SIM attention depends on the text
    torch.testing.assert_close(a["chexpert"], b["chexpert"])     # the aux head reads pixels only


@pytest.mark.parametrize("condition", sorted(CONDITIONS))
def test_every_condition_builds_and_takes_a_training_step(handmade_index, condition):
    s = Setup(handmade_index, condition)
    model = s.model.train()
    batch = s.batch(range(8))
    out = model(batch)
    if condition == "single_head":
        assert out["unified"].shape == (8, 46) and "binary" not in out
    else:
        assert {k: tuple(v.shape[1:]) for k, v in out.items() if k in ("binary", "region", "severity", "text")} == \
            {"binary": (2,), "region": (26,), "severity": (4,), "text": (14,)}
    if condition in ("no_scene_graph", "late_fusion"):
        assert batch["visual_mask"].shape[1] == 1          # the global token only
        assert model.sim is None and not hasattr(model.tokens, "region_embedding")
    assert (condition == "late_fusion") == ("attn_sim" not in out and "attn_text_visual" not in out and hasattr(model, "fuse"))
    loss, terms = VQALoss(s.cfg.model.heads)(out, batch)
    assert torch.isfinite(loss)
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss.backward()
    opt.step()
    changed = [k for k, v in model.named_parameters() if v.requires_grad and not torch.equal(v, before[k])]
    assert any(k.startswith("heads.") for k in changed) and any(k.startswith("encoder.") for k in changed)
    assert not any(k.startswith("backbone.") for k in changed)   # frozen unless backbone.train
    assert all(not p.requires_grad for p in model.backbone.parameters())


def test_gradient_checkpointing_gives_the_same_gradients(handmade_index):
    s = Setup(handmade_index, "full", "model.encoder.dropout=0.0", "model.sim.dropout=0.0", "model.heads.dropout=0.0")
    batch = s.batch(range(4))
    grads = []
    for checkpointing in (False, True):
        model = Setup(handmade_index, "full", "model.encoder.dropout=0.0", "model.sim.dropout=0.0",
                      "model.heads.dropout=0.0").model.train()
        if checkpointing:
            model.enable_gradient_checkpointing()
        loss, _ = VQALoss(s.cfg.model.heads)(model(batch), batch)
        loss.backward()
        grads.append(model.encoder.encoder.layer[0].attention.self.query.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])


def test_backbones_read_the_requested_stride_and_load_only_safetensors(tmp_path):
    from safetensors.torch import save_file

    from cxrbench.errors import CxrbenchError
    from model.backbone import Backbone
    from model.config import BackboneConfig

    for name, stride, channels in (("tiny_cnn", 8, 128), ("tiny_cnn", 16, 256), ("resnet18", 8, 128)):
        bb = Backbone(BackboneConfig(name=name, stride=stride, image_size=64)).eval()
        assert bb.channels == channels
        fmap = bb.body(torch.zeros(1, 3, 64, 64))[0]
        assert fmap.shape[-2:] == (64 // stride, 64 // stride)
        feats = bb(torch.rand(2, 3, 64, 64), [torch.tensor([[0.0, 0.0, 64.0, 64.0]]), torch.tensor([[8.0, 8.0, 40.0, 56.0]] * 3)])
        assert feats.shape == (4, channels)
    trained = Backbone(BackboneConfig(name="tiny_cnn", stride=8))
    save_file({k: v.contiguous() for k, v in trained.body.state_dict().items()}, str(tmp_path / "w.safetensors"))
    torch.manual_seed(123)
    loaded = Backbone(BackboneConfig(name="tiny_cnn", stride=8, weights=str(tmp_path / "w.safetensors")))
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values()))
    (tmp_path / "w.pth").write_bytes(b"not read")
    with pytest.raises(CxrbenchError, match="only .safetensors"):
        Backbone(BackboneConfig(name="resnet18", stride=8, weights=str(tmp_path / "w.pth")))
    with pytest.raises(CxrbenchError, match="stride 64"):
        Backbone(BackboneConfig(name="resnet18", stride=64))


@pytest.mark.parametrize("pool", ["cls", "cls_question"])
def test_pooling_reads_the_question_and_ignores_its_padding(handmade_index, pool):
    s = Setup(handmade_index, "full", f"model.encoder.pool={pool}")
    model = s.model.eval()
    assert hasattr(model, "pool_project") == (pool == "cls_question")
    batch = s.batch([0, 1, 2])
    with torch.no_grad():
        ref = model(batch)
        padded = dict(batch)           # three more question positions, masked out
        b = batch["input_ids"].shape[0]
        padded["input_ids"] = torch.cat([batch["input_ids"], torch.full((b, 3), 7)], 1)
        padded["attention_mask"] = torch.cat([batch["attention_mask"], torch.zeros(b, 3, dtype=batch["attention_mask"].dtype)], 1)
        padded["token_type_ids"] = torch.cat([batch["token_type_ids"], torch.zeros(b, 3, dtype=batch["token_type_ids"].dtype)], 1)
        out = model(padded)
        other = dict(batch)            # another word in the question changes the answer
        other["input_ids"] = batch["input_ids"].clone()
        other["input_ids"][:, 1] = other["input_ids"][:, 1] + 1
        changed = model(other)
    torch.testing.assert_close(out["binary"], ref["binary"], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(changed["binary"], ref["binary"])


def test_name_embeddings_read_the_names_through_the_question_word_embeddings(handmade_index):
    from model.tokens import name_pieces

    s = Setup(handmade_index, "full", "model.tokens.name_embeddings=true")
    model, vocabs, tok = s.model, s.vocabs, s.tokenizer
    ids, mask = name_pieces(vocabs.regions, tok)
    k = vocabs.regions.index("left costophrenic angle")
    pieces = tok("left costophrenic angle", add_special_tokens=False)["input_ids"]
    assert list(ids[k + 2, : len(pieces)]) == pieces and mask[k + 2].sum() == len(pieces)
    assert mask[:2].sum() == 0                                   # padding and unknown have no name
    words = model.encoder.embeddings.word_embeddings
    names = model.tokens.region_names(words)
    expected = model.tokens.region_names.project(words(torch.tensor(pieces)).mean(0))
    torch.testing.assert_close(names[k + 2], expected)
    assert torch.count_nonzero(names[:2]) == 0
    # a region-only loss trains the word embeddings of the region's name (shared with the question)
    ids_batch = torch.tensor([[[k + 2]]])
    scene = model.tokens.scene(torch.zeros(1, 1, 6), ids_batch, torch.zeros(1, 1, 1, dtype=torch.long),
                               word_embeddings=words)
    (scene[0, 0, 6:70] * torch.linspace(-1, 1, 64)).sum().backward()   # (a plain sum of a LayerNorm is constant)
    grad = words.weight.grad
    assert set(torch.nonzero(grad.abs().sum(1)).flatten().tolist()) == set(pieces)


def test_name_embeddings_need_the_tokenizer(handmade_index):
    from model.network import SSGVQANet

    s = Setup(handmade_index, "full", "model.tokens.name_embeddings=true")
    with pytest.raises(ValueError, match="tokenizer"):
        SSGVQANet(s.cfg.model, s.vocabs, len(s.tokenizer), s.tokenizer.pad_token_id)


def test_prior_init_sets_the_sigmoid_heads_biases_to_the_training_log_odds(handmade_index, tmp_path):
    from model.targets import prior_log_odds
    from model.trainer import Trainer
    from model.vocabularies import HEAD_INDEX, REGION_CLASSES
    from tests.model.helpers import small_config

    trainer = Trainer(small_config("full", "model.heads.prior_init=true"), handmade_index, tmp_path / "run")
    trainer._setup_data()
    trainer.cfg.train.features = "online"          # no feature cache needed to build the model here
    trainer._setup_model()
    t = trainer.train_ds.targets
    region_items = (t.head == HEAD_INDEX["region"]) & t.region_valid
    counts = {name: int(t.region[region_items, REGION_CLASSES.index(name)].sum())
              for name in ("left costophrenic angle", "right costophrenic angle")}
    assert all(counts.values()) and sum(counts.values()) == region_items.sum()       # hand-made: one side each
    bias = trainer.model.heads.heads["region"][-1].bias.detach().numpy()
    for name, n in counts.items():
        p = n / region_items.sum()
        assert bias[REGION_CLASSES.index(name)] == pytest.approx(np.log(p / (1 - p)), rel=1e-5)
    assert bias[REGION_CLASSES.index("heart")] == pytest.approx(float(prior_log_odds(np.array([0]), 1)[0]))
    plain = Trainer(small_config("full"), handmade_index, tmp_path / "run2")
    plain._setup_data()
    plain.cfg.train.features = "online"
    plain._setup_model()
    assert not np.allclose(plain.model.heads.heads["region"][-1].bias.detach().numpy(), bias)
