#!/usr/bin/env bash
# Download, into .whl/ (git-ignored), wheels for a GPU machine that has a CUDA torch on
# Python 3.12 but no gymnasium or ale-py and no package index. Run in the repository root:
#   bash benchmarks/fetch_gpu_wheels.sh
set -euo pipefail
versions=$(python3 -c 'import gymnasium, ale_py; print(gymnasium.__version__, ale_py.__version__)')
read -r gym_version ale_version <<<"$versions"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$p")
done
rm -rf .whl && mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl "gymnasium==$gym_version" "ale-py==$ale_version" farama-notifications
ls -l .whl
