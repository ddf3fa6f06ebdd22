"""Data where it lives: object-store URLs in every command, against a real S3-compatible server
(`moto_server`, started here on the loopback interface), a real local Ray cluster
(`ray start --head` on 127.0.0.1) and a real HTTP server; outputs are compared with what the
same command writes for local files."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, run_cli, unit_noise, write_audio

pytest.importorskip("s3fs", reason="s3fs not installed (pip install '.[dev]')")
MOTO = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
if not Path(MOTO).exists():
    pytest.skip("moto_server not installed (pip install '.[dev]')", allow_module_level=True)

CHAIN = [{"highpass": {"cutoff_hz": 120}}, {"gain": {"gain_db": -3}}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


@pytest.fixture(scope="module")
def s3_env():
    """A moto S3 server on loopback; the environment that points boto / s3fs at it."""
    port = free_port()
    server = subprocess.Popen(
        [MOTO, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # for the s3fs client of this process (checks, uploads)
    try:
        wait_for_port(port)
        yield env
    finally:
        server.terminate()
        server.wait(10)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def store(s3_env):
    """An s3fs filesystem and a fresh bucket name."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    bucket = f"b{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return fs, bucket


@pytest.fixture
def corpus(tmp_path, store):
    """Three recordings (one in a sub-folder) uploaded under s3://BUCKET/raw/, and the same
    files in a local folder."""
    fs, bucket = store
    local = tmp_path / "raw"
    (local / "sub").mkdir(parents=True)
    for i, rel in enumerate(("a.wav", "b.flac", "sub/c.wav")):
        write_audio(local / rel, 0.4 * unit_noise(2, 8000 + 1000 * i, seed=i), 16000)
        fs.put_file(str(local / rel), f"{bucket}/raw/{rel}")
    chain = tmp_path / "chain.yaml"
    chain.write_text(json.dumps({"stages": CHAIN}))
    return local, chain


def cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 300):
    return run_cli(*args, env=env, cwd=cwd, timeout=timeout)


def objects(fs, prefix: str) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.find(prefix))


def test_folder_to_bucket_equals_the_local_run(tmp_path, store, corpus, s3_env):
    fs, bucket = store
    local, chain = corpus
    report = tmp_path / "report.json"
    remote = cli(
        "process",
        f"s3://{bucket}/raw/",
        "--recursive",
        "-c",
        str(chain),
        "--out-dir",
        f"s3://{bucket}/clean/",
        "--json",
        str(report),
        "-q",
        env=s3_env,
    )
    assert remote.returncode == 0, remote.stderr
    here = cli(
        "process",
        str(local),
        "-R",
        "-c",
        str(chain),
        "--out-dir",
        str(tmp_path / "l"),
        "-q",
        env=s3_env,
    )
    assert here.returncode == 0, here.stderr
    keys = objects(fs, f"{bucket}/clean")
    assert keys == [f"{bucket}/clean/{r}" for r in ("a.wav", "b.flac", "sub/c.wav")]
    for rel in ("a.wav", "b.flac", "sub/c.wav"):
        assert fs.cat_file(f"{bucket}/clean/{rel}") == (tmp_path / "l" / rel).read_bytes(), rel
    files = json.loads(report.read_text())["files"]
    assert {f["input"] for f in files} == {
        f"s3://{bucket}/raw/{r}" for r in ("a.wav", "b.flac", "sub/c.wav")
    }
    assert all(f["status"] == "ok" and f["output"].startswith("s3://") for f in files)
    # resume: everything exists now
    again = cli(
        "process",
        f"s3://{bucket}/raw/",
        "-R",
        "-c",
        str(chain),
        "--out-dir",
        f"s3://{bucket}/clean/",
        "--skip-existing",
        "--json",
        str(report),
        "-q",
        env=s3_env,
    )
    assert again.returncode == 0, again.stderr
    assert {f["status"] for f in json.loads(report.read_text())["files"]} == {"skipped"}
    # without --overwrite or --skip-existing an existing object is refused, per file
    refused = cli(
        "process",
        f"s3://{bucket}/raw/a.wav",
        "-c",
        str(chain),
        "-o",
        f"s3://{bucket}/clean/a.wav",
        env=s3_env,
    )
    assert refused.returncode == 2 and "exists" in refused.stderr


