#!/usr/bin/env python3
"""Build real-size models with random weights for benchmarking (no hub access).

Random weights run exactly as fast as trained ones; only the shapes matter. Each model is
made by transformers from config objects with the architecture of a released checkpoint, its
weights redrawn like the test fixtures' (make_fixtures.redraw_weights), and saved in the
standard Hugging Face layout in bf16 (as the Hub checkpoints are) together with SmolVLM's
processor settings and a tokenizer with the real SmolLM2 vocabulary:

  smolvlm-256m  SmolVLM-256M-Instruct: SigLIP 768/12 layers/patch 16/512 px, scale_factor 4
                (64 image tokens per tile), SmolLM2-135M decoder (576, 30 layers, 9/3 heads,
                FFN 1536, vocab 49280), untied lm_head.
  smolvlm-500m  SmolVLM-500M-Instruct: the same vision tower, SmolLM2-360M decoder (960, 32
                layers, 15/5 heads, FFN 2560, vocab 49280), untied lm_head.
  qwen2.5-1.5b  Qwen2.5-1.5B-Instruct's decoder (Qwen2ForCausalLM: 1536, 28 layers, 12/2 heads,
                q/k/v bias, FFN 8960, vocab 151936, tied embeddings, rope_theta 1e6), text only;
                its tokenizer is SmolLM2's (ChatML tokens included) padded with unused special
                tokens to Qwen's vocabulary size, so every id decodes.

The tokenizer is SmolLM2's (from the GGUF that scripts/fetch-smollm2.sh caches, turned into
tokenizer.json by `webvlm convert`; pass it as --tokenizer) plus SmolVLM's 128 added tokens at
the ids the released checkpoints give them (<global-img> 49152, <row_R_col_C> 49153-49188,
<fake_token_around_image> 49189, <image> 49190, <|reserved_special_token_0..87|> 49191-49278,
<end_of_utterance> 49279), so the config's ids (image_token_id 49190, eos 49279, pad 2) are the
real ones and every id a random model emits decodes.

Usually run through scripts/make-bench-models.sh, which also converts each model to q4/q8/f16
packed models with `webvlm convert`. Output lives outside the repository (default
~/.cache/webvlm/bench/<name>/hf): it is large and never committed.
"""

import argparse
import json
import shutil
import time
from pathlib import Path

import torch
from tokenizers import AddedToken, Tokenizer
from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil
from transformers.utils import logging as transformers_logging

from make_fixtures import CHAT_TEMPLATE, redraw_weights

VOCAB = 49280
VISION = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              image_size=512, patch_size=16, layer_norm_eps=1e-6)
MODELS = {
    "smolvlm-256m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, head_dim=64),
    "smolvlm-500m": dict(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5, head_dim=64),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, rope_theta=1000000.0, rms_norm_eps=1e-6,
                         max_position_embeddings=32768, tie_word_embeddings=True, use_sliding_window=False),
}
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
BASE_VOCAB = 49152  # SmolLM2's own vocabulary
# SmolVLM's added tokens in id order, from BASE_VOCAB up to VOCAB - 1 (as in the released tokenizer).
ADDED_TOKENS = (["<global-img>"] + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
                + ["<fake_token_around_image>", "<image>"]
                + [f"<|reserved_special_token_{i}|>" for i in range(88)] + ["<end_of_utterance>"])
IMAGE_TOKENS = ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]  # additional_special_tokens


