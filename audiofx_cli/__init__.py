"""audiofx: batch audio processing on PyTorch.

Chains of stages (filters, effects, auditory features) are written in YAML, validated, built
into an `nn.Sequential` and streamed over files in bounded memory.

    >>> import audiofx_cli
    >>> chain = audiofx_cli.load_chain("vocal", sample_rate=48000)      # doctest: +SKIP
    >>> audiofx_cli.process_file("in.wav", "out.wav", "vocal")          # doctest: +SKIP

Torch is imported lazily, on first use of `load_chain` or `process_file`.
"""

from __future__ import annotations

import os as _os

from audiofx_cli._version import __version__

TYPE_CHECKING = False  # typing is not imported: the thin client imports this package
if TYPE_CHECKING:
    from typing import Any

# libgomp, the OpenMP runtime torch loads (and the IIR engine dispatches lane groups through:
# audiofx_cli.dsp.omp), keeps idle threads spinning for 300,000 pause instructions (about 20 ms
# here) after each parallel region. On few cores that starves the reader and writer threads of
# `process`: an 8 ch x 300 s file took 1.5 s with the default, 0.85 s with 10,000 (2-core
# machine of docs/performance.md), and in-memory chunks dispatch as fast. libgomp reads it once,
# when torch is imported; a value the user set wins.
_os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__all__ = ["__version__", "load_chain", "process_file", "save_chain"]


def __getattr__(name: str) -> Any:
    if name in ("load_chain", "process_file", "save_chain"):
        from audiofx_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'audiofx_cli' has no attribute {name!r}")
