"""Finding a batch's inputs: files, folders (optionally recursive) and quoted globs.

Inside folders and globs, audio files are the ones libsndfile can open (a header probe), plus
files with an audio extension (a fake or broken "x.wav" then fails with a reason in the report
instead of vanishing). Files named explicitly are always taken; one that is not a regular file (a
FIFO, a device) then fails with its reason, it is never opened for probing. Torch-free.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import soundfile as sf

from audiofx_cli.errors import AudiofxError, UsageError
from audiofx_cli.io.audio import AudioReader
from audiofx_cli.io.temp import TEMP_SUFFIX
from audiofx_cli.io.urls import Location, URLPath, is_url, list_audio, location

# Files with these names are taken even when libsndfile cannot open them, so a broken or fake
# "x.wav" gets a reason in the report instead of vanishing from the batch.
AUDIO_EXTENSIONS = {
    ".wav",
    ".wave",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".aifc",
    ".w64",
    ".rf64",
    ".caf",
    ".au",
    ".snd",
}


@dataclass(frozen=True)
class InputFile:
    """One input and where it sits relative to the folder or glob base it was found under."""

    path: Location  # a local Path, or a URLPath for an object in a store
    relative: PurePosixPath | Path  # mirrors into --out-dir
    explicit: bool  # named on the command line (not found by a scan)

    @property
    def key(self) -> str:
        """Stable identity used for sharding: the relative path with '/' separators."""
        return self.relative.as_posix()


def is_audio(path: Path) -> bool:
    """Whether libsndfile can open the file (its header, not its name, decides)."""
    try:
        sf.info(str(path))
    except Exception:
        return False
    return True


def duration_s(path: Path) -> float:
    """The duration libsndfile reads in the header of a regular file; 0 for anything else (a
    FIFO or device named as an input is never opened here: it fails with its reason when
    processed)."""
    try:
        with AudioReader(path) as reader:
            return reader.info.duration_s
    except AudiofxError:
        return 0.0


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(TEMP_SUFFIX)


def _in_hidden_folder(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts[:-1])


def _scan(paths: list[Path], base: Path) -> list[InputFile]:
    found = []
    for path in sorted(paths):
        if not path.is_file() or _hidden(path):
            continue
        if path.suffix.lower() in AUDIO_EXTENSIONS or is_audio(path):
            found.append(InputFile(path, path.relative_to(base), explicit=False))
    return found


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def discover(inputs: list[str], recursive: bool = False) -> list[InputFile]:
    """Expand command-line inputs into a sorted, de-duplicated list of files.

    Raises:
        UsageError: an input that does not exist and is not a glob, or a glob or folder with no
            audio files in it.
    """
    items: list[InputFile] = []
    for raw in inputs:
        if is_url(raw):
            items += _discover_url(raw, recursive)
            continue
        path = Path(raw)
        if path.is_dir():
            walker = path.rglob("*") if recursive else path.glob("*")
            visible = [p for p in walker if not _in_hidden_folder(p.relative_to(path))]
            found = _scan(visible, path)
            if not found:
                hint = "" if recursive else " (use --recursive for sub-folders)"
                raise UsageError(f"{raw}: no audio files in this folder{hint}")
            items += found
        elif glob.has_magic(raw):
            matches = [Path(p) for p in glob.glob(raw, recursive=recursive)]
            found = _scan(matches, _glob_base(raw))
            if not found:
                raise UsageError(f"{raw}: no audio files match this pattern")
            items += found
        elif path.exists() or path.is_symlink():
            items.append(InputFile(path, Path(path.name), explicit=True))
        else:
            raise UsageError(f"{raw}: no such file or folder")
    unique: dict[str, InputFile] = {}
    for item in items:
        identity = str(item.path) if isinstance(item.path, URLPath) else os.path.abspath(item.path)
        unique.setdefault(identity, item)
    return sorted(unique.values(), key=lambda item: (item.key, str(item.path)))


def _discover_url(raw: str, recursive: bool) -> list[InputFile]:
    """Objects under a URL prefix or glob, by extension (no header probing over the network);
    a URL naming one object is taken as it is."""
    url = location(raw)
    assert isinstance(url, URLPath)
    magic = glob.has_magic(raw)
    if not magic and url.suffix.lower() in AUDIO_EXTENSIONS:
        return [InputFile(url, PurePosixPath(url.name), explicit=True)]
    found = list_audio(url, recursive, AUDIO_EXTENSIONS)
    base = url if not magic else _url_glob_base(url)
    if not found:
        hint = "" if recursive or magic else " (use --recursive for sub-folders)"
        raise UsageError(f"{raw}: no audio objects under this prefix{hint}")
    return [InputFile(u, u.relative_to(base), explicit=False) for u in found]


def _url_glob_base(url: URLPath) -> URLPath:
    fixed: list[str] = []
    for part in url.key.parts:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return URLPath(url.scheme, PurePosixPath(*fixed))


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N.

    Raises:
        UsageError: malformed shard.
    """
    try:
        k_text, n_text = text.split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        raise UsageError(f"--shard must be K/N (e.g. 3/16), got '{text}'") from None
    if not (n >= 1 and 1 <= k <= n):
        raise UsageError(f"--shard K/N needs 1 <= K <= N, got '{text}'")
    return k, n


def shard_of(key: str, n: int) -> int:
    """1-based shard of an input: a hash of its relative path, so every machine computes the
    same split with no coordination, and adding files to a corpus never moves old ones."""
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select_shard(items: list[InputFile], k: int, n: int) -> list[InputFile]:
    return [item for item in items if shard_of(item.key, n) == k]