def build_tokenizer(tokenizer_json: Path) -> PreTrainedTokenizerFast:
    tok = Tokenizer.from_file(str(tokenizer_json))
    size = tok.get_vocab_size(with_added_tokens=True)
    if size != BASE_VOCAB or tok.token_to_id("<|im_start|>") != 1 or tok.token_to_id("<|im_end|>") != 2:
        raise SystemExit(f"{tokenizer_json}: not SmolLM2's tokenizer ({size} ids, expected {BASE_VOCAB})")
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ADDED_TOKENS])
    for i, t in enumerate(ADDED_TOKENS):
        assert tok.token_to_id(t) == BASE_VOCAB + i, (t, tok.token_to_id(t))
    assert tok.get_vocab_size(with_added_tokens=True) == VOCAB
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        unk_token="<|endoftext|>",
        pad_token="<|im_end|>",
        additional_special_tokens=IMAGE_TOKENS,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_text_only(name: str, text: dict, tokenizer_json: Path, out: Path, seed: int) -> None:
    """A Qwen2 decoder at its real size; the tokenizer padded to its vocabulary."""
    t0 = time.time()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tok = Tokenizer.from_file(str(tokenizer_json))
    pad = text["vocab_size"] - tok.get_vocab_size(with_added_tokens=True)
    tok.add_special_tokens([AddedToken(f"<|unused_{i}|>", special=True) for i in range(pad)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<|endoftext|>")
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    assert len(tokenizer) == text["vocab_size"], len(tokenizer)
    config = Qwen2Config(**text, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    redraw_weights(model, torch.Generator().manual_seed(seed))
    model.tie_weights()
    model.to(torch.bfloat16)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    params = sum(p.numel() for p in model.parameters())
    del model
    info = {"name": name, "parameters": params, "seed": seed, "torch": torch.__version__,
            "transformers": __import__("transformers").__version__}
    (tmp / "bench_model.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"{name}: {params / 1e6:.1f} M parameters; made in {time.time() - t0:.0f} s -> {out}")


def build(name: str, text: dict, tokenizer_json: Path, out: Path, seed: int) -> None:
    t0 = time.time()
    tmp = out.with_name(out.name + ".partial")  # renamed to `out` once complete and checked
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tokenizer = build_tokenizer(tokenizer_json)
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=True,
        size={"longest_edge": 4 * VISION["image_size"]},
        max_image_size={"longest_edge": VISION["image_size"]},
        resample=1,  # LANCZOS
    )
    image_seq_len = (VISION["image_size"] // VISION["patch_size"]) ** 2 // 16
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=image_seq_len, chat_template=CHAT_TEMPLATE)
    tokenizer = processor.tokenizer
    text_cfg = dict(text, model_type="llama", vocab_size=VOCAB, rms_norm_eps=1e-5, rope_theta=100000.0,
                    max_position_embeddings=8192, tie_word_embeddings=False,
                    pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id)
    config = Idefics3Config(vision_config=VISION, text_config=text_cfg, scale_factor=4,
                            image_token_id=tokenizer.convert_tokens_to_ids("<image>"), tie_word_embeddings=False)
    assert (config.image_token_id, text_cfg["eos_token_id"], text_cfg["pad_token_id"]) == (49190, 49279, 2)
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    redraw_weights(model, torch.Generator().manual_seed(seed))
    model.to(torch.bfloat16)
    model.save_pretrained(tmp)  # config.json, model.safetensors, generation_config.json
    processor.save_pretrained(tmp)  # tokenizer.json, tokenizer_config.json, processor_config.json, chat_template.jinja
    params = sum(p.numel() for p in model.parameters())
    del model
    t_gen = time.time() - t0

    # Reload what was written: the tokenizer has the config's vocabulary with SmolVLM's ids, and the
    # processor counts 4x4 tiles + the global view of a 512x512 photo, 64 tokens each.
    from PIL import Image
    processor = Idefics3Processor.from_pretrained(tmp)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp)
    assert len(tokenizer) == VOCAB, len(tokenizer)
    assert tokenizer.encode("<image><end_of_utterance>", add_special_tokens=False) == [49190, 49279]
    assert tokenizer.decode(tokenizer.encode("What is in this image? 2024")) == "What is in this image? 2024"
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    ids = processor(text=prompt, images=[Image.new("RGB", (512, 512), (90, 140, 200))])["input_ids"][0]
    image_tokens = sum(1 for i in ids if i == config.image_token_id)
    assert image_tokens == 17 * image_seq_len, image_tokens
    info = {"name": name, "parameters": params, "image_tokens_512px": image_tokens, "prompt_tokens_512px": len(ids),
            "seed": seed, "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    (tmp / "bench_model.json").write_text(json.dumps(info, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    print(f"{name}: {params / 1e6:.1f} M parameters, {image_tokens} image tokens for 512x512 "
          f"({len(ids)} prompt tokens); made in {t_gen:.0f} s, checked in {time.time() - t0 - t_gen:.0f} s -> {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", type=Path, required=True, help="SmolLM2 tokenizer.json (49152 tokens)")
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache/webvlm/bench")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(2)
    transformers_logging.disable_progress_bar()
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
        out = args.out / name / "hf"
        if (out / "bench_model.json").exists():
            print(f"{name}: {out} exists")
            continue
        maker = build_text_only if name.startswith("qwen") else build
        maker(name, MODELS[name], args.tokenizer, out, args.seed)


if __name__ == "__main__":
    main()
