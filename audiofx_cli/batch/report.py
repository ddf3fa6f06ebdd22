"""Batch reports: the JSON file (`--json PATH`) and the summary numbers. Torch-free."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from audiofx_cli._version import __version__
from audiofx_cli.batch.runner import FileResult
from audiofx_cli.chain.spec import ChainSpec
from audiofx_cli.io.temp import temp_beside


@dataclass
class BatchSummary:
    """Counts and totals over a batch."""

    total: int
    results: list[FileResult] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def audio_s(self) -> float:
        return sum(r.duration_s for r in self.results if r.status == "ok")

    @property
    def wall_s(self) -> float:
        return time.time() - self.started

    @property
    def realtime_factor(self) -> float:
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.total,
            "done": len(self.results),
            "ok": self.count("ok"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "audio_s": round(self.audio_s, 6),
            "wall_s": round(self.wall_s, 6),
            "realtime_factor": round(self.realtime_factor, 3),
            "interrupted": self.interrupted,
        }


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def write_json_report(
    path: Path, summary: BatchSummary, spec: ChainSpec, extra: dict[str, Any] | None = None
) -> None:
    """Write the report atomically (temp file + rename): per-file status, input, output,
    duration, processing time, peak, clipped samples and error message; `extra` adds
    top-level sections (the shard index of `--out-shards`)."""
    order = sorted(summary.results, key=lambda r: r.input)
    document = {
        "audiofx_version": __version__,
        "chain": {"source": spec.source, "name": spec.name, "spec": spec.to_dict()},
        "started": _iso(summary.started),
        "finished": _iso(time.time()),
        "summary": summary.as_dict(),
        "files": [r.as_dict() for r in order],
        **(extra or {}),
    }
    path = Path(path)
    fd, tmp = temp_beside(path)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
