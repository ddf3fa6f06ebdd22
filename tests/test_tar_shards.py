"""Dataset shards (`--out-shards`): tar files read back with Python's tarfile (and the
webdataset package when installed), members equal to the files a plain run writes, size
limits, atomic shards, the report's index, --shard K/N numbering, audio members, Ray."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from typer.testing import CliRunner

from audiofx_cli import features, process_file
from audiofx_cli.cli.main import app
from audiofx_cli.io.shards import ShardWriter, parse_size
from tests.conftest import run_cli, unit_noise, write_audio


class Result:
    def __init__(self, code: int, output: str) -> None:
        self.returncode, self.stderr = code, output


def cli(*args: str) -> Result:
    """The CLI in this process (a subprocess costs seconds of imports each time)."""
    result = CliRunner().invoke(app, list(args))
    return Result(result.exit_code, result.output)


RATE = 16000
CHAIN = "stages:\n  - mel: {n_fft: 512, hop: 160, n_mels: 20}\n  - frames: {hop_ms: 20}\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    for i, name in enumerate(["a.wav", "b.flac", "sub/c.take1.wav", "sub/d.wav"]):
        write_audio(root / name, 0.2 * unit_noise(1, RATE // 2 * (i + 1), seed=i), RATE)
    (root / "broken.wav").write_text("not audio")
    return root


@pytest.fixture
def chain_file(tmp_path: Path) -> Path:
    path = tmp_path / "mel.yaml"
    path.write_text(CHAIN)
    return path


def read_tar(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def test_shards_hold_every_input_once_with_its_json(tmp_path, corpus, chain_file):
    pattern = str(tmp_path / "out" / "shard-%04d.tar")
    report = tmp_path / "r.json"
    result = cli("process", str(corpus), "-R", "-c", str(chain_file), "--out-shards",
                     pattern, "--shard-size", "30KB", "--json", str(report), "-q")  # fmt: skip
    assert result.returncode == 1, result.stderr  # the broken file
    document = json.loads(report.read_text())
    shards = document["shards"]
    assert len(shards) >= 2 and all(Path(s["path"]).stat().st_size <= 30_000 for s in shards)
    assert [Path(s["path"]).name for s in shards] == [
        f"shard-{i:04d}.tar" for i in range(len(shards))
    ]
    assert not [p for p in (tmp_path / "out").iterdir() if "audiofx-tmp" in p.name]
    members = {}
    for shard in shards:
        names = read_tar(Path(shard["path"]))
        assert sorted(names) == sorted(f"{k}.{e}" for k in shard["keys"] for e in ("npz", "json"))
        members.update(names)
    keys = sorted(n.removesuffix(".npz") for n in members if n.endswith(".npz"))
    assert keys == ["a", "b", "sub/c_take1", "sub/d"]
    by_input = {Path(f["input"]).name: f for f in document["files"]}
    assert by_input["broken.wav"]["status"] == "failed" and by_input["broken.wav"]["shard"] is None
    for name, key in (("a.wav", "a"), ("sub/c.take1.wav", "sub/c_take1")):
        entry = by_input[Path(name).name]
        assert (
            entry["key"] == key
            and key in next(s for s in shards if s["path"] == entry["shard"])["keys"]
        )
        direct = tmp_path / f"{Path(name).stem}.npz"
        process_file(corpus / name, direct, str(chain_file))
        expected, meta = features.load(direct)
        with np.load(io.BytesIO(members[f"{key}.npz"])) as z:
            np.testing.assert_array_equal(z["data"], expected.numpy())
        sidecar = json.loads(members[f"{key}.json"])
        assert sidecar["key"] == key and sidecar["source"] == str(corpus / name)
        assert sidecar["axes"] == ["channel", "mel_hz", "time_s"] == meta.axes
        assert sidecar["frame_rate"] == 50 and sidecar["shape"] == list(expected.shape)
        assert sidecar["chain"]["stages"][1]["frames"]["hop_ms"] == 20
        np.testing.assert_allclose(sidecar["mel_hz"], meta.coords["mel_hz"])


def test_iter_shards_and_stack_read_them_back(tmp_path, corpus, chain_file):
    pattern = str(tmp_path / "s-%02d.tar")
    result = cli("process", str(corpus / "sub"), "-c", str(chain_file), "--out-shards",
                     pattern, "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    shard = tmp_path / "s-00.tar"
    samples = list(features.iter_shards(str(tmp_path / "s-*.tar")))
    assert [key for key, _, _ in samples] == ["c_take1", "d"]
    batch, lengths, meta = features.stack([shard])
    assert lengths.tolist() == [x.shape[-1] for _, x, _ in samples] == [76, 101]
    torch.testing.assert_close(batch[1], samples[1][1])
    assert meta.frame_rate == 50 and meta.axes == ["channel", "mel_hz", "time_s"]
    again = cli("process", str(corpus / "sub"), "-c", str(chain_file), "--out-shards",
                    pattern, "-q")  # fmt: skip
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten silently


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # webdataset 1.0 leaves the tar open
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_webdataset_reads_the_shards(tmp_path, corpus, chain_file):
    wds = pytest.importorskip("webdataset", reason="webdataset not installed (optional)")
    pattern = str(tmp_path / "w-%03d.tar")
    assert cli("process", str(corpus / "sub"), "-c", str(chain_file), "--out-shards",
                   pattern, "-q").returncode == 0  # fmt: skip
    samples = list(wds.WebDataset(str(tmp_path / "w-000.tar"), shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["c_take1", "d"]
    for sample in samples:
        data = np.load(io.BytesIO(sample["npz"]))["data"]
        assert data.shape == tuple(json.loads(sample["json"])["shape"])


def test_shard_k_of_n_numbering_and_audio_members(tmp_path, corpus):
    chain = tmp_path / "gain.yaml"
    chain.write_text("stages:\n  - gain: {gain_db: -6}\n")
    written = []
    for k in (1, 2):
        pattern = str(tmp_path / "audio" / "a-%03d.tar")
        result = cli("process", str(corpus), "-R", "-c", str(chain), "--out-shards", pattern,
                         "--shard", f"{k}/2", "--shard-size", "1", "--overwrite", "-q")  # fmt: skip
        assert result.returncode in (0, 1), result.stderr
    written = sorted(p.name for p in (tmp_path / "audio").iterdir())
    numbers = sorted(int(n[2:5]) for n in written)
    assert len(numbers) == 4 and len(set(numbers)) == 4  # one sample per shard, no clash
    for path in (tmp_path / "audio").iterdir():
        members = read_tar(path)
        (flac,) = [n for n in members if n.endswith(".flac")]
        wave, rate = sf.read(io.BytesIO(members[flac]))
        sidecar = json.loads(members[flac.replace(".flac", ".json")])
        assert rate == RATE == sidecar["sample_rate"] and sidecar["frames"] == len(wave)
        original, _ = sf.read(sidecar["source"])
        np.testing.assert_allclose(wave, original * 10 ** (-6 / 20), atol=2 / 32768)


def test_writer_is_atomic_and_sizes_parse(tmp_path):
    writer = ShardWriter(str(tmp_path / "x-%d.tar"), max_bytes=100_000)
    writer.add("one", {"bin": b"\0" * 1000})
    assert not list(tmp_path.glob("x-*.tar"))  # only a temporary file while open
    assert writer.abort() == ["one"]
    assert not list(tmp_path.iterdir())
    assert parse_size("1GB") == 10**9 and parse_size("256MiB") == 2**28 and parse_size("77") == 77
    with pytest.raises(Exception, match="--shard-size"):
        parse_size("lots")
    bad = cli("process", str(tmp_path), "-c", "mel-64", "--out-shards", str(tmp_path / "x.tar"))
    assert bad.returncode == 2 and "integer field" in bad.stderr


@pytest.mark.slow
def test_ray_executor_writes_the_same_shards(tmp_path, corpus, chain_file):
    pytest.importorskip("ray", reason="ray not installed (pip install 'audiofx-cli[ray]')")
    pattern = str(tmp_path / "ray" / "s-%02d.tar")
    result = run_cli("process", str(corpus / "sub"), "-c", str(chain_file), "--out-shards",
                     pattern, "--executor", "ray", "-q",
                     env={"RAY_ADDRESS": "", "RAY_num_cpus": "2"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    got = {k: x for k, x, _ in features.iter_shards(pattern.replace("%02d", "*"))}
    assert got.keys() == {"c_take1", "d"}
    for name, key in (("c.take1.wav", "c_take1"), ("d.wav", "d")):
        direct = tmp_path / f"{key}.npz"
        process_file(corpus / "sub" / name, direct, str(chain_file))
        torch.testing.assert_close(got[key], features.load(direct)[0])
