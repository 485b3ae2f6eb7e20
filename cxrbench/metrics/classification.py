"""Classification and clinical metrics from confusion-matrix counts, and binned AUROC.

Every count-based metric here is a function of the confusion matrix, and the confusion matrix
is the sum over items of a one-hot row: item ``i`` adds 1 to cell ``(y_true_i, y_pred_i)``.
So each metric is a :class:`~cxrbench.metrics.base.SufficientStats` whose rows are those
one-hot cells (``K²`` columns for ``K`` labels) and whose ``reduce`` maps a summed (possibly
batched) confusion matrix to the value. Labels are fixed up front (``labels=``) so a bootstrap
resample that misses a class keeps the same columns.

Agreement (tests/metrics/test_classification.py), on the same labels:

=================  =====================================================================
accuracy           ``sklearn.metrics.accuracy_score``
sensitivity        ``recall_score(..., average=None | "macro", zero_division=np.nan)``
ppv                ``precision_score(..., zero_division=np.nan)``
f1                 ``f1_score(..., zero_division=np.nan)``
specificity, npv   ``multilabel_confusion_matrix`` (TN/(TN+FP), TN/(TN+FN)); no sklearn function
mcc                ``matthews_corrcoef`` (multi-class: Gorodkin's R_K, as sklearn)
kappa              ``cohen_kappa_score`` (``weights=None | "linear" | "quadratic"``)
auroc              ``roc_auc_score`` (exact when the scores take at most ``max_bins`` values)
=================  =====================================================================

Undefined values (sensitivity without positives, PPV without positive predictions) are NaN,
never an exception; macro averages skip NaN classes, as sklearn does with
``zero_division=np.nan``. MCC follows sklearn and is 0 where its denominator is 0.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cxrbench.metrics.base import SufficientStats

PER_CLASS = ("sensitivity", "specificity", "ppv", "npv", "f1")
AVERAGES = (None, "macro", "binary")


# ----------------------------------------------------------------------------- confusion rows
def _encode(y: Sequence, labels: Sequence) -> np.ndarray:
    """Map values to label indices; values not in ``labels`` get -1."""
    y = np.asarray(y)
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    pos = np.searchsorted(labels[order], y)
    pos = np.clip(pos, 0, len(labels) - 1)
    idx = order[pos]
    return np.where(labels[idx] == y, idx, -1)


def confusion_rows(y_true: Sequence, y_pred: Sequence, labels: Sequence) -> np.ndarray:
    """One-hot confusion cells per item, shape ``(n, K*K)``: column ``t*K + p``.

    ``y_true`` must be in ``labels``; a prediction outside ``labels`` (an unparseable answer,
    label -1 for a yes/no question) is counted as wrong for its true class: it lands in no
    predicted column, so it adds to that class's false negatives and to no false positive.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of equal length, got {y_true.shape} and {y_pred.shape}")
    k = len(labels)
    t, p = _encode(y_true, labels), _encode(y_pred, labels)
    if (t < 0).any():
        bad = y_true[t < 0][:5].tolist()
        raise ValueError(f"y_true has values outside labels {list(labels)}: {bad}")
    # an out-of-label prediction goes to an extra "none" column per true class
    rows = np.zeros((len(t), k * k + k), dtype=np.float64)
    cols = np.where(p >= 0, t * k + p, k * k + t)
    rows[np.arange(len(t)), cols] = 1.0
    return rows


