#!/usr/bin/env bash
# Prepare what the GPU check needs on a machine without network, in .gpu_carry/ (ignored by git):
#   .gpu_carry/whl    wheels of the libraries the GPU machine lacks (Python 3.12, manylinux x86-64)
#   .gpu_carry/cache  the trained full-profile models and the tokenizer (BENCH_CACHE_DIR there)
#   .gpu_carry/data   MNIST and the IMDB test split (BENCH_DATA_DIR there)
# then prints the size: one device call carries 64 MiB at most. The IMDB train split (20 MB) does
# not fit beside the rest: text explanation-by-example cells fail there (failures.csv) unless a
# call carries it instead of something else.
#
# On the GPU machine (one command, `.gpu_carry` carried):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .gpu_carry/whl/*.whl &&
#   PYTHONPATH=/tmp/site python3 scripts/gpu_check.py --device cuda --out $OUT --budget-s 480
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
CACHE=${BENCH_CACHE_DIR:-$HOME/.cache/explainbench}
DATA=${BENCH_DATA_DIR:-../shared/data}
mkdir -p "$CARRY/whl" "$CARRY/cache/models" "$CARRY/data/mnist" "$CARRY/data/imdb"
grep -qx '/.gpu_carry/' .git/info/exclude 2>/dev/null || echo '/.gpu_carry/' >> .git/info/exclude
# the versions this checkout is tested with (those installed here), for CPython 3.12 x86-64
PY=${PYTHON:-python3}
versions=$($PY -c "
import importlib.metadata as m
print(' '.join(f'{p}=={m.version(p)}' for p in ('captum', 'shap', 'slicer', 'cloudpickle',
                                           'pytest', 'pluggy', 'iniconfig', 'packaging')))")
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$CARRY/whl" $versions
# lime and anchor-exp are sdists: build wheels of them here (pure Python)
$PY -m pip wheel -q --no-deps -w "$CARRY/whl" lime==0.2.0.1 anchor-exp==0.0.2.0
for model in mnist_cnn mnist_logreg imdb_transformer imdb_lstm; do
  src=$(ls -d "$CACHE/models/$model"/full-* 2>/dev/null | grep -v '\.lock$' | head -1)
  [ -n "$src" ] && mkdir -p "$CARRY/cache/models/$model" && cp -r "$src" "$CARRY/cache/models/$model/"
done
cp -r "$CACHE/tokenizers" "$CARRY/cache/"
cp "$DATA"/mnist/* "$CARRY/data/mnist/"
cp "$DATA/imdb/test.parquet" "$CARRY/data/imdb/"
cp "$DATA/SHA256SUMS" "$CARRY/data/" 2>/dev/null || true
du -sh "$CARRY" && du -sh "$CARRY"/*
