"""Post-hoc concept erasure of user vectors: LEACE and INLP.

:func:`erase_vectors` removes private attributes from a matrix of user vectors (fitted on the
users with known labels, applied to all); :func:`privrec.erase` does it to a trained run and
returns a re-evaluated, re-audited run.
"""

from privrec.defences.erasure.affine import AffineEraser
from privrec.defences.erasure.fitting import METHODS, erase_vectors, fit_eraser
from privrec.defences.erasure.inlp import fit_inlp
from privrec.defences.erasure.leace import fit_leace

__all__ = ["METHODS", "AffineEraser", "erase_vectors", "fit_eraser", "fit_inlp", "fit_leace"]
