"""Pictures of chains and files: frequency responses, waveforms, spectrograms, feature arrays.

The data behind every plot is computed by plain functions returning numpy arrays
(`response.chain_response`, `audio.file_picture_data`, `features.load_feature_file`), so tests
check numbers, not pixels. Drawing needs matplotlib, an optional extra
(``pip install 'audiofx-cli[plot]'``); it is imported only when a figure is drawn, always with the
non-interactive Agg backend.
"""

from __future__ import annotations

from types import ModuleType

from audiofx_cli.errors import UsageError

INSTALL_HINT = "pip install 'audiofx-cli[plot]'"


def require_matplotlib() -> ModuleType:
    """Import matplotlib with the Agg backend, or say how to install it.

    Returns:
        the `matplotlib` module (figures are bare `matplotlib.figure.Figure`s, not pyplot's).

    Raises:
        UsageError (exit 2): matplotlib is not installed.
    """
    try:
        import matplotlib
    except ImportError:
        raise UsageError(
            f"plotting needs matplotlib, which is not installed; install it with: {INSTALL_HINT}"
        ) from None
    matplotlib.use("Agg", force=True)
    return matplotlib
