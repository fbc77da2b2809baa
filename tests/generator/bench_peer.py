#!/usr/bin/env python3
"""webvlm and llama.cpp side by side on SmolLM2-135M-Instruct (the same Q4_1 GGUF), in one run,
alternating: webvlm (`webvlm run --json` on the GGUF directory, wgpu; lavapipe on a machine
without a GPU) then llama.cpp (llama-cpp-python, CPU), `--repeats` times, on the same prompt
(conversation 0 of make_llamacpp_goldens.py, "What is the capital of France?", rendered by each
side with the GGUF's chat template: the same 37 prompt ids, as tests/parity/llamacpp.rs checks).

Both decode 32 greedy tokens past end-of-sequence. webvlm's prefill and decode rates come from its
own timings (load excluded); llama.cpp's from wall time around `eval` (bench_llamacpp.py's
`run_once`). Prints JSON: medians, every run, and the ratio webvlm / llama.cpp.

    /root/lcpvenv/bin/python tests/generator/bench_peer.py --gguf-dir DIR --webvlm target/release/webvlm [--webvlm-base OLD] [--threads 2] [--repeats 3] [--prompt-tokens 512]

`--only-llamacpp` runs llama.cpp alone (one warm-up, then `--repeats` runs of `--tokens` greedy
tokens) and prints one JSON object with every run, the medians, the prompt ids, the generated
text and llama.cpp's version: scripts/bench-peers.mjs reads it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_llamacpp import run_once  # noqa: E402
from make_llamacpp_goldens import CONVERSATIONS, render_chat, token_text  # noqa: E402
from llama_cpp import Llama  # noqa: E402


def webvlm_once(exe, model_dir, prompt, tokens=32):
    out = subprocess.run(
        [exe, "run", "--model", model_dir, "--prompt", prompt, "--max-new-tokens", str(tokens), "--ignore-eos", "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    t = json.loads(out.strip().splitlines()[-1])["timings"]
    return {"prefill_tok_s": t["prefill_tokens_per_s"], "decode_tok_s": t["decode_tokens_per_s"], "load_ms": t["load_ms"]}


def llamacpp_only(llm, args, name, rendered, ids):
    """llama.cpp alone: every run with its greedy ids and text, the medians, and what was run."""
    import llama_cpp
    from make_llamacpp_goldens import build_info

    load_before = os.getloadavg()
    run_once(llm, ids, args.tokens)  # warm-up
    runs = []
    for _ in range(args.repeats):
        out = []
        r = run_once(llm, ids, args.tokens, out)
        r["ttft_ms"] = r["prefill_s"] * 1000  # the first token is the argmax of the prefill's logits
        r["generated_tokens"] = len(out)
        r["ids"] = out
        r["text"] = llm.detokenize(out).decode("utf-8", errors="replace")
        runs.append(r)
    med = {m: statistics.median(r[m] for r in runs) for m in ("prefill_tok_s", "ttft_ms", "decode_tok_s")}
    print(json.dumps({
        "prompt": name, "rendered": rendered, "prompt_ids": ids, "prompt_tokens": len(ids),
        "threads": args.threads, "repeats": args.repeats, "tokens": args.tokens,
        "llama_cpp_python": llama_cpp.__version__, "llama_cpp_build": build_info(),
        "cpu_count": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "median": med, "runs": runs,
    }, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf-dir", required=True)
    ap.add_argument("--webvlm", default="target/release/webvlm")
    ap.add_argument("--webvlm-base", help="a second webvlm build (e.g. the commit before a change), run in the same alternation")
    ap.add_argument("--save", help="write the result JSON here as a baseline for later runs on this machine")
    ap.add_argument("--compare", help="a saved baseline JSON from this machine: print each median's ratio to it")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=32, help="greedy tokens per run")
    ap.add_argument("--only-llamacpp", action="store_true", help="run llama.cpp alone and print its runs as JSON")
    ap.add_argument("--prompt-tokens", type=int, help="a long prompt instead: the question after a text repeated until the rendered prompt has at least this many tokens")
    args = ap.parse_args()
    gguf = next(os.path.join(args.gguf_dir, f) for f in os.listdir(args.gguf_dir) if f.endswith(".gguf"))
    name, messages = CONVERSATIONS[0][0], CONVERSATIONS[0][1]
    assert len(messages) == 1 and messages[0]["role"] == "user", name
    llm = Llama(model_path=gguf, n_ctx=2048, n_threads=args.threads, n_batch=512, n_gpu_layers=0, verbose=False, seed=0)
    bos, eos = token_text(llm, llm.token_bos()), token_text(llm, llm.token_eos())
    rendered = render_chat(llm.metadata["tokenizer.chat_template"], messages, bos, eos)
    ids = llm.tokenize(rendered.encode(), add_bos=False, special=True)
    if args.prompt_tokens:
        filler = "The river runs past the old mill, under the bridge and on to the sea. "
        question = messages[0]["content"]
        repeats = 0
        while len(ids) < args.prompt_tokens:
            repeats += 1
            messages = [{"role": "user", "content": filler * repeats + question}]
            rendered = render_chat(llm.metadata["tokenizer.chat_template"], messages, bos, eos)
            ids = llm.tokenize(rendered.encode(), add_bos=False, special=True)
        name = f"{name}, after {repeats} filler sentences"
    if args.only_llamacpp:
        return llamacpp_only(llm, args, name, rendered, ids)
    run_once(llm, ids, args.tokens)  # warm-up
    runs = {"webvlm": [], "llama.cpp": []}
    if args.webvlm_base:
        runs["webvlm (base)"] = []
    for _ in range(args.repeats):
        runs["webvlm"].append(webvlm_once(args.webvlm, args.gguf_dir, messages[0]["content"], args.tokens))
        if args.webvlm_base:
            runs["webvlm (base)"].append(webvlm_once(args.webvlm_base, args.gguf_dir, messages[0]["content"], args.tokens))
        runs["llama.cpp"].append(run_once(llm, ids, args.tokens))
    med = {k: {m: statistics.median(r[m] for r in v) for m in ("prefill_tok_s", "decode_tok_s")} for k, v in runs.items()}
    ratio = {m: med["webvlm"][m] / med["llama.cpp"][m] for m in ("prefill_tok_s", "decode_tok_s")}
    if args.webvlm_base:
        ratio["webvlm_over_base"] = {m: med["webvlm"][m] / med["webvlm (base)"][m] for m in ("prefill_tok_s", "decode_tok_s")}
    result = {"prompt": name, "prompt_tokens": len(ids), "threads": args.threads, "repeats": args.repeats,
              "median": med, "ratio_webvlm_over_llamacpp": ratio, "runs": runs}
    if args.compare:
        # lavapipe's speed differs between machines of one kind; llama.cpp's barely does, so a
        # baseline is only compared on the machine that saved it, and llama.cpp's own ratio
        # to the baseline says whether the machine is in the same state.
        with open(args.compare) as f:
            base = json.load(f)["median"]
        result["ratio_to_baseline"] = {k: {m: v[m] / base[k][m] for m in v} for k, v in med.items() if k in base}
    print(json.dumps(result, indent=1))
    if args.save:
        with open(args.save, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
