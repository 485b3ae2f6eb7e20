import torch

from model.config import HeadConfig
from model.vocabularies import HEAD_INDEX
from model.losses import VQALoss, unified_targets
from model.vocabularies import UNIFIED_OFFSETS


def _batch():
    b = 4
    region = torch.zeros(b, 26)
    region[1, [0, 3]] = 1
    findings = torch.zeros(b, 14)
    findings[3, [1, 9]] = 1
    return {"head": torch.tensor([HEAD_INDEX[h] for h in ("binary", "region", "severity", "text")]),
            "binary": torch.tensor([1, -1, -1, -1]), "severity": torch.tensor([-1, -1, 2, -1]),
            "region": region, "findings": findings,
            "chexpert": torch.zeros(b, 14), "chexpert_weight": torch.ones(b, 14)}


def _out(b=4):
    g = torch.Generator().manual_seed(0)
    return {k: torch.randn(b, n, generator=g, requires_grad=True)
            for k, n in (("binary", 2), ("region", 26), ("severity", 4), ("text", 14), ("chexpert", 14))}


def test_each_head_is_trained_only_on_its_own_labelled_items():
    batch, out = _batch(), _out()
    loss, terms = VQALoss(HeadConfig())(out, batch)
    loss.backward()
    # the binary head sees row 0 only, the severity head row 2 only, ...
    assert torch.count_nonzero(out["binary"].grad.abs().sum(1)).item() == 1 and out["binary"].grad[0].abs().sum() > 0
    assert out["severity"].grad[[0, 1, 3]].abs().sum() == 0 and out["severity"].grad[2].abs().sum() > 0
    assert out["region"].grad[[0, 2, 3]].abs().sum() == 0
    assert out["text"].grad[[0, 1, 2]].abs().sum() == 0
    manual = (torch.nn.functional.cross_entropy(out["binary"][[0]], torch.tensor([1]))
              + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(out["region"][[1]], batch["region"][[1]])
              + 0.3 * torch.nn.functional.cross_entropy(out["severity"][[2]], torch.tensor([2]))
              + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(out["text"][[3]], batch["findings"][[3]]))
    torch.testing.assert_close(terms["loss/vqa"], manual.detach())


def test_uncertain_chexpert_labels_are_ignored():
    batch, out = _batch(), _out()
    batch["chexpert_weight"][:, 5] = 0.0                       # U-Ignore: label 5 uncertain everywhere
    loss, _ = VQALoss(HeadConfig())(out, batch)
    loss.backward()
    assert out["chexpert"].grad[:, 5].abs().sum() == 0
    assert out["chexpert"].grad[:, 4].abs().sum() > 0
    # the value: sum(m * bce) / sum(m)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out["chexpert"], batch["chexpert"], reduction="none")
    m = batch["chexpert_weight"]
    torch.testing.assert_close(VQALoss(HeadConfig())(out, batch)[1]["loss/chexpert"], ((bce * m).sum() / m.sum()).detach())


def test_batches_without_some_heads_and_single_head_targets():
    batch = _batch()
    batch["head"][:] = HEAD_INDEX["binary"]
    batch["binary"][:] = torch.tensor([1, 0, -1, -1])
    loss, terms = VQALoss(HeadConfig())(_out(), batch)
    assert torch.isfinite(loss) and set(terms) == {"loss/binary", "loss/chexpert", "loss/vqa"}
    target, valid = unified_targets(_batch())
    assert valid.tolist() == [True, True, True, True]
    torch.testing.assert_close(target.sum(1), torch.ones(4))
    assert target[0, UNIFIED_OFFSETS["binary"] + 1] == 1 and target[1, UNIFIED_OFFSETS["region"] + 3] == 0.5
    out = {"unified": torch.randn(4, 46, requires_grad=True), "chexpert": torch.randn(4, 14)}
    loss, terms = VQALoss(HeadConfig(kind="single"))(out, _batch())
    assert torch.isfinite(loss) and "loss/unified" in terms


def test_item_sum_reduction_weighs_a_multilabel_item_as_its_negative_log_likelihood():
    batch, out = _batch(), _out()
    _, mean_terms = VQALoss(HeadConfig())(out, batch)
    _, sum_terms = VQALoss(HeadConfig(multilabel_reduction="item_sum"))(out, batch)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    region = bce(out["region"][[1]], batch["region"][[1]], reduction="sum")      # one region item: sum over 26
    text = bce(out["text"][[3]], batch["findings"][[3]], reduction="sum")
    torch.testing.assert_close(sum_terms["loss/region"], region.detach())
    torch.testing.assert_close(sum_terms["loss/text"], text.detach())
    torch.testing.assert_close(sum_terms["loss/region"], 26 * mean_terms["loss/region"])
    torch.testing.assert_close(sum_terms["loss/binary"], mean_terms["loss/binary"])   # the CE heads are unchanged
