#!/usr/bin/env bash
# benchmarks/gpu_check.sh OUTDIR [flags of benchmarks/gpu_check.py]: the GPU check, from the project root.
# On the device tool:  run(command="PYTHONUNBUFFERED=1 bash benchmarks/gpu_check.sh $OUT", carry=[".gpudata"],
#                          timeout_s=600)   -- see docs/performance.md, "On a GPU machine".
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
exec python3 benchmarks/gpu_check.py "$@"
