"""privrec: privacy-adversarial recommender systems.

Audit how much user vectors leak private attributes, train BPR models whose user vectors are
purged of chosen attributes by adversarial heads behind gradient reversal, and sweep the
accuracy-vs-leakage trade-off.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("privrec")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
