"""rlqlib: RLQ on CAL for clothes-changing person re-identification under low image quality.

The library behind the rlq-book: datasets (real layouts and the embedded SynthCC benchmark),
degradations, models, losses, training and evaluation. Notebooks only call into it.
"""

__version__ = "0.1.0"
