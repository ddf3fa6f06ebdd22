"""Machine facts for the benchmark: CPU model, threads, versions, free memory and disk, and
the peak memory a backend adds while it runs.

Peak memory on the CPU: the process's RSS high-water mark (VmHWM) is reset through
/proc/self/clear_refs before a backend's runs and read after; the figure is that peak minus the
RSS before the runs. Where /proc cannot be reset, getrusage's ru_maxrss (the peak of the whole
process) is reported instead and `method` says so. On CUDA: torch.cuda.max_memory_allocated
above the allocation before the runs. (tracemalloc would miss torch's allocations.)

Resetting VmHWM also resets what getrusage (and `/usr/bin/time -v`) report as the process's
maximum RSS, so the high-water mark is read before every reset and the command's own peak
(`command_peak_bytes`) is the largest of those readings and the current one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MB = 1024 * 1024


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (else physical memory from sysconf)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return total_memory_bytes()


def total_memory_bytes() -> int:
    """Physical memory (sysconf)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def free_disk_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


# --------------------------------------------------------------------------- memory
def _rss_status(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def rss_bytes() -> int:
    """This process's resident memory now (0 where /proc is missing)."""
    return _rss_status("VmRSS") or 0


_peak_before_resets = [0]  # the largest VmHWM read before a reset


def command_peak_bytes() -> int:
    """Peak RSS of this process since it started, across the VmHWM resets of PeakMemory."""
    now = _rss_status("VmHWM")
    if now is None:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max(now, _peak_before_resets[0])


def _trim_heap() -> None:
    """Give free heap pages back to the OS (glibc malloc_trim), so that memory the backend
    reuses from earlier frees shows up in its RSS; no-op elsewhere."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakMemory:
    """Peak memory a backend adds while it runs (see the module docstring for the method)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.method = ""
        self.base = 0

    def start(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device)
            self.method = "cuda max_memory_allocated"
            return
        _trim_heap()
        _peak_before_resets[0] = command_peak_bytes()
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.base = _rss_status("VmRSS") or 0
            self.method = "rss high-water (VmHWM)"
        except OSError:
            self.base = 0
            self.method = "ru_maxrss (whole process)"

    def peak_mb(self) -> float:
        if self.device.startswith("cuda"):
            import torch

            return max(torch.cuda.max_memory_allocated(self.device) - self.base, 0) / MB
        if self.method.startswith("rss"):
            return max((_rss_status("VmHWM") or 0) - self.base, 0) / MB
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB


# --------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    import torch

    from audiofx_cli._version import __version__

    return {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count() or 0,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "audiofx_version": __version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
        "load_1m": os.getloadavg()[0],
    }


def device_name(device: str, machine: dict[str, Any]) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    return machine["cpu_model"]
