#!/usr/bin/env bash
# The whole first-contact GPU check, in one script, for one CUDA GPU, in about 8 minutes:
#
#   bash benchmarks/gpu_check.sh OUTDIR [REFERENCE_CHECKOUT]
#
# OUTDIR receives results.jsonl (one JSON object per figure or part), summary.md, and each part's log.
# REFERENCE_CHECKOUT (optional): a checkout of the CUT repository or pytorch-CycleGAN-and-pix2pix (never
# committed here), whose own CycleGAN training step is timed beside ours.
#
# Parts (each runs under its own time limit; a failing part is recorded with the end of its log, traceback
# included, and the script goes on to the next):
#   1. pytest -m gpu (tests/test_gpu.py): every learned method's bf16 + channels_last + fused-Adam steps (and
#      torch.compile for CycleGAN and AU-GAN) against float32 CPU losses, odd-size translation, kill-and-resume
#      on CUDA, CUDA scoring equal to CPU scoring, --launcher local --jobs 2 on one GPU;
#   2. benchmarks/bench_training_throughput.py: CycleGAN and AU-GAN at 256x512, batches 1 and 8, fp32 and bf16,
#      eager and compiled, beside the reference CycleGAN when REFERENCE_CHECKOUT is given;
#   3. (run fourth) benchmarks/bench_feature_extraction.py: 4,000 PNGs at 256x512 against torch-fidelity's CLI on the same
#      GPU (substitute Inception weights unless GPU_CHECK_INCEPTION names the real file: speed does not depend on
#      the values, and the FIDs printed only show that both sides computed the same number);
#   4. (run third) bench run --preset quick --methods identity,cyclegan,augan --device cuda, end to end, timed (part bench_run).
#
# GPU_CHECK_DRY=1 rehearses the script on the CPU at toy sizes (a few tests, tiny benchmarks, a smoke run): it
# checks the script and its records, not a GPU; tests/test_gpu_check.py runs it so.
#
# Environment: PYTHON (default python3) must hold torch with CUDA. The project runs from this checkout
# (PYTHONPATH), so it need not be installed; where torch-fidelity, lpips or submitit are missing and no package
# index is reachable, GPU_CHECK_WHEELS=DIR installs the wheels in DIR into a temporary folder first.
set -u
OUT=${1:?usage: bash benchmarks/gpu_check.sh OUTDIR [REFERENCE_CHECKOUT]}
REF=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$ROOT" || exit 1
export PYTHONUNBUFFERED=1 PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AUGAN_BENCH_OFFLINE=1 AUGAN_BENCH_CACHE="$OUT/.cache" AUGAN_BENCH_GPU_OUT="$OUT"
if [ -n "${GPU_CHECK_WHEELS:-}" ]; then
  SITE=$(mktemp -d)
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$GPU_CHECK_WHEELS"/*.whl \
    && export PYTHONPATH="$PYTHONPATH:$SITE"
fi
: > "$OUT/results.jsonl"
STARTED=$(date +%s)

# part NAME LIMIT_S COMMAND...: run, time, record status and (on failure) the log's end.
part() {
  local name=$1 limit=$2; shift 2
  local log="$OUT/$name.log" t0 rc
  echo "== $name (limit ${limit}s): $*"
  t0=$(date +%s%N)
  timeout --signal=INT --kill-after=15 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  local secs="$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  grep -h '^{' "$log" | "$PYTHON" -c '
import json, sys
for line in sys.stdin:
    try:
        row = json.loads(line)
    except ValueError:
        continue
    print(json.dumps({"part": sys.argv[1], **row}))' "$name" >> "$OUT/results.jsonl"
  "$PYTHON" - "$name" "$rc" "$secs" "$log" >> "$OUT/results.jsonl" <<'EOF'
import json, sys
name, rc, secs, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
status = "ok" if rc == 0 else ("timed out" if rc in (124, 137) else "failed")
row = {"part": name, "status": status, "exit": rc, "seconds": round(secs, 1), "log": log}
if rc != 0:
    row["log_tail"] = open(log, errors="replace").read()[-4000:]
print(json.dumps(row))
EOF
  echo "   $name: exit $rc after ${secs}s"
}

