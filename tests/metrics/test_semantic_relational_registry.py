import numpy as np
import pytest

from cxrbench import questions
from cxrbench.metrics import registry, relational, semantic_type


@pytest.mark.parametrize("answer,category", [
    ("Yes.", "yes_no"), ("No, there is no effusion.", "yes_no"), ("no", "yes_no"),
    ("No pneumothorax.", "disease_finding"), ("There is a small left pleural effusion.", "disease_finding"),
    ("The pleural effusion is small.", "measurement_severity"), ("Moderate.", "measurement_severity"),
    ("The pleural effusion is located in the left costophrenic angle.", "anatomical_location"),
    ("Left lower lung lobe.", "anatomical_location"), ("An endotracheal tube.", "device"),
    ("Something unrelated.", "other"),
])
def test_answer_category(answer, category):
    assert semantic_type.answer_category(answer) == category


def test_semantic_type_accuracy_hand_worked():
    refs = ["Yes.", "The effusion is mild.", "In the right lung.", "There is a pacemaker."]
    preds = ["No.", "The effusion is severe.", "Cardiomegaly.", "There is a pacemaker."]
    # yes_no = yes_no, severity = severity, location != finding, device = device
    assert semantic_type.semantic_type_accuracy(refs, preds) == pytest.approx(3 / 4)


@pytest.mark.parametrize("q,relational_,multi_hop,spatial", [
    ("What pathology is in the region adjacent to the heart?", True, True, True),
    ("Describe findings in both lungs compared to the cardiac region", True, True, False),
    ("Is the nodule in the left or right lung?", True, False, False),
    ("Which structure is inferior to the carina?", True, False, True),
    ("Is the effusion adjacent to the diaphragm?", True, False, True),
    ("Describe the given study.", False, False, False),
    ("Where is the pleural effusion located?", False, False, False),
    ("Is the left lung abnormal?", False, False, False),
])
def test_question_parse(q, relational_, multi_hop, spatial):
    assert relational.is_relational(q) is relational_
    assert relational.is_multi_hop(q) is multi_hop
    assert relational.has_spatial_relation(q) is spatial
    flags = relational.question_flags([q, q])
    assert flags["relational"].tolist() == [relational_] * 2 and flags["multi_hop"].tolist() == [multi_hop] * 2


def test_relational_accuracies_hand_worked():
    qs = ["Which structure is inferior to the carina?", "Describe the given study.",
          "What pathology is in the region adjacent to the heart?", "Is the nodule in the left or right lung?"]
    refs = ["The main bronchi.", "Normal.", "Atelectasis.", "Left."]
    preds = ["the main bronchi", "Abnormal.", "Effusion.", "Right."]
    assert relational.relationship_accuracy(refs, preds, qs) == pytest.approx(1 / 3)
    assert relational.multi_hop_accuracy(refs, preds, qs) == 0.0
    assert relational.spatial_relation_accuracy(refs, preds, qs) == pytest.approx(1 / 2)


def test_graph_entity_recall_hand_worked():
    from cxrbench.metrics.clinical_terms import get_extractor

    ents = [["pleural effusion", "cardiomegaly"], ["pneumothorax"], []]
    preds = ["Small pleural effusion.", "No collapsed lung.", "Anything."]
    # phrase match: 1/2, 0/1; the third item has no entity (undefined)
    assert relational.graph_entity_recall(ents, preds) == pytest.approx((0.5 + 0) / 2)
    # with concepts, "collapsed lung" names pneumothorax
    assert relational.graph_entity_recall(ents, preds, get_extractor()) == pytest.approx((0.5 + 1) / 2)
    assert np.isnan(relational.graph_entity_recall_items(ents, preds)[2])


def test_registry_covers_every_question_type_and_foreign_types():
    for q in questions.QUESTION_TYPES:
        ms = registry.metrics_for(q.code)
        assert set(registry.TEXT_METRICS) <= set(ms)
        assert set(registry.FAMILY_METRICS[q.family].primary) <= set(ms)
    assert registry.metrics_for("D03_where_is_finding")[:3] == ("iou", "pointing_accuracy", "map_50_75")
    assert "sensitivity" in registry.metrics_for("has_finding")
    foreign = registry.metrics_for("PRES")  # VQA-RAD presence question
    assert set(foreign) == set(registry.TEXT_METRICS + registry.CONDITIONAL_METRICS)
    assert registry.primary_metrics("B01_describe_all") == ("bertscore_f1", "rouge_l")


def test_registry_names_are_the_architecture_identifiers():
    stable = {"exact_match", "token_f1", "bleu4", "rouge_l", "bertscore_f1", "clinical_term_f1",
              "semantic_type_accuracy", "iou", "pointing_accuracy", "map_50", "map_75", "map_50_75",
              "multi_region_f1", "ece", "mcc", "kappa", "auroc", "sensitivity", "specificity", "ppv", "npv",
              "accuracy", "graph_entity_recall", "relationship_accuracy", "plausibility", "attention_entropy"}
    assert stable <= set(registry.METRICS)
    assert set(registry.METRICS) - stable == {"f1", "spatial_relation_accuracy", "multi_hop_accuracy", "map_coco"}


def test_metric_modules_and_score_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; import cxrbench.score, cxrbench.compare, cxrbench.metrics.registry, cxrbench.metrics.text, "
            "cxrbench.metrics.classification, cxrbench.metrics.calibration, cxrbench.metrics.spatial, "
            "cxrbench.metrics.attention, cxrbench.metrics.clinical_terms, cxrbench.metrics.semantic_type, "
            "cxrbench.metrics.relational, cxrbench.metrics.bertscore, cxrbench.stats.bootstrap, "
            "cxrbench.stats.comparison, cxrbench.stats.stratified, cxrbench.stats.guards; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
