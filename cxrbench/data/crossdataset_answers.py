"""Zero-shot predictions in the terms of a foreign dataset's reference answers (seed 16.3).

Beside the loaders (:mod:`cxrbench.data.crossdataset`), which fold each VQA-RAD / SLAKE
reference answer onto the head that can produce it, this maps a predictor's output back onto
those references, so that ``cxrbench score`` compares like with like.
"""

from __future__ import annotations

import pandas as pd

from cxrbench import vocab


def crossdataset_frame(questions: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
    """The zero-shot predictions against the foreign dataset's reference answers.

    Per head: binary rows compare ``yes``/``no`` (reference: the normalised answer; prediction:
    the binary head's label), region rows compare region-head classes (reference: the class the
    location answer names; prediction: the top predicted region), text rows compare the model's
    answer text with the reference text. ``question_type`` is the dataset's content type
    (VQA-RAD question type, SLAKE content_type), so ``by_question_type`` is by content type; the
    resampling unit (``study_id``) is the image.
    """
    q = questions.set_index("question_id")
    pred = pred.copy()
    qid = pred["question_id"].astype(str)
    head = qid.map(q["head"])
    pred["head"] = head.to_numpy()
    pred["model_answer"] = pred["prediction"]
    answers, predictions, label_true, regions_true = [], [], [], []
    for i, h in enumerate(head):
        row_q = q.loc[qid.iat[i]]
        if h == "binary":
            answers.append("yes" if row_q["answer_binary"] == 1 else "no")
            lp = pred["label_pred"].iat[i]
            predictions.append("" if lp is None or lp != lp else ("yes" if int(lp) == 1 else "no"))
            label_true.append(int(row_q["answer_binary"]))
            regions_true.append([])
        elif h == "region":
            answers.append(row_q["answer_regions"][0])
            rp = pred["regions_pred"].iat[i]
            predictions.append(str(rp[0]) if rp is not None and len(rp) else "")
            label_true.append(vocab.HEAD_REGIONS.index(row_q["answer_regions"][0]))
            regions_true.append(list(row_q["answer_regions"]))
        else:
            answers.append(row_q["answer"])
            predictions.append(str(pred["prediction"].iat[i]))
            label_true.append(None)
            regions_true.append([])
    pred["answer"], pred["prediction"] = answers, predictions
    pred["label_true"] = pd.array(label_true, dtype="Int64")
    pred["regions_true"] = regions_true
    pred["boxes_true"] = [[] for _ in range(len(pred))]   # no reference boxes: no plausibility, no IoU
    for col in ("dataset", "answer_type", "content_type", "organ", "modality", "answer_norm"):
        pred[col] = qid.map(q[col]).to_numpy()
    pred["question_type"] = pred["content_type"]
    pred["study_id"] = qid.map(q["image_name"]).to_numpy()
    return pred
