#!/usr/bin/env bash
# Builds webvlm and answers a question about the bundled fixture image natively on wgpu.
# (The browser demo page arrives with the web package; see README.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p webvlm-cli
fx=tests/fixtures/smolvlm-tiny-split
./target/release/webvlm info --model "$fx/model"
echo "Q: What is in this image? ($fx/image.png, random-weight fixture: the answer is gibberish by design)"
./target/release/webvlm run --model "$fx/model" --image "$fx/image.png" --prompt "What is in this image?" --max-new-tokens 20
