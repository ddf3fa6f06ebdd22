#!/usr/bin/env bash
# GPU readiness check for audiofx, for the day a machine with an NVIDIA GPU is at hand.
#
# From the repository root, in the environment of `pip install '.[dev]'`:
#
#     bash scripts/gpu_check.sh [OUT_DIR]        # OUT_DIR default: gpu-check-YYYYmmdd-HHMMSS
#
# 1. checks that torch sees a CUDA device; without one it stops at once (exit 3), before any
#    folder is made or anything is run;
# 2. runs the tests marked `gpu` with AUDIOFX_REQUIRE_GPU=1 (a skip is an error there): every
#    registered stage on cuda equal to cpu within its tolerance, chunked == whole on cuda,
#    feature axes from the device, files through the engine, `--device auto` picking cuda,
#    `--jobs 2` sharing one GPU (tests/test_gpu.py);
# 3. runs `audiofx bench --device cpu,cuda` on the iir, fir and api suites at 8 ch x 60 s
#    (backends audiofx, scipy, scipy-sos, scipy-oa; 3 timed runs after 1 warm-up).
#
# Everything goes to OUT_DIR: env.txt (GPU, driver, torch, commit, load), tests.log and
# tests.xml (JUnit), bench.txt and bench.csv, summary.txt (one line per step). Step 3 runs even
# when step 2 fails, so one session on a GPU machine brings back both. Each step has a time
# limit (timeout); the whole check stays under 5 minutes.
#
# Exit codes: 0 every step passed; 2 usage (OUT_DIR exists and is not empty); 3 no CUDA here
# (nothing was run); 4 python or torch cannot be imported; 1 a step failed or ran out of time
# (summary.txt and the step's log say which).
#
# For checking this script where there is no GPU: GPU_CHECK_ON_CPU=1 runs the same steps on the
# CPU (tests with AUDIOFX_GPU_TEST_DEVICE=cpu, bench --device cpu); GPU_CHECK_PYTEST_ARGS (tests
# to run, default: tests), GPU_CHECK_CHANNELS / GPU_CHECK_SECONDS / GPU_CHECK_REPEAT size the
# bench. tests/test_gpu_check.py uses them; a real check needs none of them.
set -euo pipefail

OUT="${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}"
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac  # relative to where the check was started
cd "$(dirname "$0")/.."  # the repository root: pytest and `python -m audiofx_cli` run from here
PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
ON_CPU="${GPU_CHECK_ON_CPU:-0}"
CHANNELS="${GPU_CHECK_CHANNELS:-8}"
SECONDS_OF_AUDIO="${GPU_CHECK_SECONDS:-60}"
REPEAT="${GPU_CHECK_REPEAT:-3}"
PYTEST_ARGS="${GPU_CHECK_PYTEST_ARGS:-tests}"
CHECK_LIMIT_S=60    # torch import and CUDA start-up
TESTS_LIMIT_S=150   # the gpu tests (collection of the whole suite included)
BENCH_LIMIT_S=90    # the bench (scipy's references and lfilter rows dominate)

say() { echo "gpu_check: $*" >&2; }

if [ "$#" -gt 1 ]; then
  say "usage: bash scripts/gpu_check.sh [OUT_DIR]"
  exit 2
fi
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
  say "$OUT exists and is not empty; give a new folder so results of two runs never mix"
  exit 2
fi
if [ -z "$PYTHON" ]; then
  say "no python on PATH (activate the environment where audiofx-cli[dev] is installed)"
  exit 4
fi

# 1. CUDA, before anything is made or run
if [ "$ON_CPU" = 1 ]; then
  DEVICES=cpu
  TEST_DEVICE=cpu
  say "GPU_CHECK_ON_CPU=1: checking this script's steps on the CPU (not a GPU check)"
else
  DEVICES=cpu,cuda
  TEST_DEVICE=cuda
  set +e
  CUDA_INFO="$(timeout --kill-after=10 "$CHECK_LIMIT_S" "$PYTHON" -c '
