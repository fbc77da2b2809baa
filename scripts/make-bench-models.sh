#!/usr/bin/env bash
# Real-size SmolVLM-256M / -500M with random weights for benchmarks (random weights run exactly
# as fast as trained ones), made offline by transformers (tests/generator/make_bench_models.py,
# torch needed: pip install -r tests/generator/requirements.txt) and packed by `webvlm convert`
# to q4, q8 and f16. Everything goes to ~/.cache/webvlm/bench (or $WEBVLM_BENCH_DIR); existing
# outputs are kept. Usage: scripts/make-bench-models.sh [smolvlm-256m,smolvlm-500m] [q4,q8,f16]
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-smolvlm-256m,smolvlm-500m}
quants=${2:-q4,q8,f16}
root=${WEBVLM_BENCH_DIR:-$HOME/.cache/webvlm/bench}
python=${PYTHON:-python3}
[ -x target/release/webvlm ] || cargo build --release --workspace --bins

# SmolLM2's tokenizer.json, made from the cached GGUF by our own converter.
tok="$root/smollm2-tokenizer/tokenizer.json"
if [ ! -f "$tok" ]; then
  gguf=$(bash scripts/fetch-smollm2.sh)
  tmp=$(mktemp -d)
  ./target/release/webvlm convert --model "$(dirname "$gguf")" --out "$tmp/packed" --quiet
  mkdir -p "$(dirname "$tok")"
  cp "$tmp/packed/tokenizer.json" "$tok"
  rm -rf "$tmp"
fi

(cd tests/generator && "$python" make_bench_models.py --tokenizer "$tok" --out "$root" --models "$models")
for m in ${models//,/ }; do
  for q in ${quants//,/ }; do
    out="$root/$m-$q"
    if [ ! -f "$out/manifest.json" ]; then
      ./target/release/webvlm convert --model "$root/$m/hf" --quant "$q" --out "$out" --quiet
    fi
    echo "$out ($(du -sh "$out" | cut -f1))"
  done
done
