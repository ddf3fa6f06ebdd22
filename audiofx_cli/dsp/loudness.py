"""Loudness and true peak per ITU-R BS.1770-4 / EBU R128, streamed block by block.

Torch-free (numpy, and the compiled passes of `audiofx_cli.dsp.loudness_kernels`): used by the
`normalize` stage's analysis pass and by `audiofx info`.

- K-weighting: the two BS.1770 biquads (high shelf + RLB high-pass), derived for any sample rate
  by the bilinear transform of the analog prototypes behind the 48 kHz table (the libebur128
  parameters, with the high-pass gain kept rate-independent); at 48 kHz they equal Tables 1 and
  2 of BS.1770-4.
- Gating blocks of 400 ms with 75 % overlap: the K-weighted signal's energy is summed over
  100 ms segments; each block is 4 consecutive segments. Segment k starts at sample
  floor(k * rate / 10), so blocks tile exactly at any rate.
- Integrated loudness: absolute gate -70 LUFS, then relative gate 10 LU below the loudness of
  the blocks that passed the absolute gate (both gates are strict: a block must be louder).
- Channel weights: 1.0 for every channel of mono, stereo and any layout BS.1770 does not
  define; 5 channels (L R C Ls Rs): 1, 1, 1, 1.41, 1.41; 6 channels, 5.1 in WAV/SMPTE order
  (L R C LFE Ls Rs): 1, 1, 1, 0, 1.41, 1.41 (the LFE channel is not measured).
- True peak (Annex 2): 4x oversampling with the Annex's 48-tap, 4-phase interpolation filter at
  every rate; the result is the larger of the interpolated peak and the sample peak.

Memory: the filter states, 3 segment sums per channel and ONE float64 per 100 ms block of the
stream (the channel-weighted block energy, 288 kB per hour) for the final gating. Shorter than
one block (400 ms), silent, or entirely gated: the loudness is -inf (no NaN).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from audiofx_cli.dsp import loudness_kernels as kernels

ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
LOUDNESS_OFFSET = -0.691  # BS.1770 eq. 2: a 997 Hz sine at 0 dBFS in one channel reads -3.01 LKFS
SURROUND_WEIGHT = 1.41

# BS.1770-4 Annex 2: order-48 interpolation filter, 4 phases of 12 taps (phases 2 and 3 are
# phases 1 and 0 reversed).
_TP_PHASE_0 = (
    0.0017089843750,
    0.0109863281250,
    -0.0196533203125,
    0.0332031250000,
    -0.0594482421875,
    0.1373291015625,
    0.9721679687500,
    -0.1022949218750,
    0.0476074218750,
    -0.0266113281250,
    0.0148925781250,
    -0.0083007812500,
)
_TP_PHASE_1 = (
    -0.0291748046875,
    0.0292968750000,
    -0.0517578125000,
    0.0891113281250,
    -0.1665039062500,
    0.4650878906250,
    0.7797851562500,
    -0.2003173828125,
    0.1015625000000,
    -0.0582275390625,
    0.0330810546875,
    -0.0189208984375,
)
TRUE_PEAK_PHASES = np.array(
    [_TP_PHASE_0, _TP_PHASE_1, _TP_PHASE_1[::-1], _TP_PHASE_0[::-1]], dtype=np.float64
)


def k_weighting_sos(sample_rate: float) -> np.ndarray:
    """The BS.1770 K-weighting filter at `sample_rate` as (2, 6) second-order sections.

    Section 0 is the pre-filter (high shelf, +4 dB above ~1.7 kHz), section 1 the RLB high-pass
    (~38 Hz). Both are bilinear transforms of the analog prototypes fitted to the 48 kHz table.

    Example:
        >>> sos = k_weighting_sos(48000)
        >>> [round(float(v), 8) for v in sos[0, :3]]
        [1.53512486, -2.69169619, 1.19839281]
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf = [
        (vh + vb * k / q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / q + k * k) / a0,
    ]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    # Table 2's numerator is [1, -2, 1] at 48 kHz, i.e. a pass-band gain of a0(48 kHz) (+0.043
    # dB). Keeping that analog gain at every rate gives b = a0(48 kHz) / a0 * [1, -2, 1]
    # (libebur128 keeps [1, -2, 1], whose gain drifts with the rate: +0.26 dB at 8 kHz).
    k48 = math.tan(math.pi * f0 / 48000.0)
    b0 = (1.0 + k48 / q + k48 * k48) / a0
    highpass = [b0, -2.0 * b0, b0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0]
    return np.array([shelf, highpass], dtype=np.float64)