def test_single_files_info_and_chain_by_url(tmp_path, store, corpus, s3_env):
    fs, bucket = store
    local, chain = corpus
    fs.put_file(str(chain), f"{bucket}/configs/chain.yaml")
    out = tmp_path / "a_out.wav"
    down = cli(
        "process",
        f"s3://{bucket}/raw/a.wav",
        "-c",
        f"s3://{bucket}/configs/chain.yaml",
        "-o",
        str(out),
        "-q",
        env=s3_env,
    )
    assert down.returncode == 0, down.stderr
    ref = tmp_path / "a_ref.wav"
    assert (
        cli(
            "process", str(local / "a.wav"), "-c", str(chain), "-o", str(ref), "-q", env=s3_env
        ).returncode
        == 0
    )
    assert out.read_bytes() == ref.read_bytes()
    up = cli(
        "process",
        str(local / "a.wav"),
        "-c",
        str(chain),
        "-o",
        f"s3://{bucket}/up/a.flac",
        "-q",
        env=s3_env,
    )
    assert up.returncode == 0, up.stderr
    data, rate = sf.read(fs.open(f"{bucket}/up/a.flac", "rb"))
    expected, _ = sf.read(ref)
    assert rate == 16000 and np.array_equal(data, expected)  # FLAC keeps the PCM_16 samples
    info = cli("info", f"s3://{bucket}/raw/a.wav", "--json", env=s3_env)
    assert info.returncode == 0, info.stderr
    (measured,) = json.loads(info.stdout)
    assert measured["path"] == f"s3://{bucket}/raw/a.wav" and measured["channels"] == 2
    missing = cli(
        "process",
        f"s3://{bucket}/raw/nope.wav",
        "-c",
        str(chain),
        "-o",
        str(tmp_path / "x.wav"),
        env=s3_env,
    )
    assert missing.returncode == 2 and "no such object" in missing.stderr
    assert not (tmp_path / "x.wav").exists()


def test_a_bad_object_among_good_ones(tmp_path, store, corpus, s3_env):
    fs, bucket = store
    _, chain = corpus
    fs.pipe_file(f"{bucket}/raw/broken.wav", b"this is not audio")
    report = tmp_path / "r.json"
    result = cli(
        "process",
        f"s3://{bucket}/raw/",
        "-R",
        "-c",
        str(chain),
        "--out-dir",
        f"s3://{bucket}/clean/",
        "--json",
        str(report),
        "-q",
        env=s3_env,
    )
    assert result.returncode == 1
    status = {Path(f["input"]).name: f["status"] for f in json.loads(report.read_text())["files"]}
    assert status == {"a.wav": "ok", "b.flac": "ok", "c.wav": "ok", "broken.wav": "failed"}
    assert f"{bucket}/clean/broken.wav" not in objects(fs, f"{bucket}/clean")
    assert result.stderr.count("broken.wav") >= 1 and "Traceback" not in result.stderr


def test_shards_partition_the_bucket(tmp_path, store, corpus, s3_env):
    fs, bucket = store
    _, chain = corpus
    for k in (1, 2, 3):
        result = cli(
            "process",
            f"s3://{bucket}/raw/",
            "-R",
            "-c",
            str(chain),
            "--out-dir",
            f"s3://{bucket}/s{k}/",
            "--shard",
            f"{k}/3",
            "-q",
            env=s3_env,
        )
        assert result.returncode in (0, 2), result.stderr  # 2: an empty shard is a usage error
    names = [key.split("/", 2)[2] for k in (1, 2, 3) for key in objects(fs, f"{bucket}/s{k}")]
    assert sorted(names) == ["a.wav", "b.flac", "sub/c.wav"]  # each object once, none lost


def _big_input(tmp_path: Path) -> Path:
    """A float WAV whose output (30 MB) is uploaded in several 5 MB parts."""
    path = tmp_path / "big" / "long.wav"
    path.parent.mkdir()
    write_audio(path, 0.3 * unit_noise(2, 48000 * 80, seed=5), 48000, subtype="FLOAT")
    return path


