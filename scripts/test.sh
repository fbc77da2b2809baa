#!/usr/bin/env bash
# Runs every test: Rust unit and parity tests on burn's CPU backend and on wgpu (lavapipe when
# there is no GPU), the CLI against the transformers goldens, and the wasm32 build of the core.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { echo; echo "== $1 ($(date +%T))"; }

step "wasm32 build of the model core and runtime"
cargo build --target wasm32-unknown-unknown -p webvlm-model -p webvlm-runtime --no-default-features

step "Rust tests (release; CPU + wgpu)"
cargo test --release --workspace
