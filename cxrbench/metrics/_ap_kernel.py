"""The weighted COCO AP of many resamples at once, compiled (numba).

:meth:`cxrbench.metrics.spatial.DetectionTable.ap` evaluates the AP of ``b`` weightings of the
items (bootstrap resamples) on the score-sorted detection entries of a
:class:`~cxrbench.metrics.spatial._Layout`. Per weighting and threshold it needs the cumulative
drawn detections at the ends of the runs of true positives, the precision there, and the
interpolated precision at COCO's 101 recall levels; this is one pass over the entries and one
over the runs, which numpy can only do with ``b × entries`` temporaries. The kernel does the same
arithmetic in the same order per row (rows in parallel, each independent of the others), so a
row's AP does not depend on the block it was computed in; ``tests/metrics/test_spatial.py``
checks it against COCOeval on explicit resamples and against the array formulation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

EPS = float(np.spacing(1))   # COCOeval: precision = tp / (fp + tp + eps)


@njit(cache=True, nogil=True)
def _least_count(thr: float, g: int) -> int:
    """The least integer count n (0 <= n <= g) with fl(n / g) >= thr, as COCOeval compares the
    float recall; g when none is (the level is then reached at the last point, or never)."""
    n = int(np.ceil(thr * g))
    if n < 0:
        n = 0
    if n > g:
        n = g
    while n > 0 and (n - 1) / g >= thr:
        n -= 1
    while n < g and n / g < thr:
        n += 1
    return n


@njit(cache=True, parallel=True)
def weighted_ap(w, n_gt, item, copy, starts, after_ends, bounds, rec_thrs):
    """AP ``(b, T)`` of the weightings ``w`` (``(b, n_items)`` integer draws).

    ``item[e]`` / ``copy[e]``: the item of entry ``e`` and, for an expanded tie block, which copy
    of the item it is (entry weight ``w > copy``), else -1 (entry weight ``w``); run ``j`` of
    threshold ``t`` (``bounds[t] <= j < bounds[t + 1]``) spans entries ``starts[j]`` to
    ``after_ends[j] - 1``. NaN where a weighting draws no ground truth."""
    b = w.shape[0]
    T = bounds.shape[0] - 1
    E = item.shape[0]
    K = rec_thrs.shape[0]
    out = np.empty((b, T))
    for r in prange(b):
        g = 0
        for i in range(n_gt.shape[0]):
            g += w[r, i] * n_gt[i]
        if g == 0:
            for t in range(T):
                out[r, t] = np.nan
            continue
        cum = np.empty(E + 1, dtype=np.int64)       # detections drawn before entry e
        cum[0] = 0
        for e in range(E):
            k = w[r, item[e]]
            if copy[e] >= 0:
                k = 1 if k > copy[e] else 0
            cum[e + 1] = cum[e] + k
        need = np.empty(K, dtype=np.int64)
        for k in range(K):
            need[k] = _least_count(rec_thrs[k], g)
        for t in range(T):
            lo, hi = bounds[t], bounds[t + 1]
            m = hi - lo
            if m == 0:
                out[r, t] = 0.0
                continue
            ctp = np.empty(m, dtype=np.int64)
            prec = np.empty(m)
            tp = 0
            for j in range(m):
                drawn = cum[after_ends[lo + j]]
                tp += drawn - cum[starts[lo + j]]
                ctp[j] = tp
                prec[j] = tp / (drawn + EPS)
            for j in range(m - 2, -1, -1):            # the precision envelope: max from each point on
                if prec[j + 1] > prec[j]:
                    prec[j] = prec[j + 1]
            total = 0.0
            j = 0
            for k in range(K):                        # recall levels in increasing order
                while j < m and ctp[j] < need[k]:
                    j += 1
                if j < m:
                    total += prec[j]
            out[r, t] = total / K
    return out
