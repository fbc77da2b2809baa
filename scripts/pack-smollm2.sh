#!/usr/bin/env bash
# Packs SmolLM2-135M-Instruct (the GGUF from scripts/fetch-smollm2.sh) into
# www/models/smollm2-135m-instruct, the demo page's default model, with the native CLI
# (`webvlm convert` keeps the GGUF's Q4_1/Q8_0 blocks as they are). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
out=www/models/smollm2-135m-instruct
gguf=$(bash scripts/fetch-smollm2.sh)
if [ -f "$out/manifest.json" ] && [ "$out/manifest.json" -nt "$gguf" ] && [ "$out/manifest.json" -nt target/release/webvlm ]; then
  exit 0
fi
if [ ! -x target/release/webvlm ]; then
  echo "pack-smollm2: building the webvlm CLI (release)"
  cargo build --release --workspace --bins
fi
rm -rf "$out"
./target/release/webvlm convert --model "$(dirname "$gguf")" --out "$out" --quiet
echo "pack-smollm2: $out ($(du -sh "$out" | cut -f1))"
