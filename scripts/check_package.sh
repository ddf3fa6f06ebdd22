#!/usr/bin/env bash
# Build the sdist and the wheel, check them, install the wheel into a fresh venv OUTSIDE the
# source tree and run the README's main job from there: a missing package-data file (presets,
# py.typed), a module left out of the wheel, or code that only works from the source tree fails
# here. Run by .ci/run after the tests; about 1-2 minutes (the venv install of torch dominates).
#
#   bash scripts/check_package.sh            # from the repository root, with build + twine
#                                            # installed (both are in the dev extra)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/audiofx-package.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "== build (sdist + wheel)"
python -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
ls -l "$work/dist"
echo "== twine check"
python -m twine check --strict "$work"/dist/*

wheel=("$work"/dist/*.whl)
echo "== contents"
python - "${wheel[0]}" <<'PY'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
need = ["audiofx_cli/py.typed", "audiofx_cli/presets/vocal.yaml", "audiofx_cli/cli/main.py"]
missing = [n for n in need if n not in names]
missing += [] if any(n.endswith("/licenses/LICENSE") for n in names) else ["LICENSE"]
presets = sorted(n for n in names if n.startswith("audiofx_cli/presets/"))
print(f"{len(names)} files, {len(presets)} presets")
sys.exit(f"missing from the wheel: {missing}" if missing else 0)
PY

echo "== install into a fresh venv outside the source tree"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "${wheel[0]}" >"$work/pip.log" 2>&1 || { cat "$work/pip.log"; exit 1; }
cd "$work"  # nothing of the source tree on sys.path from here on
"$work/venv/bin/python" - <<'PY'
import audiofx_cli, sys
where = audiofx_cli.__file__
print("imported from", where)
sys.exit(0 if "/venv/" in where else f"audiofx_cli imported from outside the venv: {where}")
PY
"$work/venv/bin/audiofx" --version
"$work/venv/bin/audiofx" stages >/dev/null
"$work/venv/bin/audiofx" validate vocal --sample-rate 48000 >/dev/null
cp "$root/examples/speech.wav" "$work/speech.wav"
"$work/venv/bin/audiofx" process speech.wav --chain vocal -o speech_vocal.wav -q
"$work/venv/bin/audiofx" info speech_vocal.wav --json >"$work/info.json"
python - "$work/info.json" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
info = info[0] if isinstance(info, list) else info
print("processed:", {k: info.get(k) for k in ("sample_rate", "channels", "frames", "subtype")})
PY
echo "package check: ok"
