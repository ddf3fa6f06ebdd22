"""Rebuild torchfx's CPU extension against the installed torch, so `audiofx bench` can time it.

    pip install --no-deps torchfx==0.8.0 ninja
    python scripts/build_torchfx_ext.py            # about 2 minutes
    audiofx bench --suite iir --channels 8 --duration 60 --backends audiofx,scipy,torchfx

torchfx is not an audiofx dependency; the bench compares against it when it is installed. Its
PyPI wheel ships a compiled `torchfx_ext` built for another torch: against torch 2.14.1 every
filter call fails with "CUDA extension not compiled; move tensors to CPU" (the ABI differs, so
the extension misreads the tensor's device), and the bench skips torchfx with that note.
torchfx's wheel also ships the extension's C++ sources (`torchfx/_csrc`); this script compiles
the CPU part with torch.utils.cpp_extension (`-O3 -march=native`, no CUDA), as the issue's
torchfx figures were obtained, and puts the result in place of the packaged one, keeping that
as `<name>.orig` (run again with --restore to put it back). It changes only the installed
torchfx package.
"""

from __future__ import annotations

import argparse
import glob
import shutil
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--restore", action="store_true", help="put the packaged build back")
    args = parser.parse_args()
    try:
        import torchfx
    except Exception as exc:  # not installed, or not importable at all
        print(f"import torchfx failed ({exc}); pip install --no-deps torchfx==0.8.0 first")
        return 1
    package = Path(torchfx.__file__).parent
    packaged = sorted(package.glob("torchfx_ext*.so"))
    if len(packaged) != 1:
        print(f"expected one torchfx_ext*.so in {package}, found {len(packaged)}")
        return 1
    target, backup = packaged[0], packaged[0].with_name(packaged[0].name + ".orig")
    if args.restore:
        if not backup.exists():
            print(f"no {backup.name} to restore")
            return 1
        shutil.move(backup, target)
        print(f"restored {target}")
        return 0
    from torch.utils import cpp_extension

    csrc = package / "_csrc"
    sources = [str(csrc / "binding.cpp"), *sorted(glob.glob(str(csrc / "cpu" / "*.cpp")))]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as build:
        module = cpp_extension.load(
            name="torchfx_ext",
            sources=sources,
            extra_include_paths=[str(csrc / "include")],
            extra_cflags=["-O3", "-march=native"],
            build_directory=build,
        )
        if not backup.exists():
            shutil.copy2(target, backup)
        shutil.copy2(module.__file__, target)
    print(f"built {target.name} in {time.perf_counter() - start:.0f} s (packaged one: {backup})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
