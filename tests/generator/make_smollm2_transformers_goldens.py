#!/usr/bin/env python3
"""Reference outputs of transformers (PyTorch, float32) on SmolLM2-135M-Instruct, Q4_1 GGUF.

What: the same eight conversations as make_llamacpp_goldens.py (read from its goldens.json, using
exactly its `prompt_ids`, no re-tokenisation) run through transformers' LlamaForCausalLM with the
weights of the GGUF dequantised to float32, eager attention, on the CPU. Writes

    <out>/transformers.json        {"torch", "transformers", "gguf", "weights_path", "prompts": [
                                   {"name", "greedy_ids", "top2_gaps", "logits_index"}]}: 32 greedy
                                   ids per conversation (argmax, decoding on past end-of-sequence,
                                   with the KV cache) and the top-1 minus top-2 logit gap before
                                   each pick, as in goldens.json;
    <out>/transformers_logits.f32  raw little-endian float32, the full-vocabulary logits of the
                                   last prompt position of conversations 0..3, one row of n_vocab
                                   floats each (same layout as last_logits.f32, ~786 KB).

Why: webvlm and llama.cpp both run the same quantised weights but with different arithmetic
(llama.cpp's CPU backend, for instance, quantises the activations to Q8_1/Q8_0 before every
Q4_1/Q8_0 matrix product). This is a third opinion that does the arithmetic in plain float32 on
the exactly dequantised weights, to settle which of the two is closer to exact arithmetic. As a
yardstick of how exact float32 itself is, the logits of conversations 0..3 are also computed in
float64 and their distance to the float32 ones is printed (not written).

How the model is built: `AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)` when
`accelerate` is importable (transformers requires it for GGUF). Either way the weights are also
dequantised by hand (gguf.quants.dequantize, then the Q/K row permutation of llama.cpp's
convert_hf_to_gguf.py LlamaModel.permute undone) into a LlamaForCausalLM built from the GGUF
metadata, and the two state dicts are checked to be bit-identical; without accelerate the hand-built
model is the one used.

Run (versions pinned in requirements.txt next to this file; goldens.json must exist already):

    python tests/generator/make_smollm2_transformers_goldens.py \\
        --gguf /path/to/SmolLM2-135M-Instruct.Q4_1.gguf [--out tests/fixtures/smollm2]

It prints, for conversations 0..3, max and mean |transformers - llama.cpp| over the logits and the
argmax of each; for all eight, whether the greedy ids equal llama.cpp's (else the first divergent
step with both gaps there). CPU only; about 7 minutes on 2 cores (mostly the 8 x 32 cached decode
steps and transformers' GGUF loading).
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import torch

import gguf
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

LOGITS_PROMPTS = 4


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def field(reader, key):
    return reader.fields[key].contents()


def unpermute(w, n_head):
    """Inverse of llama.cpp convert_hf_to_gguf.py LlamaModel.permute:
    permute(w) = w.reshape(n_head, 2, d/2, ...).swapaxes(1, 2).reshape(w.shape)."""
    half = w.shape[0] // n_head // 2
    return w.reshape(n_head, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def manual_model(path):
    """LlamaForCausalLM from the GGUF metadata, weights dequantised with gguf.quants.dequantize."""
    r = gguf.GGUFReader(path)
    arch = field(r, "general.architecture")
    assert arch == "llama", arch
    n_head = int(field(r, "llama.attention.head_count"))
    n_kv = int(field(r, "llama.attention.head_count_kv"))
    hidden = int(field(r, "llama.embedding_length"))
    names = {t.name for t in r.tensors}
    cfg = LlamaConfig(
        vocab_size=int(field(r, "llama.vocab_size")),
        hidden_size=hidden,
        intermediate_size=int(field(r, "llama.feed_forward_length")),
        num_hidden_layers=int(field(r, "llama.block_count")),
        num_attention_heads=n_head,
        num_key_value_heads=n_kv,
        head_dim=hidden // n_head,
        max_position_embeddings=int(field(r, "llama.context_length")),
        rms_norm_eps=float(field(r, "llama.attention.layer_norm_rms_epsilon")),
        rope_theta=float(field(r, "llama.rope.freq_base")),
        tie_word_embeddings="output.weight" not in names,
        bos_token_id=int(field(r, "tokenizer.ggml.bos_token_id")),
        eos_token_id=int(field(r, "tokenizer.ggml.eos_token_id")),
        pad_token_id=int(field(r, "tokenizer.ggml.padding_token_id")),
        hidden_act="silu",
        attention_bias=False,
        mlp_bias=False,
    )
    assert int(field(r, "llama.rope.dimension_count")) == hidden // n_head
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    sub = {
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
    }
    sd = {}
    for t in r.tensors:
        w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        if t.name == "token_embd.weight":
            hf = "model.embed_tokens.weight"
        elif t.name == "output_norm.weight":
            hf = "model.norm.weight"
        elif t.name == "output.weight":
            hf = "lm_head.weight"
        else:
            _, i, kind, _ = t.name.split(".")
            hf = f"model.layers.{i}.{sub[kind]}.weight"
            if kind == "attn_q":
                w = unpermute(w, n_head)
            elif kind == "attn_k":
                w = unpermute(w, n_kv)
        sd[hf] = torch.from_numpy(np.ascontiguousarray(w))
    if cfg.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert not [m for m in missing if "rotary" not in m], missing
    return model.eval()


def transformers_model(path):
    """The model as transformers itself loads a GGUF, or None when it cannot (needs accelerate)."""
    try:
        import accelerate  # noqa: F401
    except ImportError:
        print("accelerate is not installed: transformers cannot load a GGUF; using the hand-built model")
        return None
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(
        os.path.dirname(os.path.abspath(path)), gguf_file=os.path.basename(path),
        dtype=torch.float32, attn_implementation="eager",
    )
    return model.eval()


def top2_gap(logits):
    top2 = np.partition(logits, -2)[-2:]
    return float(top2.max() - top2.min())


@torch.no_grad()
def prompt_logits(model, prompt_ids):
    out = model(torch.tensor([prompt_ids]), use_cache=False)
    return out.logits[0, -1]


@torch.no_grad()
def greedy(model, prompt_ids, steps):
    """Prompt from an empty KV cache, then `steps` greedy tokens; EOS is not special.
    Returns (float32 logits after the prompt, ids, top-1 minus top-2 gap before each pick)."""
    out = model(torch.tensor([prompt_ids]), use_cache=True)
    cache = out.past_key_values
    logits = out.logits[0, -1].float().numpy().copy()
    first = logits
    ids, gaps = [], []
    for _ in range(steps):
        tok = int(np.argmax(logits))
        ids.append(tok)
        gaps.append(top2_gap(logits))
        out = model(torch.tensor([[tok]]), past_key_values=cache, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[0, -1].float().numpy().copy()
    return first, ids, gaps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gguf", required=True, help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--out", default="tests/fixtures/smollm2", help="fixture directory (reads goldens.json)")
    args = ap.parse_args()

    with open(os.path.join(args.out, "goldens.json"), encoding="utf-8") as f:
        goldens = json.load(f)
    digest = sha256_file(args.gguf)
    if digest != goldens["gguf"]["sha256"]:
        sys.exit(f"{args.gguf}: sha256 {digest}, goldens.json was made from {goldens['gguf']['sha256']}")
    n_vocab = goldens["n_vocab"]
    lcpp_rows = np.fromfile(os.path.join(args.out, goldens["logits_file"]), dtype="<f4").reshape(-1, n_vocab)

    torch.set_grad_enabled(False)
    manual = manual_model(args.gguf)
    auto = transformers_model(args.gguf)
    if auto is not None:
        a, m = auto.state_dict(), manual.state_dict()
        keys = [k for k in m if "rotary" not in k]
        assert set(keys) <= set(a), sorted(set(keys) - set(a))
        diff = [k for k in keys if not torch.equal(a[k].float(), m[k])]
        assert not diff, f"transformers' GGUF weights differ from the hand-dequantised ones: {diff[:5]}"
        assert auto.config.tie_word_embeddings and auto.config.rms_norm_eps > 0
        print(f"transformers' own GGUF loading: {len(keys)} tensors, bit-identical to the hand-built model")
        model, weights_path = auto, "AutoModelForCausalLM.from_pretrained(gguf_file=...)"
    else:
        model, weights_path = manual, "gguf.quants.dequantize + LlamaConfig from GGUF metadata"
    assert model.config._attn_implementation == "eager", model.config._attn_implementation
    print(f"model via {weights_path}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"threads {torch.get_num_threads()}")

    model64 = manual_model(args.gguf).to(torch.float64)

    prompts, rows = [], []
    for i, p in enumerate(goldens["prompts"]):
        first, ids, gaps = greedy(model, p["prompt_ids"], goldens["greedy_steps"])
        # The same logits again, without the cache path, must agree closely.
        again = prompt_logits(model, p["prompt_ids"]).numpy()
        assert np.abs(again - first).max() < 1e-3, np.abs(again - first).max()
        logits_index = None
        if i < LOGITS_PROMPTS:
            assert p["logits_index"] == len(rows), p["logits_index"]
            logits_index = len(rows)
            rows.append(first)
        prompts.append({"name": p["name"], "greedy_ids": ids, "top2_gaps": gaps, "logits_index": logits_index})

    result = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gguf": goldens["gguf"],
        "weights_path": weights_path,
        "dtype": "float32",
        "attn_implementation": "eager",
        "greedy_steps": goldens["greedy_steps"],
        "logits_file": "transformers_logits.f32",
        "prompts": prompts,
    }
    with open(os.path.join(args.out, "transformers.json"), "w", encoding="utf-8") as f:
        json.dump(result, f, ensure_ascii=False, indent=1)
        f.write("\n")
    np.stack(rows).astype("<f4").tofile(os.path.join(args.out, "transformers_logits.f32"))

    print("\nlast-prompt-position logits (transformers f32 vs llama.cpp, and f32 vs f64):")
    for i in range(LOGITS_PROMPTS):
        t, l = rows[i].astype(np.float64), lcpp_rows[i].astype(np.float64)
        d = np.abs(t - l)
        x = prompt_logits(model64, goldens["prompts"][i]["prompt_ids"]).numpy()
        d64 = np.abs(t - x)
        dl64 = np.abs(l - x)
        print(f"  {i} {goldens['prompts'][i]['name']:20s} |tf-lcpp| max {d.max():.4f} mean {d.mean():.4f}  "
              f"argmax tf {int(np.argmax(t))} lcpp {int(np.argmax(l))} f64 {int(np.argmax(x))}  "
              f"|tf-f64| max {d64.max():.2e} mean {d64.mean():.2e}  |lcpp-f64| max {dl64.max():.4f} mean {dl64.mean():.4f}")

    print("\ngreedy ids (32 steps) transformers vs llama.cpp:")
    for t, l in zip(prompts, goldens["prompts"]):
        if t["greedy_ids"] == l["greedy_ids"]:
            print(f"  {t['name']:20s} equal   min gap tf {min(t['top2_gaps']):.4f} lcpp {min(l['top2_gaps']):.4f}")
        else:
            s = next(k for k, (a, b) in enumerate(zip(t["greedy_ids"], l["greedy_ids"])) if a != b)
            print(f"  {t['name']:20s} DIFFER at step {s}: tf {t['greedy_ids'][s]} (gap {t['top2_gaps'][s]:.4f}) "
                  f"lcpp {l['greedy_ids'][s]} (gap {l['top2_gaps'][s]:.4f})")
    print(f"\nwrote {os.path.join(args.out, 'transformers.json')} and {os.path.join(args.out, 'transformers_logits.f32')}")


if __name__ == "__main__":
    main()
