"""audiofx: batch audio processing on PyTorch.

Chains of stages (filters, effects, auditory features) are written in YAML, validated, built
into an `nn.Sequential` and streamed over files in bounded memory.

    >>> import audiofx_cli
    >>> chain = audiofx_cli.load_chain("vocal", sample_rate=48000)      # doctest: +SKIP
    >>> audiofx_cli.process_file("in.wav", "out.wav", "vocal")          # doctest: +SKIP

Torch is imported lazily, on first use of `load_chain` or `process_file`.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "load_chain", "process_file"]


def __getattr__(name: str) -> Any:
    if name in ("load_chain", "process_file"):
        from audiofx_cli import api

        return getattr(api, name)
    raise AttributeError(f"module 'audiofx_cli' has no attribute {name!r}")