def _matrix(t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Summed rows -> (confusion matrix ``(..., K, K)``, unparsed-per-true-class ``(..., K)``)."""
    t = np.asarray(t, dtype=np.float64)
    return t[..., : k * k].reshape(*t.shape[:-1], k, k), t[..., k * k: k * k + k]


def _counts(t: np.ndarray, k: int):
    """Per-class (tp, fp, fn, tn, n) from summed rows, each ``(..., K)``."""
    cm, none = _matrix(t, k)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    true_count = cm.sum(-1) + none
    pred_count = cm.sum(-2)
    n = true_count.sum(-1, keepdims=True)
    fn = true_count - tp
    fp = pred_count - tp
    tn = n - tp - fn - fp
    return tp, fp, fn, tn, n


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def _per_class(metric: str, t: np.ndarray, k: int) -> np.ndarray:
    tp, fp, fn, tn, _ = _counts(t, k)
    if metric == "sensitivity":
        return _div(tp, tp + fn)
    if metric == "specificity":
        return _div(tn, tn + fp)
    if metric == "ppv":
        return _div(tp, tp + fp)
    if metric == "npv":
        return _div(tn, tn + fn)
    if metric == "f1":
        return _div(2 * tp, 2 * tp + fp + fn)
    raise ValueError(f"unknown per-class metric {metric!r}")


def _nanmean(a: np.ndarray) -> np.ndarray:
    ok = ~np.isnan(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok.any(-1), np.where(ok, a, 0.0).sum(-1) / np.maximum(ok.sum(-1), 1), np.nan)


def _accuracy(t: np.ndarray, k: int) -> np.ndarray:
    cm, none = _matrix(t, k)
    n = cm.sum((-1, -2)) + none.sum(-1)
    return _div(np.trace(cm, axis1=-2, axis2=-1), n)


def _mcc(t: np.ndarray, k: int) -> np.ndarray:
    # sklearn.metrics.matthews_corrcoef, multi-class form (Gorodkin 2004):
    # (c·s - Σ p_k t_k) / sqrt((s² - Σ p_k²)(s² - Σ t_k²)), 0 when the denominator is 0
    cm, none = _matrix(t, k)
    t_sum = cm.sum(-1) + none
    p_sum = cm.sum(-2)
    c = np.trace(cm, axis1=-2, axis2=-1)
    s = t_sum.sum(-1)
    cov_ytyp = c * s - (t_sum * p_sum).sum(-1)
    # predictions outside labels form one more predicted class, as sklearn counts them
    cov_ypyp = s ** 2 - (p_sum ** 2).sum(-1) - none.sum(-1) ** 2
    cov_ytyt = s ** 2 - (t_sum ** 2).sum(-1)
    den = cov_ytyt * cov_ypyp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, cov_ytyp / np.sqrt(np.where(den > 0, den, 1.0)), 0.0)


def _kappa(t: np.ndarray, k: int, weights: str | None) -> np.ndarray:
    # sklearn.metrics.cohen_kappa_score: 1 - Σ w·O / Σ w·E, E = outer(row, col) / n.
    # A prediction outside labels is one more predicted category, in full disagreement with
    # every true class (weight 1, or the largest distance for linear / quadratic weights).
    cm, none = _matrix(t, k)
    obs = np.concatenate([cm, none[..., :, None]], axis=-1)             # (..., k, k+1)
    row, col = obs.sum(-1), obs.sum(-2)
    n = obs.sum((-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = row[..., :, None] * col[..., None, :] / np.where(n > 0, n, 1.0)[..., None, None]
    d = np.abs(np.arange(k)[:, None] - np.arange(k + 1)[None, :]).astype(np.float64)
    d[:, k] = max(k - 1, 1)
    if weights is None:
        w = (d > 0).astype(np.float64)
    else:
        w = d if weights == "linear" else d ** 2
    num, den = (w * obs).sum((-1, -2)), (w * expected).sum((-1, -2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 1.0 - num / np.where(den > 0, den, 1.0), np.nan)


def _labels(y_true, y_pred, labels):
    if labels is not None:
        return list(labels)
    # as sklearn's unique_labels: every value seen in either array
    return np.union1d(np.asarray(y_true), np.asarray(y_pred)).tolist()


def confusion_stats(name: str, y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None,
                    *, metric: str = "accuracy", average: str | None = "macro", pos_label=1,
                    weights: str | None = None) -> SufficientStats:
    """The :class:`SufficientStats` of a confusion-matrix metric.

    ``metric``: ``accuracy``, ``mcc``, ``kappa`` or one of ``PER_CLASS``; for per-class
    metrics ``average`` is ``None`` (one value per label: the statistic's value is then the
    first label's and ``reduce`` returns all; prefer ``average="binary"`` or ``"macro"`` for a
    scalar), ``"macro"`` (NaN-skipping mean over labels) or ``"binary"`` (the ``pos_label``
    class).
    """
    labels = _labels(y_true, y_pred, labels)
    k = len(labels)
    rows = confusion_rows(y_true, y_pred, labels)
    if metric == "accuracy":
        reduce = lambda t: _accuracy(t, k)  # noqa: E731
    elif metric == "mcc":
        reduce = lambda t: _mcc(t, k)  # noqa: E731
    elif metric == "kappa":
        if weights not in (None, "linear", "quadratic"):
            raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
        reduce = lambda t: _kappa(t, k, weights)  # noqa: E731
    elif metric in PER_CLASS:
        if average == "macro":
            reduce = lambda t: _nanmean(_per_class(metric, t, k))  # noqa: E731
        elif average == "binary":
            if pos_label not in labels:
                raise ValueError(f"pos_label {pos_label!r} is not in labels {labels}")
            j = labels.index(pos_label)
            reduce = lambda t: _per_class(metric, t, k)[..., j]  # noqa: E731
        elif average is None:
            reduce = lambda t: _per_class(metric, t, k)  # noqa: E731
        else:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    else:
        raise ValueError(f"unknown metric {metric!r}")
    info = {"labels": labels, "metric": metric, "average": average}
    sig = f"{metric}|labels:{k}" + (f"|average:{average}" if metric in PER_CLASS else "")
    if metric == "kappa":
        sig += f"|weights:{weights}"
    return SufficientStats(name, rows, reduce, signature=sig, info=info)


def _scalar(stats: SufficientStats):
    v = stats.reduce(stats.stats.sum(axis=0))
    return float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64)


# --------------------------------------------------------------------------- public metrics
def accuracy_stats(y_true, y_pred, labels=None) -> SufficientStats:
    return confusion_stats("accuracy", y_true, y_pred, labels, metric="accuracy")


def accuracy(y_true, y_pred, labels=None) -> float:
    """Fraction of items with ``y_pred == y_true``: ``trace(C) / n``. Equal to
    ``sklearn.metrics.accuracy_score`` (predictions outside ``labels`` count as wrong)."""
    return accuracy_stats(y_true, y_pred, labels).value()


def _per_class_pair(metric: str, doc: str):
    def stats_fn(y_true, y_pred, labels=None, *, average="binary", pos_label=1) -> SufficientStats:
        return confusion_stats(metric, y_true, y_pred, labels, metric=metric, average=average, pos_label=pos_label)

    def value_fn(y_true, y_pred, labels=None, *, average="binary", pos_label=1):
        return _scalar(stats_fn(y_true, y_pred, labels, average=average, pos_label=pos_label))

    stats_fn.__name__, value_fn.__name__ = f"{metric}_stats", metric
    stats_fn.__qualname__, value_fn.__qualname__ = stats_fn.__name__, value_fn.__name__
    value_fn.__doc__ = doc + """

    ``average="binary"`` scores the ``pos_label`` class, ``"macro"`` the NaN-skipping mean over
    ``labels``, ``None`` returns one value per label (an array in ``labels`` order). Undefined
    values (zero denominator) are NaN.
    """
    stats_fn.__doc__ = f"The :class:`SufficientStats` of :func:`{metric}` (one-hot confusion cells)."
    return stats_fn, value_fn


sensitivity_stats, sensitivity = _per_class_pair(
    "sensitivity", "Sensitivity (recall, TPR) per class: ``TP / (TP + FN)``. Equal to "
    "``sklearn.metrics.recall_score(..., zero_division=np.nan)``.")
specificity_stats, specificity = _per_class_pair(
    "specificity", "Specificity (TNR) per class, one-vs-rest: ``TN / (TN + FP)``. Equal to "
    "``tn / (tn + fp)`` from ``sklearn.metrics.multilabel_confusion_matrix``.")
ppv_stats, ppv = _per_class_pair(
    "ppv", "Positive predictive value (precision): ``TP / (TP + FP)``. Equal to "
    "``sklearn.metrics.precision_score(..., zero_division=np.nan)``.")
npv_stats, npv = _per_class_pair(
    "npv", "Negative predictive value, one-vs-rest: ``TN / (TN + FN)``. Equal to "
    "``tn / (tn + fn)`` from ``sklearn.metrics.multilabel_confusion_matrix``.")
f1_stats, f1 = _per_class_pair(
    "f1", "F1 per class: ``2 TP / (2 TP + FP + FN)``. Equal to "
    "``sklearn.metrics.f1_score(..., zero_division=np.nan)``.")


def mcc_stats(y_true, y_pred, labels=None) -> SufficientStats:
    return confusion_stats("mcc", y_true, y_pred, labels, metric="mcc")


def mcc(y_true, y_pred, labels=None) -> float:
    """Matthews correlation coefficient. Binary:
    ``(TP·TN − FP·FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN))``; multi-class: Gorodkin's R_K
    ``(c·s − Σ_k p_k t_k) / sqrt((s² − Σ p_k²)(s² − Σ t_k²))`` (c correct, s items, t_k / p_k
    true / predicted counts). 0 when the denominator is 0. Equal to
    ``sklearn.metrics.matthews_corrcoef``."""
    return mcc_stats(y_true, y_pred, labels).value()


def kappa_stats(y_true, y_pred, labels=None, *, weights: str | None = None) -> SufficientStats:
    return confusion_stats("kappa", y_true, y_pred, labels, metric="kappa", weights=weights)


def kappa(y_true, y_pred, labels=None, *, weights: str | None = None) -> float:
    """Cohen's kappa ``κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij`` with ``E = outer(row, col) / n``;
    unweighted ``w = 1 − I`` gives ``(p_o − p_e)/(1 − p_e)``; ``weights="linear"|"quadratic"``
    for ordinal labels (severity), in ``labels`` order. Equal to
    ``sklearn.metrics.cohen_kappa_score``; NaN when ``p_e = 1``. A prediction outside
    ``labels`` is one more category in full disagreement with every class (as sklearn
    treats an extra label value, with the largest distance under linear/quadratic weights)."""
    return kappa_stats(y_true, y_pred, labels, weights=weights).value()


# -------------------------------------------------------------------------------- AUROC
def auroc_bin_edges(y_score: np.ndarray, max_bins: int = 100) -> np.ndarray:
    """Bin edges for :func:`auroc_stats`: every distinct score gets its own bin when there are
    at most ``max_bins`` of them (AUROC is then exact); otherwise edges at the empirical
    quantiles of the scores, which puts about ``n / max_bins`` items in each bin."""
    y_score = np.asarray(y_score, dtype=np.float64)
    distinct = np.unique(y_score)
    if len(distinct) <= max_bins:
        return distinct
    edges = np.unique(np.quantile(y_score, np.linspace(0, 1, max_bins + 1)[1:-1], method="lower"))
    return edges


def _auroc_from_counts(t: np.ndarray, b: int) -> np.ndarray:
    pos, neg = t[..., :b], t[..., b:2 * b]
    P, N = pos.sum(-1), neg.sum(-1)
    # positives in strictly higher bins, for each bin (bins ordered by increasing score)
    pos_above = np.cumsum(pos[..., ::-1], axis=-1)[..., ::-1] - pos
    num = (neg * (pos_above + 0.5 * pos)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((P > 0) & (N > 0), num / np.where(P * N > 0, P * N, 1.0), np.nan)


def auroc_stats(y_true, y_score, *, max_bins: int = 100, edges: np.ndarray | None = None,
                name: str = "auroc") -> SufficientStats:
    """The :class:`SufficientStats` of binary AUROC: per item, one-hot (positive, bin) and
    (negative, bin) counts, ``2·B`` columns. ``info["max_error"]`` is the bound on
    ``|binned − exact|`` on the full data (0 when every distinct score has its own bin)."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 1:
        raise ValueError("y_true and y_score must be 1-D of equal length")
    if np.isnan(y_score).any():
        raise ValueError("y_score contains NaN")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("auroc: y_true must be 0/1")
    if edges is None:
        edges = auroc_bin_edges(y_score, max_bins)
    exact = len(np.unique(y_score)) <= len(edges) and np.isin(y_score, edges).all()
    # bin j holds scores in (edges[j-1], edges[j]]; with edges = the distinct values each bin is one value
    bins = np.searchsorted(edges, y_score, side="left")
    b = len(edges) + 1
    rows = np.zeros((len(y_true), 2 * b), dtype=np.float64)
    rows[np.arange(len(y_true)), bins + np.where(y_true == 1, 0, b)] = 1.0
    total = rows.sum(0)
    P, N = total[:b].sum(), total[b:].sum()
    max_error = 0.0 if exact or P * N == 0 else float(0.5 * (total[:b] * total[b:]).sum() / (P * N))
    reduce = lambda t: _auroc_from_counts(t, b)  # noqa: E731
    sig = "auroc|exact" if exact else f"auroc|binned:{len(edges) + 1}|quantile-edges"
    return SufficientStats(name, rows, reduce, signature=sig,
                           info={"exact": bool(exact), "n_bins": b, "max_error": max_error})


