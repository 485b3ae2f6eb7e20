"""cxrbench: evaluation and analysis suite for chest X-ray visual question answering.

Importing this package is cheap: it imports neither torch nor deepspeed. Subpackages:
``data`` (release layouts, synthetic generator, readers, index), ``metrics`` (pure metric
functions), ``stats`` (bootstrap, paired tests, corrections), and the command modules behind
``cxrbench <command>`` (see ``cxrbench.cli``).
"""

__version__ = "0.1.0"
