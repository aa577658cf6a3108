#!/usr/bin/env bash
# Run on the GPU machine (its Python 3.12 with JAX), from the repository root, after
# scripts/gpu_kit.sh filled .gpu-kit/ here and `carry` took it along: installs the kit's wheels,
# then runs `newstopic benchmark` with no backend or device flag, as a user would, and leaves
# its results.json, report.md and log in $OUT. Arguments are passed on to the benchmark
# (default: --preset all). The benchmark is stopped after GPU_BENCHMARK_SECONDS (default 540,
# inside the device command's 600) so that what it finished still comes back; run the script
# again on the same machine and it goes on with `--resume`.
set -euo pipefail
OUT=${OUT:?gpu_benchmark.sh: set OUT to the folder the results go to}
RUN=${GPU_BENCHMARK_RUN:-/tmp/gpu-benchmark}
nvidia-smi -L || echo "gpu_benchmark.sh: no nvidia-smi: the run below shows which device it got"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu-kit/whl/*.whl
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1
[ $# -gt 0 ] || set -- --preset all
[ -f "$RUN/results.json" ] && set -- "$@" --resume
status=0
timeout "${GPU_BENCHMARK_SECONDS:-540}" python3 -m newstopic benchmark \
    --data .gpu-kit/data/20news-bydate.tar.gz --out "$RUN" --quiet "$@" 2>&1 \
    | tee -a "$OUT/benchmark.log" || status=$?
cp "$RUN"/results.json "$RUN"/report.md "$OUT"/ 2>/dev/null || true
[ "$status" -ne 124 ] || echo "gpu_benchmark.sh: stopped after ${GPU_BENCHMARK_SECONDS:-540} s:" \
    "run it again to go on" | tee -a "$OUT/benchmark.log"
exit "$status"