def auroc(y_true, y_score, *, max_bins: int = 100) -> float:
    """Area under the ROC curve of a binary score, from per-bin positive/negative counts.

    ``AUROC = Σ_b neg_b · (pos_{>b} + ½ pos_b) / (P·N)`` over score bins ordered by score
    (ties within a bin count ½: the trapezoidal rule). When the scores take at most
    ``max_bins`` distinct values each value is its own bin and the result equals
    ``sklearn.metrics.roc_auc_score`` exactly. Otherwise the bins are ``max_bins`` quantile
    bins and the error is at most ``½ Σ_b pos_b·neg_b / (P·N)`` (pairs sharing a bin counted
    as ties; ``auroc_stats(...).info["max_error"]``), under 0.5/max_bins for continuous
    scores split evenly. NaN without both classes.
    """
    return auroc_stats(y_true, y_score, max_bins=max_bins).value()


def macro_auroc_stats(y_true: np.ndarray, y_score: np.ndarray, *, max_bins: int = 100,
                      name: str = "auroc") -> SufficientStats:
    """Macro AUROC over the columns of a multi-label (or one-vs-rest one-hot) ``(n, C)`` target
    and score matrix: the NaN-skipping mean of the per-column binned AUROCs. NaN targets
    (CheXpert uncertain / missing) must be removed or mapped by the caller."""
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2 or y_true.shape != y_score.shape:
        raise ValueError("macro AUROC needs (n, C) targets and scores of equal shape")
    parts = [auroc_stats(y_true[:, c], y_score[:, c], max_bins=max_bins) for c in range(y_true.shape[1])]
    widths = [p.stats.shape[1] for p in parts]
    offsets = np.concatenate([[0], np.cumsum(widths)])
    rows = np.concatenate([p.stats for p in parts], axis=1)

    def reduce(t: np.ndarray) -> np.ndarray:
        per = np.stack([_auroc_from_counts(t[..., offsets[i]:offsets[i + 1]], widths[i] // 2)
                        for i in range(len(parts))], axis=-1)
        return _nanmean(per)

    return SufficientStats(name, rows, reduce, signature=f"auroc|macro:{len(parts)}",
                           info={"per_class_exact": [p.info["exact"] for p in parts],
                                 "max_error": max(p.info["max_error"] for p in parts)})
