"""Time and memory budgets of a bench run: how many runs each measurement gets, on how much of
the signal. Pure arithmetic on calibrated estimates (no timing, no torch), so it is tested with
made-up numbers.

- **Calibration** (done by the runner): every measurement first runs twice on a short slice;
  the second run gives its seconds per frame and the peak bytes it adds per frame (`Estimate`).
- **Time budget:** what is left of the budget after the fixed costs (test signals, references,
  audiofx's own rows, which always run the full configuration) is shared by the other
  measurements by water-filling: each gets what it wants up to a common cap, so fast peers run
  in full and the slow ones share the rest equally. A measurement over its cap first loses
  repeats (down to `MIN_REPEAT`, unless `--repeat` was given), then its warm-up runs (the
  calibration runs warmed it up), then runs on a shorter slice of the same signal (whole
  seconds, multiples of 10 s above 10 s, at least `MIN_SLICE_S`). Planned again before each
  measurement with the time actually spent, so early misestimates do not pile up.
- **Memory budget:** a measurement runs only where the process's RSS now plus its estimated
  peak (x `MEMORY_MARGIN`) stays within the budget; otherwise it runs on a slice that fits, or
  is skipped (audiofx's rows and suites that read a file are never sliced).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

MIN_REPEAT = 3  # fewest timed runs a budget leaves (a median of 3 with its spread)
MIN_SLICE_S = 1.0  # shortest slice a budget cuts a signal to
MEMORY_MARGIN = 1.2  # estimated peaks are multiplied by this before they are compared
SLOWDOWN_RANGE = (0.5, 4.0)  # how far what finished may correct the calibrated times


@dataclass(frozen=True)
class Estimate:
    """What a calibration run measured, per frame of the signal (channels fixed)."""

    run_s_per_frame: float
    peak_bytes_per_frame: float
    prepare_s: float = 0.0
    check_s_per_frame: float = 0.0  # comparing the output with the reference

    def slower(self, factor: float) -> Estimate:
        """The same estimate for a machine `factor` times slower."""
        return Estimate(
            self.run_s_per_frame * factor,
            self.peak_bytes_per_frame,
            self.prepare_s * factor,
            self.check_s_per_frame * factor,
        )


@dataclass(frozen=True)
class RunPlan:
    """How one measurement runs: `repeats` timed runs after `warmups`, each over `frames`."""

    repeats: int
    warmups: int
    frames: int
    full_frames: int
    reason: str = ""  # why it was cut: '', 'time budget', 'memory budget', or both
    skip: str = ""  # non-empty: do not run it, and why
    estimate_s: float = 0.0  # expected seconds for its runs

    @property
    def sliced(self) -> bool:
        return self.frames < self.full_frames


def water_level(wants_s: Sequence[float], available_s: float) -> float:
    """The cap c with sum(min(want, c)) == available_s (inf when everything fits).

    Example:
        >>> water_level([1, 2, 10, 10], 13)
        5.0
    """
    if sum(wants_s) <= available_s:
        return math.inf
    if available_s <= 0 or not wants_s:
        return 0.0
    below = 0.0  # sum of the wants under the cap
    ordered = sorted(wants_s)
    for i, want in enumerate(ordered):
        cap = (available_s - below) / (len(ordered) - i)
        if want >= cap:
            return cap
        below += want
    return math.inf  # not reached: the sum exceeded what is available


def fit_to_time(
    run_s: float, cap_s: float, repeat: int, warmup: int, forced: bool
) -> tuple[int, int, float]:
    """(repeats, warm-ups, fraction of the signal) whose runs fit in `cap_s`.

    Fewer repeats first (down to MIN_REPEAT unless `forced`), then no warm-up, then a slice.

    Example:
        >>> fit_to_time(10.0, 45.0, 5, 1, forced=False)
        (3, 1, 1.0)
        >>> fit_to_time(10.0, 15.0, 5, 1, forced=False)
        (3, 0, 0.5)
    """
    if run_s <= 0 or (repeat + warmup) * run_s <= cap_s:
        return repeat, warmup, 1.0
    fewest = repeat if forced else min(repeat, MIN_REPEAT)
    runs = int(cap_s // run_s)
    if not forced and runs - warmup >= fewest:
        return min(repeat, runs - warmup), warmup, 1.0
    if runs >= fewest:
        return (repeat if forced else min(repeat, runs)), 0, 1.0
    return fewest, 0, max(cap_s, 0.0) / (fewest * run_s)


def round_slice(frames: int, full_frames: int, rate_hz: int) -> int:
    """Round a slice down to whole seconds (multiples of 10 s from 10 s), at least MIN_SLICE_S;
    the full signal when that is not shorter.

    Example:
        >>> round_slice(44100 * 137, 44100 * 600, 44100) // 44100
        130
    """
    seconds = frames / rate_hz
    step = 10.0 if seconds >= 10 else 1.0
    rounded = max(math.floor(seconds / step) * step, MIN_SLICE_S)
    return min(int(round(rounded * rate_hz)), full_frames)


def max_frames_in_memory(estimate: Estimate, allowed_bytes: float) -> float:
    """Frames whose estimated peak (with MEMORY_MARGIN) fits in `allowed_bytes`."""
    per_frame = estimate.peak_bytes_per_frame * MEMORY_MARGIN
    if per_frame <= 0:
        return math.inf
    return max(allowed_bytes, 0.0) / per_frame


def plan_run(
    estimate: Estimate,
    full_frames: int,
    rate_hz: int,
    *,
    cap_s: float,
    allowed_bytes: float,
    repeat: int,
    warmup: int,
    forced: bool,
    can_slice: bool,
) -> RunPlan:
    """The runs of one measurement within its time cap and the memory it may use.

    `can_slice` False (audiofx's rows, file suites): full length or skipped for memory; the
    time cap can still take repeats and warm-ups away unless `cap_s` is inf.
    """
    frames, memory_cut = full_frames, False
    fit = max_frames_in_memory(estimate, allowed_bytes)
    if fit < full_frames:
        min_frames = MIN_SLICE_S * rate_hz
        need_gb = estimate.peak_bytes_per_frame * MEMORY_MARGIN * full_frames / 1e9
        if not can_slice or fit < min(min_frames, full_frames):
            return RunPlan(
                0, 0, 0, full_frames,
                skip=f"needs about {need_gb:.1f} GB, {max(allowed_bytes, 0) / 1e9:.1f} GB "
                "left in the memory budget",
            )  # fmt: skip
        frames, memory_cut = round_slice(int(fit), full_frames, rate_hz), True
    fixed_s = estimate.prepare_s + estimate.check_s_per_frame * frames  # about, once
    repeats, warmups, fraction = fit_to_time(
        estimate.run_s_per_frame * frames, cap_s - fixed_s, repeat, warmup, forced
    )
    cut = frames
    if can_slice and fraction < 1.0:
        cut = round_slice(int(frames * fraction), full_frames, rate_hz)
    reasons = ["memory budget"] if memory_cut and cut >= frames else []  # only what binds
    if cut < frames or (repeats, warmups) != (repeat, warmup):
        reasons.append("time budget")
    frames = min(frames, cut)
    return RunPlan(
        repeats,
        warmups,
        frames,
        full_frames,
        reason=" and ".join(reasons),
        estimate_s=wanted_s(estimate, frames, repeats, warmups),
    )


def wanted_s(estimate: Estimate | None, frames: int, repeat: int, warmup: int) -> float:
    """Seconds a measurement takes when nothing is cut."""
    if estimate is None:
        return 0.0
    per_frame = (repeat + warmup) * estimate.run_s_per_frame + estimate.check_s_per_frame
    return per_frame * frames + estimate.prepare_s


class Planner:
    """What is left to run, in seconds as calibrated: fixed costs (signals, references) and
    measurements, flexible (cut by the time budget) or not (audiofx's rows, planned ones).

    What finished teaches how much slower than calibrated the run goes (full-size signals
    leave the caches, the machine gets busier): `slowdown`, the time spent over the time
    planned so far (1 to start with, within SLOWDOWN_RANGE), scales what is left.

    Example:
        >>> p = Planner(budget_s=60.0)
        >>> p.add("signal", 20.0, flexible=False)
        >>> p.add("fast peer", 5.0); p.add("slow peer", 100.0); p.add("slower peer", 200.0)
        >>> p.cap_s(elapsed_s=0.0)
        17.5
        >>> p.remaining_s(elapsed_s=0.0)
        60.0
        >>> p.done("signal", spent_s=40.0)  # twice as slow as calibrated
        >>> p.slowdown, p.cap_s(elapsed_s=30.0)  # 30 s left for 10, 200 and 400 s
        (2.0, 10.0)
    """

    def __init__(self, budget_s: float | None) -> None:
        self.budget_s = budget_s
        self.pending: dict[Hashable, tuple[float, bool]] = {}  # key -> (seconds, flexible)
        self.planned_s = 0.0  # of what finished, as calibrated
        self.spent_s = 0.0  # and as it went

    @property
    def slowdown(self) -> float:
        if self.planned_s <= 0:
            return 1.0
        low, high = SLOWDOWN_RANGE
        return min(max(self.spent_s / self.planned_s, low), high)

    def add(self, key: Hashable, seconds: float, flexible: bool = True) -> None:
        self.pending[key] = (max(seconds, 0.0), flexible)

    def commit(self, key: Hashable, seconds: float) -> None:
        """A measurement is planned to take `seconds` (now, with the slowdown): fixed."""
        self.add(key, seconds / self.slowdown, flexible=False)

    def done(self, key: Hashable, spent_s: float | None = None) -> None:
        """It finished (after `spent_s`, which teaches the slowdown) or was dropped."""
        planned, _ = self.pending.pop(key, (0.0, False))
        if spent_s is not None and planned > 0:
            self.planned_s += planned
            self.spent_s += spent_s

    def cap_s(self, elapsed_s: float) -> float:
        """The time each flexible measurement may take now (inf without a budget)."""
        if self.budget_s is None:
            return math.inf
        k = self.slowdown
        fixed = sum(s * k for s, flexible in self.pending.values() if not flexible)
        wants = [s * k for s, flexible in self.pending.values() if flexible]
        return water_level(wants, self.budget_s - elapsed_s - fixed)

    def remaining_s(self, elapsed_s: float) -> float:
        """Estimated seconds to the end, with the flexible measurements capped."""
        cap, k = self.cap_s(elapsed_s), self.slowdown
        return sum(
            s * k if not flexible else min(s * k, cap) for s, flexible in self.pending.values()
        )
