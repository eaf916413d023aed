"""Choosing the torch device a run trains and evaluates on."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from privrec.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
"""Accepted device names: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""


def check_device_name(name: str) -> None:
    """Raise ConfigError unless ``name`` is one of :data:`DEVICE_PATTERN`'s forms."""
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise ConfigError(f"'train.device' must be auto, cpu, cuda, cuda:N or mps, got {name!r}")


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str) -> torch.device:
    """The torch device of ``name``: ``auto`` picks CUDA, then MPS, then the CPU; a named
    device that this machine lacks raises ConfigError (never a silent fall-back)."""
    import torch

    check_device_name(name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU found"
            raise ConfigError(
                f"'train.device' is {name!r} but CUDA is not available here ({why}); "
                "use cpu or auto"
            )
        index = int(name.split(":")[1]) if ":" in name else 0
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(
                f"'train.device' is {name!r} but this machine has {count} CUDA device(s) "
                f"(cuda:0 … cuda:{count - 1})"
            )
        return torch.device(name)
    if name == "mps" and not _mps_available():
        raise ConfigError("'train.device' is 'mps' but MPS is not available here; use cpu or auto")
    return torch.device(name)
