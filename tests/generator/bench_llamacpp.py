#!/usr/bin/env python3
"""llama.cpp's prefill and decode speed on SmolLM2-135M-Instruct (Q4_1 GGUF), the baseline webvlm's
own text-decoder timings are compared with.

For each prompt (by default conversation 0, `one_line_question`, and the ~200-token
`summarise_paragraph`, both from make_llamacpp_goldens.py, rendered with the GGUF's chat template)
and each of `--repeats` runs:

* prefill: `llm.reset()` then one `llm.eval(prompt_ids)` (n_batch 512, so one llama_decode call);
  tokens/s = prompt length / wall time;
* decode: 32 greedy tokens, each one `llm.eval([tok])` followed by reading the last logits and
  taking the argmax; tokens/s = 32 / wall time.

One untimed warm-up run per prompt comes first. The 1-minute load average before and after is
recorded too: with other jobs on the cores, ggml's spinning worker threads slow down by 10x or
more, so compare only runs taken on an idle machine. Prints one JSON object on stdout: the settings,
llama.cpp's system info, and per prompt the median and every run. Run (same venv as
make_llamacpp_goldens.py, see requirements-llamacpp.txt):

    python tests/generator/bench_llamacpp.py --gguf path/to/SmolLM2-135M-Instruct.Q4_1.gguf \\
        [--threads 2] [--repeats 5] [--gpu-layers 0] [--prompts one_line_question summarise_paragraph]

`--gpu-layers -1` offloads every layer, for a llama-cpp-python built with a GPU backend
(e.g. CMAKE_ARGS="-DGGML_VULKAN=on").
"""

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

import llama_cpp
from llama_cpp import Llama

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_llamacpp_goldens import CONVERSATIONS, build_info, last_logits, render_chat, token_text  # noqa: E402

DECODE_STEPS = 32


def run_once(llm, prompt_ids, steps=DECODE_STEPS, out_ids=None):
    """One timed prefill + `steps` greedy decode steps; the greedy ids go to `out_ids` if given."""
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt_ids)
    logits = last_logits(llm)
    t1 = time.perf_counter()
    for _ in range(steps):
        tok = int(np.argmax(logits))
        if out_ids is not None:
            out_ids.append(tok)
        llm.eval([tok])
        logits = last_logits(llm)
    t2 = time.perf_counter()
    return {
        "prefill_s": t1 - t0,
        "prefill_tok_s": len(prompt_ids) / (t1 - t0),
        "decode_s": t2 - t1,
        "decode_tok_s": steps / (t2 - t1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--gpu-layers", type=int, default=0, help="n_gpu_layers; -1 = all")
    ap.add_argument("--prompts", nargs="+", default=["one_line_question", "summarise_paragraph"],
                    help="conversation names from make_llamacpp_goldens.CONVERSATIONS")
    args = ap.parse_args()

    llm = Llama(
        model_path=args.gguf, n_ctx=2048, n_threads=args.threads, n_threads_batch=args.threads,
        n_batch=512, n_gpu_layers=args.gpu_layers, logits_all=False, verbose=False, seed=0,
    )
    template = llm.metadata["tokenizer.chat_template"]
    bos, eos = token_text(llm, llm.token_bos()), token_text(llm, llm.token_eos())
    conversations = dict(CONVERSATIONS)

    # Timings on a shared machine are only as good as its idle cores; record how busy it was.
    load_before = os.getloadavg()
    results = []
    for name in args.prompts:
        rendered = render_chat(template, conversations[name], bos, eos)
        prompt_ids = llm.tokenize(rendered.encode("utf-8"), add_bos=False, special=True)
        run_once(llm, prompt_ids)  # warm-up: page in the weights, size the buffers
        runs = [run_once(llm, prompt_ids) for _ in range(args.repeats)]
        results.append({
            "prompt": name,
            "prompt_tokens": len(prompt_ids),
            "decode_tokens": DECODE_STEPS,
            "median_prefill_tok_s": statistics.median(r["prefill_tok_s"] for r in runs),
            "median_decode_tok_s": statistics.median(r["decode_tok_s"] for r in runs),
            "runs": runs,
        })

    json.dump({
        "gguf": os.path.basename(args.gguf),
        "threads": args.threads,
        "gpu_layers": args.gpu_layers,
        "repeats": args.repeats,
        "supports_gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
        "llama_cpp_python": llama_cpp.__version__,
        "llama_cpp_build": build_info(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "results": results,
    }, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
