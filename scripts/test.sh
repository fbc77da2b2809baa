#!/usr/bin/env bash
# Runs every test: Rust unit and parity tests on burn's CPU backend and on wgpu (lavapipe when
# there is no GPU) against the transformers and llama.cpp goldens, the CLI, the npm package's
# Node tests, and the browser tests (Debian's Chromium, WebGPU on SwiftShader, playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { echo; echo "== $1 ($(date +%T))"; }

step "npm package: wasm engine (release, wasm32) + TypeScript"
bash scripts/build-web.sh

step "Node tests (server, protocol, demo helpers)"
node --test tests/browser/*.node.test.mjs

step "Rust tests (release; CPU + wgpu)"
cargo test --release --workspace

step "Default model: SmolLM2-135M-Instruct packed for the demo"
bash scripts/pack-smollm2.sh

step "Browser tests (Chromium + SwiftShader WebGPU)"
node --test --test-concurrency=1 tests/browser/runtime.test.mjs tests/browser/families.test.mjs tests/browser/vite.test.mjs tests/browser/bench.test.mjs tests/browser/bounded.test.mjs