def channel_weights(channels: int) -> np.ndarray:
    """BS.1770 channel weights G_i for a channel count (see the module docstring)."""
    if channels == 5:
        return np.array([1.0, 1.0, 1.0, SURROUND_WEIGHT, SURROUND_WEIGHT])
    if channels == 6:
        return np.array([1.0, 1.0, 1.0, 0.0, SURROUND_WEIGHT, SURROUND_WEIGHT])
    return np.ones(channels)


def energy_to_lufs(energy: np.ndarray | float) -> np.ndarray:
    """-0.691 + 10 log10(energy), -inf for zero energy (no warning)."""
    energy = np.asarray(energy, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return LOUDNESS_OFFSET + 10.0 * np.log10(energy)


def gated_loudness(block_energy: np.ndarray) -> float:
    """Integrated loudness (LUFS) from channel-weighted block energies (BS.1770-4 eq. 5-7).

    Returns -inf when no block passes the gates (silence, or fewer than one block).
    """
    block_energy = np.asarray(block_energy, dtype=np.float64)
    loud = energy_to_lufs(block_energy)
    passed = block_energy[loud > ABSOLUTE_GATE_LUFS]
    if passed.size == 0:
        return -math.inf
    relative_gate = float(energy_to_lufs(passed.mean())) + RELATIVE_GATE_LU
    passed = block_energy[(loud > ABSOLUTE_GATE_LUFS) & (loud > relative_gate)]
    if passed.size == 0:
        return -math.inf
    return float(energy_to_lufs(passed.mean()))


class LoudnessMeter:
    """Streaming integrated loudness of (batch, channels, time) blocks.

    Args:
        sample_rate: in Hz.
        channels: channel count (fixes the channel weights).
        batch: independent signals measured side by side (1 for a file).

    Example:
        >>> meter = LoudnessMeter(48000, channels=2)
        >>> t = np.arange(48000 * 3) / 48000
        >>> x = np.tile(10 ** (-23 / 20) * np.sin(2 * np.pi * 1000 * t), (1, 2, 1))
        >>> for start in range(0, x.shape[-1], 10000):
        ...     meter.update(x[..., start : start + 10000])
        >>> round(meter.integrated()[0], 1)
        -23.0
    """

    def __init__(self, sample_rate: float, channels: int, batch: int = 1) -> None:
        self.sample_rate = float(sample_rate)
        self.channels, self.batch = channels, batch
        self.weights = channel_weights(channels)
        self.sos = k_weighting_sos(self.sample_rate)
        self._zi = np.zeros((batch * channels, 2, 2))  # (row, section, z1 z2)
        self._rate = Fraction(self.sample_rate).limit_denominator(1000)
        self._position = 0  # samples consumed
        self._segment = 0  # index of the segment in progress
        self._partial = np.zeros((batch, channels))  # energy of the segment in progress
        self._recent = np.zeros((batch, channels, 0))  # last (up to 3) completed segment sums
        self._recent_len = np.zeros(0, dtype=np.int64)  # their lengths in samples
        self._energies: list[np.ndarray] = []  # (batch, n_blocks) weighted block energies

    def _edge(self, k: int) -> int:
        """First sample of segment k: floor(k * rate / 10)."""
        return (k * self._rate.numerator) // (10 * self._rate.denominator)

    def update(self, x: np.ndarray) -> None:
        """Feed a block of shape (batch, channels, time) (float32 or float64 are read as they
        are; other dtypes are converted)."""
        x = _readable(x)
        n = x.shape[-1]
        if n == 0:
            return
        start, stop = self._position, self._position + n
        # segments that end inside this block: k = self._segment, ..., edges <= stop
        ends = []
        k = self._segment + 1
        while self._edge(k) <= stop:
            ends.append(self._edge(k))
            k += 1
        cuts = np.array(ends, dtype=np.int64) - start  # end of each completed segment
        bins = np.empty((self.batch, self.channels, len(ends) + 1))
        kernels.kweighted_segments(x, self.sos, self._zi, cuts, bins)
        if not ends:
            self._partial += bins[..., 0]
            self._position = stop
            return
        sums, head = bins[..., :-1], bins[..., -1]  # the last bin: head of the next segment
        sums[..., 0] += self._partial
        self._partial = head
        lengths = np.array(
            [self._edge(j + 1) - self._edge(j) for j in range(self._segment, k - 1)],
            dtype=np.int64,
        )
        self._segment = k - 1
        self._position = stop
        segments = np.concatenate([self._recent, sums], axis=-1)
        seg_len = np.concatenate([self._recent_len, lengths])
        if segments.shape[-1] >= 4:
            window = np.lib.stride_tricks.sliding_window_view(segments, 4, axis=-1).sum(-1)
            block_len = np.lib.stride_tricks.sliding_window_view(seg_len, 4).sum(-1)
            mean_square = window / block_len  # (batch, channels, n_blocks)
            self._energies.append(np.einsum("c,bcj->bj", self.weights, mean_square))
        self._recent = segments[..., -3:]
        self._recent_len = seg_len[-3:]

    def block_energies(self) -> np.ndarray:
        """(batch, n_blocks) channel-weighted mean-square energies of the complete blocks."""
        if not self._energies:
            return np.zeros((self.batch, 0))
        return np.concatenate(self._energies, axis=-1)

    def integrated(self) -> list[float]:
        """Integrated loudness in LUFS of each batch item (-inf when nothing passes the gates)."""
        energies = self.block_energies()
        return [gated_loudness(energies[b]) for b in range(self.batch)]


class TruePeakMeter:
    """Streaming true peak (BS.1770-4 Annex 2) of (batch, channels, time) blocks, linear scale.

    `peak()` is the larger of the 4x-interpolated peak and the sample peak, per batch item.
    """

    def __init__(self, channels: int, batch: int = 1) -> None:
        self.channels, self.batch = channels, batch
        taps = TRUE_PEAK_PHASES.shape[1]
        self._history = np.zeros((batch, channels, taps - 1))
        self._peak = np.zeros(batch)

    def update(self, x: np.ndarray) -> None:
        """Feed a block of shape (batch, channels, time)."""
        kernels.true_peak(_readable(x), TRUE_PEAK_PHASES, self._history, self._peak)

    def peak(self) -> np.ndarray:
        return self._peak.copy()


def _readable(x: np.ndarray) -> np.ndarray:
    """x as the kernels read it: C-contiguous float32 or float64 (a view when it already is)."""
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return np.ascontiguousarray(x)


def integrated_loudness(x: np.ndarray, sample_rate: float) -> float:
    """Integrated loudness (LUFS) of a whole (channels, time) signal.

    Example:
        >>> t = np.arange(48000 * 2) / 48000
        >>> mono = 10 ** (-20 / 20) * np.sin(2 * np.pi * 1000 * t)
        >>> round(integrated_loudness(mono[None], 48000), 1)   # 1 kHz, -20 dBFS, one channel
        -23.0
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    meter = LoudnessMeter(sample_rate, x.shape[0])
    meter.update(x[None])
    return meter.integrated()[0]


def true_peak(x: np.ndarray) -> float:
    """True peak (linear) of a whole (channels, time) signal."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[None]
    meter = TruePeakMeter(x.shape[0])
    meter.update(x[None])
    return float(meter.peak()[0])
