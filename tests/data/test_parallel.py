"""ordered_map: results in input order, input consumed only as fast as results are taken."""

from __future__ import annotations

from cxrbench.data.parallel import ordered_map


def _square(x: int) -> int:
    return x * x


def test_ordered_and_lazy():
    taken = []

    def items():
        for i in range(50):
            taken.append(i)
            yield i

    it = ordered_map(_square, items(), workers=2, in_flight=3)
    assert next(it) == 0
    assert len(taken) <= 4  # not the whole input
    assert list(it) == [i * i for i in range(1, 50)]
    assert list(ordered_map(_square, range(5), workers=1)) == [0, 1, 4, 9, 16]
