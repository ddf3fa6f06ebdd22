"""Object-store and web URLs (s3://, gs://, az://, https://, ...) through fsspec.

Local paths never come here: `location()` returns a `Path` for them and every caller keeps its
local code path and speed. A URL becomes a `URLPath`, a pure path with a scheme: joins, names and
suffixes work as on `PurePosixPath`, and `str()` gives the URL back.

- Reading: `fetched(url)` copies the object into a spooled local file (in TMPDIR, streamed in
  4 MB blocks, so memory stays bounded; the object's size is checked against the free space
  there first), and libsndfile reads that like any file: rewinds and two-pass stages work.
- Writing: an output is written to a local staging file exactly as a local output is, and
  `upload` sends it on commit. The object appears only complete: one PUT, or a multipart
  upload completed at the end; on an error or Ctrl-C the multipart upload is aborted, and
  `abort_stale_uploads` removes those a killed run left behind (on resume, as stale temporary
  files are removed locally). http(s) URLs are read-only.
- Credentials and endpoints come from each backend's standard configuration (AWS_PROFILE,
  AWS_ENDPOINT_URL, ~/.aws/, GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_*), never from the
  command line.

fsspec and its backends are imported only when a URL is used (`pip install 'audiofx-cli[cloud]'`
and s3fs / gcsfs / adlfs for the stores).
"""

from __future__ import annotations

import posixpath
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from audiofx_cli.errors import AudioReadError, AudioWriteError, UsageError

READ_ONLY_SCHEMES = ("http", "https")
BLOCK_BYTES = 4 << 20  # copy and multipart-part size (S3's minimum part is 5 MB; s3fs raises it)
_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://(.*)$")
INSTALL_HINT = "pip install 'audiofx-cli[cloud]'"


@dataclass(frozen=True)
class URLPath:
    """A URL as a pure path: `scheme://key`, where key is 'bucket/folder/file.wav' (or
    'host/path' for http). Behaves like `PurePosixPath` for joins and names."""

    scheme: str
    key: PurePosixPath

    @classmethod
    def parse(cls, url: str) -> URLPath:
        match = _URL.match(url)
        if match is None:
            raise UsageError(f"{url}: not a URL (scheme://...)")
        scheme, rest = match.group(1).lower(), match.group(2).strip("/")
        if not rest:
            raise UsageError(f"{url}: a URL needs a bucket or host after {scheme}://")
        return cls(scheme, PurePosixPath(rest))

    def __str__(self) -> str:
        return f"{self.scheme}://{self.key.as_posix()}"

    def __truediv__(self, other: str | PurePosixPath | Path) -> URLPath:
        part = PurePosixPath(Path(other).as_posix()) if isinstance(other, Path) else other
        return URLPath(self.scheme, PurePosixPath(posixpath.normpath(str(self.key / part))))

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def stem(self) -> str:
        return self.key.stem

    @property
    def suffix(self) -> str:
        return self.key.suffix

    @property
    def parent(self) -> URLPath:
        return URLPath(self.scheme, self.key.parent)

    def relative_to(self, other: URLPath) -> PurePosixPath:
        return self.key.relative_to(other.key)

    def as_posix(self) -> str:
        return str(self)

    @property
    def read_only(self) -> bool:
        return self.scheme in READ_ONLY_SCHEMES


Location = Path | URLPath


def is_url(text: str | Path | URLPath) -> bool:
    """True for 'scheme://...' other than file:// (a local path)."""
    if isinstance(text, URLPath):
        return True
    match = _URL.match(str(text)) if isinstance(text, str) else None
    return match is not None and match.group(1).lower() != "file"


def location(value: str | Path | URLPath) -> Location:
    """A URLPath for a URL, else a local Path (file:// URLs included)."""
    if isinstance(value, URLPath | Path):
        return value
    if is_url(value):
        return URLPath.parse(value)
    if value.lower().startswith("file://"):
        return Path(value[len("file://") :])
    return Path(value)


