#!/usr/bin/env bash
# Sets up, builds the npm package (wasm engine + TypeScript) and serves the demo page on
# http://127.0.0.1:8080/ with the bundled fixture model (random weights: gibberish by design).
# Real models: `webvlm convert --model DIR --quant q4 --out www/models/NAME`, then load
# /models/NAME/ from the page's URL field.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-web.sh
mkdir -p www/models
exec node scripts/serve.mjs --port "${PORT:-8080}" --models tests/fixtures/packed --models www/models
