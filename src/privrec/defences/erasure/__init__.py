"""Post-hoc concept erasure of user vectors: LEACE, INLP and the purge.

:func:`erase_vectors` removes private attributes from a matrix of user vectors (fitted on the
users with known labels, applied to all); :func:`privrec.erase` does it to a trained run and
returns a re-evaluated, re-audited run.
"""

from privrec.defences.erasure.affine import AffineEraser
from privrec.defences.erasure.fitting import METHODS, erase_vectors, fit_eraser
from privrec.defences.erasure.inlp import fit_inlp
from privrec.defences.erasure.leace import fit_leace
from privrec.defences.erasure.purge import PurgeMap, fit_purge

__all__ = [
    "METHODS",
    "AffineEraser",
    "PurgeMap",
    "erase_vectors",
    "fit_eraser",
    "fit_inlp",
    "fit_leace",
    "fit_purge",
]