def filesystem(url: URLPath) -> Any:
    """The fsspec filesystem of a URL's scheme.

    Raises:
        UsageError: fsspec or the scheme's backend is not installed, or the scheme is unknown.
    """
    try:
        import fsspec
    except ImportError:
        raise UsageError(f"{url}: URLs need fsspec: {INSTALL_HINT}") from None
    try:
        return fsspec.filesystem(url.scheme)
    except ImportError as exc:
        raise UsageError(f"{url}: {url.scheme}:// needs its fsspec backend: {exc}") from None
    except ValueError as exc:
        raise UsageError(f"{url}: unknown URL scheme '{url.scheme}' ({exc})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def object_info(url: URLPath) -> dict[str, Any] | None:
    """The object's fsspec info (size, type, ...), or None when there is none.

    Raises:
        AudioReadError: the store cannot be asked (credentials, network, permissions).
    """
    fs = filesystem(url)
    try:
        return dict(fs.info(str(url)))
    except FileNotFoundError:
        return None
    except Exception as exc:  # botocore, aiohttp, ... errors: one line, exit 1
        raise AudioReadError(f"{url}: cannot reach the object: {_reason(exc)}") from None


def exists(loc: Location) -> bool:
    if isinstance(loc, Path):
        return loc.exists()
    info = object_info(loc)
    return info is not None and info.get("type") != "directory"


@contextmanager
def fetched(url: URLPath, spool_dir: str | None = None) -> Iterator[Path]:
    """A local copy of the object for the duration of the block (removed afterwards).

    Raises:
        AudioReadError: no such object, not enough free space for the copy, or a failed read.
        UsageError: the URL is a folder (prefix).
    """
    info = object_info(url)
    if info is None:
        raise AudioReadError(f"{url}: no such object")
    if info.get("type") == "directory":
        raise UsageError(f"{url}: is a folder (prefix), not an audio file")
    spool = Path(spool_dir or tempfile.gettempdir())
    size = int(info.get("size") or 0)
    free = shutil.disk_usage(spool).free
    if size > 0.9 * free:
        raise AudioReadError(
            f"{url}: {size / 1e9:.2f} GB to copy to {spool} but only {free / 1e9:.2f} GB is "
            "free there (set TMPDIR to a bigger disk)"
        )
    fs = filesystem(url)
    with tempfile.TemporaryDirectory(prefix="audiofx-fetch-", dir=spool) as tmp:
        local = Path(tmp) / (url.name or "object")
        try:
            with fs.open(str(url), "rb", block_size=BLOCK_BYTES) as src, local.open("wb") as dst:
                shutil.copyfileobj(src, dst, BLOCK_BYTES)
        except FileNotFoundError:
            raise AudioReadError(f"{url}: no such object") from None
        except Exception as exc:
            raise AudioReadError(f"{url}: download failed: {_reason(exc)}") from None
        yield local


def read_text(url: URLPath, max_bytes: int) -> str:
    """A small text object (a chain file), at most `max_bytes`.

    Raises:
        UsageError: missing, too big, unreadable or not UTF-8.
    """
    info = object_info(url)
    if info is None or info.get("type") == "directory":
        raise UsageError(f"{url}: no such chain file")
    if int(info.get("size") or 0) > max_bytes:
        raise UsageError(f"{url}: a chain file of {info['size']} bytes (at most {max_bytes})")
    try:
        with filesystem(url).open(str(url), "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise UsageError(f"{url}: a chain file over {max_bytes} bytes")
        return data.decode("utf-8")
    except (UnicodeDecodeError, OSError) as exc:
        raise UsageError(f"cannot read chain {url}: {_reason(exc)}") from None


def check_writable(url: URLPath) -> None:
    """Refuse outputs on read-only schemes before anything runs.

    Raises:
        UsageError: an http(s) output.
    """
    if url.read_only:
        raise UsageError(f"{url}: {url.scheme} URLs are read-only; write to a file or a bucket")


def upload(local: Path, url: URLPath, overwrite: bool) -> None:
    """Send a finished local file to `url`; the object appears only complete.

    The copy goes through the backend's buffered writer (s3fs: one PUT for small files, else a
    multipart upload completed when the writer closes); any error or interruption discards it
    (s3fs aborts the multipart upload), so no partial or half-uploaded object is left.

    Raises:
        AudioWriteError: the object exists (without overwrite) or the upload failed.
    """
    check_writable(url)
    if not overwrite and exists(url):
        raise AudioWriteError(
            f"{url}: appeared while processing; not overwritten (use --overwrite)"
        )
    fs = filesystem(url)
    # S3 'xb': the PUT / completion carries If-None-Match, so an object that appeared
    # meanwhile is never replaced without --overwrite
    mode = "xb" if url.scheme in ("s3", "s3a") and not overwrite else "wb"
    try:
        target = fs.open(str(url), mode, block_size=max(BLOCK_BYTES, 5 << 20))
    except Exception as exc:
        raise AudioWriteError(f"{url}: cannot start the upload: {_reason(exc)}") from None
    try:
        with local.open("rb") as src:
            shutil.copyfileobj(src, target, BLOCK_BYTES)
    except BaseException as exc:
        _discard(target, url)
        if isinstance(exc, Exception):
            raise AudioWriteError(f"{url}: upload failed: {_reason(exc)}") from None
        raise
    try:
        target.close()  # completes the upload: the object appears now, whole
    except BaseException as exc:
        _discard(target, url)
        if isinstance(exc, Exception):
            raise AudioWriteError(f"{url}: upload failed: {_reason(exc)}") from None
        raise


def _discard(target: Any, url: URLPath) -> None:
    """Abandon a writer without creating the object; marked closed so that garbage collection
    never completes it. Its multipart upload is aborted: by the writer when it knows the upload
    (s3fs), and by key in case the interruption came while the upload was being created (the
    store has it, the writer does not know it yet)."""
    try:
        target.discard()
    except Exception:  # already failing: the first error is the one reported
        pass
    finally:
        target.closed = True
    abort_stale_uploads([url])


def abort_stale_uploads(urls: list[URLPath]) -> int:
    """Abort the unfinished multipart uploads of these exact keys (left by a killed run);
    returns how many. Only S3-like stores have them; other schemes are left alone. Best
    effort: listing errors are ignored (the uploads themselves never depend on it)."""
    by_bucket: dict[str, set[str]] = {}
    for url in urls:
        if url.scheme in ("s3", "s3a"):
            bucket, _, key = str(url.key).partition("/")
            by_bucket.setdefault(bucket, set()).add(key)
    aborted = 0
    for bucket, keys in by_bucket.items():
        fs = filesystem(URLPath("s3", PurePosixPath(bucket)))
        try:
            for upload in fs.list_multipart_uploads(bucket):
                if upload.get("Key") in keys:
                    fs.abort_mpu(bucket, upload["Key"], upload["UploadId"])
                    aborted += 1
        except Exception:  # best effort, see above
            continue
    return aborted


def list_audio(prefix: URLPath, recursive: bool, extensions: set[str]) -> list[URLPath]:
    """Objects under a prefix (or matching a glob) whose names have an audio extension.

    Raises:
        UsageError: the store cannot be listed.
    """
    fs = filesystem(prefix)
    text = str(prefix)
    try:
        if any(ch in text for ch in "*?["):
            names = fs.glob(text, maxdepth=None if recursive else 1)
        elif recursive:
            names = fs.find(text)
        else:
            names = [e["name"] for e in fs.ls(text, detail=True) if e.get("type") == "file"]
    except FileNotFoundError:
        return []
    except Exception as exc:
        raise UsageError(f"{prefix}: cannot list: {_reason(exc)}") from None
    found = []
    for name in sorted(names):
        key = str(name).split("://", 1)[-1]
        url = URLPath(prefix.scheme, PurePosixPath(key))
        hidden = any(part.startswith(".") for part in url.key.parts[1:])
        if not hidden and url.suffix.lower() in extensions:
            found.append(url)
    return found
