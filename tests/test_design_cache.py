"""Filter designs kept on disk (audiofx_cli.dsp.design): a second process gets scipy's exact
arrays without importing scipy.signal (about a second of `process`'s per-file start-up);
invalid arguments still raise; without a writable cache folder designs are computed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import signal

CODE = """
import sys, numpy as np
from audiofx_cli.dsp import design
sos = design.iir_sos("highpass", 80.0, 48000, order=4, type="chebyshev1", ripple_db=0.5)
lr = design.iir_sos("lowpass", 2000.0, 48000, order=4, type="linkwitz_riley")
taps = design.fir_taps("lowpass", 1000.0, 44100, taps=31, window="kaiser", kaiser_beta=6.0)
ba = design.ba_to_sos([1.0, -1.0], [1.0, -0.99])
np.save(sys.argv[1], np.concatenate([sos.ravel(), lr.ravel(), taps, ba.ravel()]))
print("scipy.signal" in sys.modules)
"""


def expected() -> np.ndarray:
    sos = signal.cheby1(4, 0.5, 80.0, "highpass", fs=48000, output="sos")
    half = signal.butter(2, 2000.0, fs=48000, output="sos")
    taps = signal.firwin(31, 1000.0, window=("kaiser", 6.0), fs=44100)
    ba = signal.tf2sos([1.0, -1.0], [1.0, -0.99])
    return np.concatenate([sos.ravel(), half.ravel(), half.ravel(), taps, ba.ravel()])


def run(tmp_path, name: str, cache: str) -> tuple[bool, np.ndarray]:
    out = tmp_path / f"{name}.npy"
    env = {**os.environ, "AUDIOFX_CACHE_DIR": cache}
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(out)], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip() == "True", np.load(out)


def test_second_process_loads_designs_without_scipy_signal(tmp_path):
    cache = str(tmp_path / "cache")
    imported_first, first = run(tmp_path, "first", cache)
    imported_second, second = run(tmp_path, "second", cache)
    assert imported_first and not imported_second
    assert np.array_equal(first, expected()) and np.array_equal(second, expected())
    assert len(list((tmp_path / "cache" / "designs").glob("*.npy"))) == 4


def test_unwritable_cache_still_designs(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    imported, got = run(tmp_path, "nocache", str(blocker))
    assert imported and np.array_equal(got, expected())


def test_invalid_designs_still_raise(tmp_path, monkeypatch):
    from audiofx_cli.dsp import design

    monkeypatch.setenv("AUDIOFX_CACHE_DIR", str(tmp_path))
    design.iir_sos("lowpass", 1000.0, 48000)  # a valid design is cached
    with pytest.raises(ValueError):
        design.iir_sos("lowpass", 30000.0, 48000)  # above Nyquist: scipy's error, not cached
    with pytest.raises(ValueError, match="unknown IIR type"):
        design.iir_sos("lowpass", 1000.0, 48000, type="chebyshev3")
    with pytest.raises(ValueError, match="even order"):
        design.iir_sos("lowpass", 1000.0, 48000, order=3, type="linkwitz_riley")
    assert not list((tmp_path / "designs").glob("*.tmp*"))


def test_a_damaged_cache_file_is_designed_again(tmp_path, monkeypatch):
    from audiofx_cli.dsp import design

    monkeypatch.setenv("AUDIOFX_CACHE_DIR", str(tmp_path))
    want = signal.butter(3, 500.0, fs=16000, output="sos")
    assert np.array_equal(design.iir_sos("lowpass", 500.0, 16000, order=3), want)
    (cached,) = (tmp_path / "designs").glob("*.npy")
    cached.write_bytes(cached.read_bytes()[:40])  # truncated
    assert np.array_equal(design.iir_sos("lowpass", 500.0, 16000, order=3), want)
    assert np.array_equal(np.load(cached), want)  # and stored again
