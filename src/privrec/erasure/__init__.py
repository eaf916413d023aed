"""Post-hoc concept erasure of user vectors: LEACE and INLP.

:func:`erase_vectors` removes private attributes from a matrix of user vectors (fitted on the
users with known labels, applied to all); :func:`erase_run` does it to a run directory and
writes a new, re-evaluated and re-audited run (on an adversarially trained run this is the
combined defence).
"""

from privrec.erasure.core import METHODS, AffineEraser, erase_vectors, fit_eraser
from privrec.erasure.run import erase_run

__all__ = ["METHODS", "AffineEraser", "erase_run", "erase_vectors", "fit_eraser"]
