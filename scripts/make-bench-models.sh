#!/usr/bin/env bash
# Real-size SmolVLM-256M / -500M and a Qwen2.5-1.5B decoder with random weights for benchmarks (random weights run exactly
# as fast as trained ones), made offline by transformers (tests/generator/make_bench_models.py;
# needs a Python with `pip install -r tests/generator/requirements.txt`, given as $PYTHON or
# found as python3) and packed by `webvlm convert` to q4, q8 and f16. Everything goes to
# ~/.cache/webvlm/bench (or $WEBVLM_BENCH_DIR): <name>/hf (bf16 Hugging Face layout) and
# <name>-<quant> (packed). Existing outputs are kept; a packed model older than its checkpoint
# is redone. Prints the packed directories. Needs target/release/webvlm (built if missing).
# Usage: scripts/make-bench-models.sh [smolvlm-256m,smolvlm-500m,qwen2.5-1.5b] [q4,q8,f16]
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-smolvlm-256m,smolvlm-500m}
quants=${2:-q4,q8,f16}
root=${WEBVLM_BENCH_DIR:-$HOME/.cache/webvlm/bench}
python=${PYTHON:-python3}
webvlm=./target/release/webvlm
if ! "$python" -c 'import torch, transformers' 2>/dev/null; then
  echo "make-bench-models: $python lacks torch/transformers; pip install -r tests/generator/requirements.txt and set PYTHON" >&2
  exit 1
fi
[ -x "$webvlm" ] || cargo build --release -p webvlm-cli

# SmolLM2's tokenizer.json, made from the cached GGUF by our own converter.
tok="$root/smollm2-tokenizer/tokenizer.json"
if [ ! -f "$tok" ]; then
  gguf=$(bash scripts/fetch-smollm2.sh)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  "$webvlm" convert --model "$(dirname "$gguf")" --out "$tmp/packed" --quiet
  mkdir -p "$(dirname "$tok")"
  cp "$tmp/packed/tokenizer.json" "$tok"
fi

SECONDS=0
(cd tests/generator && "$python" make_bench_models.py --tokenizer "$tok" --out "$root" --models "$models")
echo "make-bench-models: checkpoints ready in ${SECONDS} s" >&2
for m in ${models//,/ }; do
  hf="$root/$m/hf"
  for q in ${quants//,/ }; do
    out="$root/$m-$q"
    if [ ! "$out/manifest.json" -nt "$hf/model.safetensors" ]; then
      SECONDS=0
      rm -rf "$out.partial"
      "$webvlm" convert --model "$hf" --quant "$q" --out "$out.partial" --quiet
      rm -rf "$out"
      mv "$out.partial" "$out"
      echo "make-bench-models: $m $q converted in ${SECONDS} s" >&2
    fi
    echo "$out ($(du -sh "$out" | cut -f1))"
  done
done
