#!/usr/bin/env bash
# The GPU rows of docs/performance.md in one call on a GPU machine: the cores on CUDA,
# the CUDA tests, and the actor-learner runtime with many actors and the learner on CUDA.
# It runs from the checkout without installing it (rtrl_rl/agents and rtrl_rl/envs are
# links to the top-level folders). With wheels in .whl/ (benchmarks/fetch_gpu_wheels.sh)
# it installs them first. The three steps are capped at 180 + 90 + 240 s:
#   bash benchmarks/gpu_check.sh
# Results (JSON and logs) go to $OUT, or ./gpu_results when OUT is unset. Each step has
# its own time limit, so one that hangs or fails still leaves the others' results.
set -u
OUT=${OUT:-gpu_results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=$PWD:/tmp/site
fi
{ date -u; nvidia-smi; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'; nproc; } \
  > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
timeout 180 python3 -m rtrl_rl bench cores --device cuda --json "$OUT/bench_cores_gpu.json" 2>&1 \
  | tee "$OUT/bench_cores_gpu.log"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cores_api.py tests/test_agent_learner.py -k cuda 2>&1 \
  | tee "$OUT/pytest_cuda.log"
timeout 240 python3 -m rtrl_rl bench runtime --actors 12 --num-envs 48 --device cuda --rounds 1 --seconds 20 \
  --json "$OUT/bench_runtime_gpu.json" 2>&1 | tee "$OUT/bench_runtime_gpu.log"
