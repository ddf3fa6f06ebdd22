"""Files a chain names (FIR taps, impulse responses), read into float64 arrays.

Used by the chain's validation (`chain.defs`) and by the stages that need the data (`stages.fir`,
`stages.space`). Every problem is a `ParamError` on the key that named the file, so the chain
builder reports it at the stage's YAML line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from audiofx_cli.errors import ParamError

MAX_IR_SECONDS = 60.0


def read_taps_file(path: str | Path) -> Any:
    """Read FIR taps from .npy (1-D) or a text file of numbers (whitespace/comma separated).

    Raises:
        ParamError: the file is missing, unreadable, not 1-D, empty or has non-finite values.
    """
    import numpy as np

    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            taps = np.load(path, allow_pickle=False)
        else:
            taps = np.array(path.read_text().replace(",", " ").split(), dtype=np.float64)
    except FileNotFoundError:
        raise ParamError("file", f"taps file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise ParamError("file", f"cannot read taps from {path}: {exc}") from None
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 1 or taps.size == 0:
        raise ParamError("file", f"{path} must hold a non-empty 1-D array, got shape {taps.shape}")
    if not np.all(np.isfinite(taps)):
        raise ParamError("file", f"{path} holds NaN or Inf values")
    return taps


def read_ir(path: str | Path) -> tuple[Any, int]:
    """Read an impulse response: ((channels, taps) float64 array, sample rate).

    Raises:
        ParamError: missing or unreadable file, empty, too long, or non-finite values.
    """
    import numpy as np
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise ParamError("ir", f"impulse response file not found: {path}")
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise ParamError("ir", f"cannot read impulse response {path}: {exc}") from None
    if data.shape[0] == 0:
        raise ParamError("ir", f"impulse response {path} is empty")
    if data.shape[0] > MAX_IR_SECONDS * rate:
        raise ParamError(
            "ir", f"impulse response {path} is {data.shape[0] / rate:.1f} s long (at most 60 s)"
        )
    if not np.all(np.isfinite(data)):
        raise ParamError("ir", f"impulse response {path} holds NaN or Inf values")
    return data.T.copy(), int(rate)
