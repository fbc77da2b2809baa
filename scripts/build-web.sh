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
wasm=web/dist/wasm/webvlm_wasm_bg.wasm
raw=$(stat -c %s "$wasm")
# binaryen's optimiser (npm `binaryen`, a dev dependency; Debian's binaryen 108 breaks the
# externref tables wasm-bindgen emits): -O1 takes the module from 33.9 to 21.7 MB (brotli 3.7 →
# 2.8 MB) in about 2 minutes on 2 cores; -O2 is no smaller and twice as slow. The features are
# the ones rustc enables for wasm32-unknown-unknown. WEBVLM_WASM_OPT=0 skips it (quick rebuilds
# while developing).
if [ "${WEBVLM_WASM_OPT:-1}" != 0 ]; then
  node node_modules/binaryen/bin/wasm-opt -O1 --enable-reference-types --enable-bulk-memory \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
fi
(cd web && ../node_modules/.bin/tsc -p .)
node -e '
const fs = require("fs"), z = require("zlib");
const b = fs.readFileSync(process.argv[1]), mb = (n) => (n / 1e6).toFixed(2) + " MB";
const br = z.brotliCompressSync(b, { params: { [z.constants.BROTLI_PARAM_QUALITY]: 11, [z.constants.BROTLI_PARAM_SIZE_HINT]: b.length } });
console.log(`web/dist: wasm ${mb(b.length)} (${mb(+process.argv[2])} before wasm-opt), gzip ${mb(z.gzipSync(b, { level: 9 }).length)}, brotli ${mb(br.length)}`);
' "$wasm" "$raw"