def _wait_for_multipart(fs, bucket: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fs.list_multipart_uploads(bucket):
            return
        if proc.poll() is not None:
            raise AssertionError(f"finished before its upload was seen: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError("no multipart upload seen")


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_job_stopped_mid_upload_leaves_no_object(tmp_path, store, s3_env, how):
    fs, bucket = store
    src = _big_input(tmp_path)
    target = f"s3://{bucket}/out/"
    cmd = [
        sys.executable,
        "-m",
        "audiofx_cli",
        "process",
        str(src.parent),
        "-c",
        "rumble",
        "--out-dir",
        target,
        "-q",
    ]
    with subprocess.Popen(
        cmd, env={**os.environ, **s3_env}, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            _wait_for_multipart(fs, bucket, proc)
            proc.send_signal(getattr(signal, how))
            code = proc.wait(60)
        finally:
            proc.kill()
            proc.communicate()
    assert not objects(fs, f"{bucket}/out"), "a partial object appeared"
    if how == "SIGINT":
        assert code == 130
        assert fs.list_multipart_uploads(bucket) == []  # aborted on the way out
    else:  # nothing could clean up: the resume does
        assert fs.list_multipart_uploads(bucket)
        again = cli(
            "process",
            str(src.parent),
            "-c",
            "rumble",
            "--out-dir",
            target,
            "--skip-existing",
            "-q",
            env=s3_env,
        )
        assert again.returncode == 0, again.stderr
        assert fs.list_multipart_uploads(bucket) == []
        assert objects(fs, f"{bucket}/out") == [f"{bucket}/out/long.wav"]
        assert fs.info(f"{bucket}/out/long.wav")["size"] == src.stat().st_size


@pytest.fixture(scope="module")
def ray_cluster(s3_env, tmp_path_factory):
    """A local Ray cluster (head only, 2 CPUs) whose workers see the S3 endpoint through their
    environment, as nodes of a real cluster see their store's standard configuration."""
    pytest.importorskip("ray", reason="ray not installed (pip install '.[dev]')")
    ray_bin = shutil.which("ray") or str(Path(sys.executable).parent / "ray")
    port = free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, **s3_env, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    start = subprocess.run(
        [
            ray_bin,
            "start",
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            "--num-cpus=2",
            "--include-dashboard=false",
            f"--temp-dir={temp}",
            "--disable-usage-stats",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    if start.returncode != 0:
        pytest.skip(f"cannot start a local Ray cluster: {start.stderr[-300:]}")
    try:
        yield {"RAY_ADDRESS": f"127.0.0.1:{port}", "RAY_AUTH_MODE": "disabled"}
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_ray_executor_reads_and_writes_the_store(tmp_path, store, corpus, s3_env, ray_cluster):
    fs, bucket = store
    local, chain = corpus
    fs.pipe_file(f"{bucket}/raw/broken.wav", b"not audio")
    report = tmp_path / "r.json"
    result = cli(
        "process",
        f"s3://{bucket}/raw/",
        "-R",
        "-c",
        str(chain),
        "--out-dir",
        f"s3://{bucket}/ray/",
        "--executor",
        "ray",
        "--json",
        str(report),
        "-q",
        env={**s3_env, **ray_cluster},
    )
    assert result.returncode == 1, result.stderr
    status = {Path(f["input"]).name: f["status"] for f in json.loads(report.read_text())["files"]}
    assert status == {"a.wav": "ok", "b.flac": "ok", "c.wav": "ok", "broken.wav": "failed"}
    here = cli(
        "process",
        str(local),
        "-R",
        "-c",
        str(chain),
        "--out-dir",
        str(tmp_path / "l"),
        "-q",
        env=s3_env,
    )
    assert here.returncode == 0
    for rel in ("a.wav", "b.flac", "sub/c.wav"):
        assert fs.cat_file(f"{bucket}/ray/{rel}") == (tmp_path / "l" / rel).read_bytes(), rel


def test_a_killed_ray_worker_is_retried(tmp_path, store, s3_env, ray_cluster):
    fs, bucket = store
    src = _big_input(tmp_path)
    report = tmp_path / "r.json"
    cmd = [
        sys.executable,
        "-m",
        "audiofx_cli",
        "process",
        str(src.parent),
        "-c",
        "rumble",
        "--out-dir",
        f"s3://{bucket}/retry/",
        "--executor",
        "ray",
        "--json",
        str(report),
        "-q",
    ]
    env = {**os.environ, **s3_env, **ray_cluster}
    with subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + 120
            killed = False
            while not killed and time.monotonic() < deadline and proc.poll() is None:
                found = subprocess.run(
                    ["pgrep", "-f", "ray::run_task"], capture_output=True, text=True
                )
                for pid in found.stdout.split():
                    os.kill(int(pid), signal.SIGKILL)  # the worker dies mid-file
                    killed = True
                time.sleep(0.05)
            code = proc.wait(180)
        finally:
            proc.kill()
            _, stderr = proc.communicate()
    assert killed, "the Ray worker was never seen running the file"
    assert code == 0, stderr
    (entry,) = json.loads(report.read_text())["files"]
    assert entry["status"] == "ok"
    assert fs.info(f"{bucket}/retry/long.wav")["size"] == src.stat().st_size
    assert fs.list_multipart_uploads(bucket) == []


def test_ray_data_map_batches_equals_process_file(tmp_path, store, corpus, s3_env, ray_cluster):
    pytest.importorskip("ray.data", reason="ray[data] not installed (pip install '.[dev]')")
    import ray

    import audiofx_cli
    import audiofx_cli.ray_data as afx

    fs, bucket = store
    local, chain = corpus
    ray.init(address=ray_cluster["RAY_ADDRESS"], log_to_driver=False, configure_logging=False)
    try:
        rows = [{"path": f"s3://{bucket}/raw/{r}"} for r in ("a.wav", "sub/c.wav")]
        rows.append({"path": str(local / "b.flac")})
        ds = ray.data.from_items(rows).map_batches(
            afx.Processor,
            fn_constructor_kwargs={"chain": str(chain)},
            batch_size=2,
            compute=ray.data.ActorPoolStrategy(size=1),
        )
        got = {Path(row["path"]).name: row for row in ds.take_all()}
        mel = (
            ray.data.from_items(rows[:1])
            .map_batches(
                afx.Processor,
                fn_constructor_kwargs={"chain": "mel-64"},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=1),
            )
            .take_all()
        )
    finally:
        ray.shutdown()
    for rel in ("a.wav", "sub/c.wav", "b.flac"):
        out = tmp_path / f"{Path(rel).stem}.wav"
        audiofx_cli.process_file(local / rel, out, str(chain), subtype="FLOAT", device="cpu")
        expected, rate = sf.read(out, dtype="float32", always_2d=True)
        row = got[Path(rel).name]
        assert row["sample_rate"] == rate == 16000
        np.testing.assert_array_equal(np.asarray(row["audio"]), expected.T)
    from audiofx_cli import features as afx_features

    features, meta = afx_features.compute(local / "a.wav", "mel-64")
    axes = json.loads(mel[0]["axes"])
    assert axes["names"] == meta.axes and axes["frame_rate"] == pytest.approx(meta.frame_rate)
    np.testing.assert_allclose(mel[0]["features"], features.numpy(), rtol=1e-5, atol=1e-5)


def test_datasets_map_uses_the_same_processor(corpus):
    datasets = pytest.importorskip("datasets", reason="datasets not installed")
    import audiofx_cli.ray_data as afx

    local, chain = corpus
    rate = 16000
    wave = 0.3 * unit_noise(1, rate, seed=9)
    ds = datasets.Dataset.from_dict(
        {
            "path": [str(local / "a.wav"), None],
            "audio": [None, wave[0]],
            "sample_rate": [None, rate],
        }
    )
    processor = afx.Processor(str(chain), device="cpu")
    mapped = ds.map(processor, batched=True, batch_size=2)
    direct = processor({"path": [str(local / "a.wav")]})
    np.testing.assert_array_equal(np.asarray(mapped[0]["audio"], np.float32), direct["audio"][0])
    assert mapped[1]["sample_rate"] == rate and np.asarray(mapped[1]["audio"]).shape == (1, rate)


def test_http_is_read_only(tmp_path, corpus):
    pytest.importorskip("aiohttp", reason="aiohttp not installed (pip install '.[cloud]')")
    local, chain = corpus
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(local))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/a.wav"
    try:
        got = cli("process", url, "-c", str(chain), "-o", str(tmp_path / "h.flac"), "-q", env={})
        refused = cli("process", str(local / "a.wav"), "-c", str(chain), "-o", url, env={})
    finally:
        server.shutdown()
        server.server_close()
    assert got.returncode == 0, got.stderr
    ref = tmp_path / "ref.flac"
    assert (
        cli(
            "process", str(local / "a.wav"), "-c", str(chain), "-o", str(ref), "-q", env={}
        ).returncode
        == 0
    )
    assert np.array_equal(sf.read(tmp_path / "h.flac")[0], sf.read(ref)[0])
    assert refused.returncode == 2 and "read-only" in refused.stderr


def test_unknown_scheme_is_one_line(tmp_path):
    result = run_cli(
        "process", "nosuch://bucket/a.wav", "-c", "rumble", "-o", str(tmp_path / "x.wav")
    )
    assert result.returncode == 2
    assert "unknown URL scheme" in result.stderr and "Traceback" not in result.stderr
