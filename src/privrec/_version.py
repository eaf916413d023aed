"""The installed package's version (importable from every layer without importing the
package's public API)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("privrec")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"