if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
  DEV=cpu; export AUGAN_BENCH_GPU_DEVICE=cpu
  TESTS=(-k "translate and (cyclegan or zero)"); SIZE=64x128; BATCHES=1; PRECISIONS=fp32; STEPS=(--steps 2 --warmup 1)
  METHODS=cyclegan; COMPILE=(); N=40; RUN=(--preset smoke --methods identity --suite synthetic-night)
  FEATURES_LIMIT=240  # on 2 CPU cores the benchmark first renders the quick suite (about a minute)
  "$PYTHON" -c 'import torch; print(torch.__version__, "CPU rehearsal (GPU_CHECK_DRY=1)")' > "$OUT/device.txt" 2>&1
else
  DEV=cuda
  TESTS=(); SIZE=256x512; BATCHES=1,8; PRECISIONS=fp32,bf16; STEPS=(--steps 30 --warmup 10)
  METHODS=cyclegan,augan; COMPILE=(--compile); N=4000; RUN=(--preset quick --methods identity,cyclegan,augan)
  FEATURES_LIMIT=90
  "$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "torch sees no CUDA GPU"; print(torch.__version__, torch.cuda.get_device_name())' \
    > "$OUT/device.txt" 2>&1 || { cat "$OUT/device.txt"; echo "no CUDA: nothing to check"; exit 2; }
  nvidia-smi >> "$OUT/device.txt" 2>&1 || true
fi

# Time limits add up to 8 minutes. The end-to-end run comes before the feature benchmark: it renders the suite
# that the benchmark's images come from, into the cache both use.
part gpu_tests 140 "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py "${TESTS[@]}" \
  --junitxml="$OUT/gpu_tests.xml"
if [ -f "$OUT/gpu_tests.jsonl" ]; then
  sed 's/^{/{"part": "gpu_tests_figures", /' "$OUT/gpu_tests.jsonl" >> "$OUT/results.jsonl"
fi
THROUGHPUT=("$PYTHON" benchmarks/bench_training_throughput.py --device "$DEV" --size "$SIZE" --batches "$BATCHES"
            --precisions "$PRECISIONS" --methods "$METHODS" "${COMPILE[@]}" "${STEPS[@]}")
[ -n "$REF" ] && THROUGHPUT+=(--reference "$REF")
part training_throughput 140 "${THROUGHPUT[@]}"
part bench_run 110 "$PYTHON" -m bench.cli run "${RUN[@]}" --device "$DEV" --out "$OUT/results-run"
FEATURES=("$PYTHON" benchmarks/bench_feature_extraction.py --n "$N" --size "$SIZE" --device "$DEV" --batch-size 100)
[ -n "${GPU_CHECK_INCEPTION:-}" ] && FEATURES+=(--weights "$GPU_CHECK_INCEPTION")
part feature_extraction "$FEATURES_LIMIT" "${FEATURES[@]}"

"$PYTHON" - "$OUT" "$(( $(date +%s) - STARTED ))" <<'EOF' > "$OUT/summary.md"
import json, sys
from pathlib import Path
out, total = Path(sys.argv[1]), sys.argv[2]
rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
print(f"# GPU check\n\n{(out / 'device.txt').read_text().splitlines()[0]}; total {total} s\n")
print("| part | status | seconds |\n|---|---|---|")
for r in rows:
    if "status" in r:
        print(f"| {r['part']} | {r['status']} (exit {r['exit']}) | {r['seconds']} |")
for r in rows:
    if r.get("status") not in (None, "ok"):
        print(f"\n## {r['part']}: {r['status']}\n\n```\n{r['log_tail'][-2500:]}\n```")
figures = [r for r in rows if "status" not in r]
if figures:
    print("\n## Figures (results.jsonl)\n")
    for r in figures:
        print(f"- `{json.dumps(r)[:400]}`")
for name in ("training_throughput", "bench_run", "feature_extraction"):
    log = out / f"{name}.log"
    if log.is_file():
        tail = [ln for ln in log.read_text(errors="replace").splitlines() if "%|" not in ln and (ln.startswith("|") or "speed-up" in ln
                or "img/s" in ln or ln.startswith("finished"))]
        if tail:
            print(f"\n## {name}\n\n" + "\n".join(tail[-40:]))
EOF
cat "$OUT/summary.md"
