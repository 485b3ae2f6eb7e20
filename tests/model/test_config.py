import pytest

from model.config import CONDITIONS, ConfigError, load_config


def test_every_condition_overlays_the_tiny_config():
    seen = {}
    for name in CONDITIONS:
        cfg = load_config("tiny", condition=name)
        assert cfg.model.condition == name
        seen[name] = cfg.model
    assert seen["full"].tokens.token_dim == 646 and seen["full"].tokens.scene_dim == 134
    assert not seen["no_scene_graph"].tokens.scene_graph and not seen["no_scene_graph"].sim.enabled
    assert seen["late_fusion"].encoder.fusion == "late"
    assert seen["resnet18"].backbone.name == "resnet18"
    assert seen["generic_tokenizer"].tokenizer.vocab == "generic"
    assert seen["single_head"].heads.kind == "single"
    # a condition changes only what it names
    assert seen["resnet18"].encoder == seen["full"].encoder


def test_full_config_has_the_seed_dimensions():
    m = load_config("full").model
    assert (m.encoder.hidden_size, m.encoder.num_layers, m.encoder.num_heads) == (1024, 6, 8)
    assert m.backbone.name == "convnext_base" and m.tokens.token_dim == 646 and m.sim.layers == 2


def test_unknown_keys_and_bad_values_name_the_problem(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  encoder:\n    hiden_size: 64\n")
    with pytest.raises(ConfigError, match=r"model\.encoder: unknown key\(s\) \['hiden_size'\]"):
        load_config(bad)
    bad.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"train\.lr: expected a number"):
        load_config(bad)
    with pytest.raises(ConfigError, match="condition 'nope'"):
        load_config("tiny", condition="nope")
    with pytest.raises(ConfigError, match="sim.heads"):
        load_config("tiny", overrides=["model.sim.heads=4"])   # 4 does not divide 134


def test_overrides_and_per_condition_sections(tmp_path):
    cfg = load_config("tiny", overrides=["train.lr=1e-4", "model.encoder.num_layers=3"], seed=7)
    assert cfg.train.lr == 1e-4 and cfg.model.encoder.num_layers == 3 and cfg.seed == 7
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  backbone: {name: convnext_atto}\n"
                    "conditions:\n  resnet18:\n    model: {backbone: {image_size: 64}}\n")
    assert load_config(path, condition="resnet18").model.backbone.image_size == 64
    assert load_config(path, condition="full").model.backbone.image_size == 128