import sys
try:
    import torch
except Exception as exc:
    print(f"torch cannot be imported: {exc}")
    sys.exit(4)
if not torch.cuda.is_available():
    print(f"torch {torch.__version__} (CUDA build {torch.version.cuda}) sees no CUDA device")
    sys.exit(3)
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"{torch.cuda.device_count()} device(s), cuda:0 = {torch.cuda.get_device_name(0)}")
' 2>&1)"
  CODE=$?
  set -e
  if [ "$CODE" = 3 ]; then
    say "CUDA is not available here: ${CUDA_INFO}; nothing was run"
    exit 3
  elif [ "$CODE" != 0 ]; then
    say "cannot check CUDA (exit $CODE): ${CUDA_INFO:-no output}; nothing was run"
    exit 4
  fi
  say "$CUDA_INFO"
fi

mkdir -p "$OUT"
say "results go to $OUT"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -a)"
  echo "cores: $(nproc)"
  echo "load: $(uptime)"
  echo "commit: $(git rev-parse HEAD 2>/dev/null || echo unknown)"
  echo "local changes: $(git status --porcelain 2>/dev/null | wc -l) file(s)"
  echo "python: $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m audiofx_cli --version 2>&1 || true
  if [ "$ON_CPU" != 1 ]; then
    echo "torch: $CUDA_INFO"
    nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  fi
} > "$OUT/env.txt"

STATUS=0
record() {  # step name, exit code, seconds
  local result=passed
  if [ "$2" = 124 ] || [ "$2" = 137 ]; then
    result="ran out of time"
    STATUS=1
  elif [ "$2" != 0 ]; then
    result="failed (exit $2)"
    STATUS=1
  fi
  echo "$1: $result in $3 s" | tee -a "$OUT/summary.txt" >&2
}

# 2. the gpu tests
say "step 2: gpu tests (at most ${TESTS_LIMIT_S} s) -> tests.log"
START=$SECONDS
set +e
# shellcheck disable=SC2086  # PYTEST_ARGS is a list of words
AUDIOFX_REQUIRE_GPU=1 AUDIOFX_GPU_TEST_DEVICE="$TEST_DEVICE" \
  timeout --kill-after=10 "$TESTS_LIMIT_S" "$PYTHON" -m pytest -m gpu -p no:cacheprovider -rs \
  --junitxml="$OUT/tests.xml" $PYTEST_ARGS > "$OUT/tests.log" 2>&1
CODE=$?
set -e
tail -n 15 "$OUT/tests.log" >&2
if [ "$CODE" = 0 ] && [ "$ON_CPU" != 1 ] && grep -q 'skipped="[1-9]' "$OUT/tests.xml"; then
  say "some gpu tests were skipped on a GPU machine: see tests.log"
  CODE=1
fi
record "gpu tests" "$CODE" "$((SECONDS - START))"

# 3. the bench, cpu and cuda side by side
say "step 3: bench --device $DEVICES, ${CHANNELS} ch x ${SECONDS_OF_AUDIO} s (at most ${BENCH_LIMIT_S} s) -> bench.txt, bench.csv"
START=$SECONDS
set +e
COLUMNS=200 timeout --kill-after=10 "$BENCH_LIMIT_S" "$PYTHON" -m audiofx_cli bench \
  --suite iir,fir,api --device "$DEVICES" --channels "$CHANNELS" --duration "$SECONDS_OF_AUDIO" \
  --backends audiofx,scipy,scipy-sos,scipy-oa --repeat "$REPEAT" --warmup 1 --no-progress \
  --csv "$OUT/bench.csv" > "$OUT/bench.txt" 2>&1
CODE=$?
set -e
cat "$OUT/bench.txt" >&2
record "bench" "$CODE" "$((SECONDS - START))"

if [ "$STATUS" = 0 ]; then
  say "all steps passed; results in $OUT"
else
  say "a step failed; results in $OUT (summary.txt)"
fi
exit "$STATUS"
