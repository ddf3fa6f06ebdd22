"""`--shard K/N`: the split is part of the interface. Machines running different audiofx versions,
mounting the corpus at different paths, must agree on it with no coordination, so shard values
are pinned for a fixed list of relative paths; adding files never moves old ones; three shard
runs (three "machines" writing into one folder) produce disjoint outputs whose union is all."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from audiofx_cli.batch.inputs import discover, parse_shard, select_shard, shard_of
from audiofx_cli.errors import UsageError
from tests.conftest import CLI, unit_noise, write_audio

# relative path (the key: '/' separators, relative to the folder or glob base) -> shard of 3, of 16.
# Changing the hash moves files between machines: these values must never change.
PINNED = {
    "a.wav": (2, 14),
    "b.flac": (3, 8),
    "c.wav": (2, 13),
    "sub/f.wav": (3, 12),
    "sub/g.flac": (2, 1),
    "sub/deeper/h.wav": (3, 7),
    "no_extension_audio": (1, 1),
    "take 01.wav": (2, 16),
    "Été/chanson.flac": (3, 12),  # UTF-8 bytes of the name as given (NFC here)
    "2024-05-01/mic1/take_003.wav": (1, 10),
}


@pytest.mark.parametrize("key", sorted(PINNED))
def test_pinned_shard_values(key):
    assert (shard_of(key, 3), shard_of(key, 16)) == PINNED[key]
    # the definition, stated independently: SHA-1 of the UTF-8 key, first 8 bytes big-endian
    digest = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    assert shard_of(key, 16) == digest % 16 + 1 and shard_of(key, 1) == 1


def test_shard_syntax():
    assert parse_shard("3/16") == (3, 16)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0", "-1/3"):
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(bad)


def touch(folder: Path, relative: str) -> None:
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")  # an audio extension is enough to be found (the content is not read)


def assignment(folder: Path, n: int) -> dict[str, int]:
    items = discover([str(folder)], recursive=True)
    shards = {k: select_shard(items, k, n) for k in range(1, n + 1)}
    keys = [item.key for shard in shards.values() for item in shard]
    assert sorted(keys) == sorted(item.key for item in items), f"not a partition (N={n})"
    return {item.key: k for k, shard in shards.items() for item in shard}


def random_names(rng: np.random.Generator, count: int) -> list[str]:
    folders = ["", "a/", "zz/", "a/b/", "0/", "Été/"]
    return [
        f"{rng.choice(folders)}{rng.choice(['0', 'A', 'm', 'z'])}{rng.integers(10**6)}.wav"
        for _ in range(count)
    ]


def test_adding_files_never_moves_existing_ones(tmp_path):
    """Whatever sorts before or after them, in their folders or new ones, for several N; and
    the same corpus under another absolute path, or named by a glob, splits the same way."""
    rng = np.random.default_rng(2024)
    corpus = tmp_path / "corpus"
    for name in random_names(rng, 40):
        touch(corpus, name)
    before = {n: assignment(corpus, n) for n in (2, 3, 7, 16)}
    for name in random_names(rng, 60):
        touch(corpus, name)
    for n, old in before.items():
        new = assignment(corpus, n)
        assert len(new) > len(old)
        moved = {key for key, shard in old.items() if new[key] != shard}
        assert not moved, f"N={n}: adding files moved {sorted(moved)[:5]}"
    elsewhere = tmp_path / "mounted" / "elsewhere"
    shutil.copytree(corpus, elsewhere)
    assert assignment(elsewhere, 16) == assignment(corpus, 16)
    by_glob = discover([str(corpus / "**" / "*.wav")], recursive=True)
    assert {item.key: shard_of(item.key, 16) for item in by_glob} == assignment(corpus, 16)


def test_three_shard_runs_are_disjoint_and_complete(tmp_path):
    """Three machines (three processes at once) share one input and one output folder."""
    corpus = tmp_path / "corpus"
    names = [k for k in PINNED if k.endswith((".wav", ".flac"))]
    for i, name in enumerate(names):
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        write_audio(corpus / name, 0.3 * unit_noise(1, 1600, seed=i), 16000)
    chain = tmp_path / "gain.yaml"
    chain.write_text("stages:\n  - gain: {gain_db: -3}\n")
    out = tmp_path / "out"
    runs = [
        subprocess.Popen(
            [
                *CLI,
                "process",
                str(corpus),
                "-c",
                str(chain),
                "--out-dir",
                str(out),
                "-R",
                "--shard",
                f"{k}/3",
                "--json",
                str(tmp_path / f"shard{k}.json"),
                "-q",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for k in (1, 2, 3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr
    taken: dict[int, set[str]] = {}
    for k in (1, 2, 3):
        doc = json.loads((tmp_path / f"shard{k}.json").read_text())
        assert all(f["status"] == "ok" for f in doc["files"])
        taken[k] = {Path(f["input"]).relative_to(corpus).as_posix() for f in doc["files"]}
        assert taken[k] == {name for name in names if PINNED[name][0] == k}, f"shard {k}/3"
    assert not (taken[1] & taken[2]) and not (taken[1] & taken[3]) and not (taken[2] & taken[3])
    assert taken[1] | taken[2] | taken[3] == set(names)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(names)
