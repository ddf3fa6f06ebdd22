"""Names and defaults of the level stages, torch-free so chain validation can use them.

`normalize` measures one of NORMALIZE_MODES and, without `target_db`, aims at the mode's
DEFAULT_TARGETS_DB: peak -1 dBFS, RMS -20 dBFS, integrated loudness -23 LUFS (EBU R128).
FADE_SHAPES are the curves of `audiofx_cli.dsp.level.fade_curve`.
"""

from __future__ import annotations

NORMALIZE_MODES = ("peak", "rms", "lufs")
DEFAULT_TARGETS_DB = {"peak": -1.0, "rms": -20.0, "lufs": -23.0}
FADE_SHAPES = ("linear", "exponential", "logarithmic", "cosine")
