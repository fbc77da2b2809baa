#!/usr/bin/env bash
# Builds the npm package in web/dist: the wasm engine (release, wasm32), its wasm-bindgen glue
# in web/dist/wasm, and the TypeScript (ESM + .d.ts). wasm-bindgen-cli must match the
# wasm-bindgen version in Cargo.lock (scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-unknown-unknown -p webvlm-wasm
rm -rf web/dist
mkdir -p web/dist/wasm
wasm-bindgen --target web --out-dir web/dist/wasm --out-name webvlm_wasm \
  target/wasm32-unknown-unknown/release/webvlm_wasm.wasm
(cd web && ../node_modules/.bin/tsc -p .)
echo "web/dist: $(du -sh web/dist | cut -f1) ($(du -h web/dist/wasm/webvlm_wasm_bg.wasm | cut -f1) wasm)"
