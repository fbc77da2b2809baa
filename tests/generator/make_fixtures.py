#!/usr/bin/env python3
"""Build the tiny random-weight Idefics3 (SmolVLM) fixtures and their golden outputs.

Everything is made offline from config objects: no hub access. For each fixture this writes a
model directory in the standard Hugging Face layout (config.json, safetensors weights,
tokenizer.json, tokenizer_config.json, preprocessor_config.json, processor_config.json, chat
template) plus a test image and the golden output of every stage, computed by `transformers` in
float32:

    goldens.safetensors  pixel_values [tiles,3,H,W], pixel_attention_mask [tiles,H,W],
                         vision_output [tiles,patches,vision_hidden] (after post_layernorm),
                         connector_output [tiles,image_seq_len,text_hidden],
                         logits [seq,vocab] (prefill, every position)
    goldens.json         prompt text, input_ids, rows/cols, greedy tokens (KV cache, EOS ignored),
                         their decoded text, and the smallest top-1/top-2 logit gap met while
                         decoding greedily (how much numeric slack the token test has).

Weights are redrawn away from the default init (norm weights in [0.5, 1.5], biases ~N(0, 0.2),
matrices ~N(0, 1/fan_in)) so that bugs in RoPE, norms and biases cannot hide.

Run (versions pinned in requirements.txt next to this file):
    python tests/generator/make_fixtures.py --out tests/fixtures
"""

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    GenerationConfig,
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    PreTrainedTokenizerFast,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

# SmolVLM's own chat template (one user turn: image, then text; "Assistant:" as generation prompt).
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

SPECIAL_TOKENS = (
    ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<fake_token_around_image>", "<image>",
     "<end_of_utterance>", "<global-img>"]
    + [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
)

CORPUS = """
A small model looks at a photo and answers a question about it. The picture shows a red house
next to a green tree, a blue sky with two white clouds, and a dog sitting on the grass. What is in
this image? Describe the colours, the shapes and the animals. How many windows does the house have?
The answer streams back token by token while the page stays responsive. Vision-language models
split the image into tiles, encode every tile with a vision transformer, shuffle the patches and
project them into the embedding space of the language model. Then the decoder reads the prompt and
writes an answer: one token at a time, caching keys and values so that each new step is cheap.
Numbers like 0 1 2 3 4 5 6 7 8 9 10 42 100 2024 and punctuation , . ; : ! ? ( ) [ ] " ' - also appear.
""" * 4


def build_tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([CORPUS], trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def redraw_weights(model: torch.nn.Module, gen: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            elif p.ndim == 1:  # LayerNorm / RMSNorm weights
                p.copy_(torch.rand(p.shape, generator=gen) + 0.5)
            else:
                fan_in = math.prod(p.shape[1:])
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))


def make_image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack(
        [
            (255 * x / max(width - 1, 1)),
            (255 * y / max(height - 1, 1)),
            (128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)),
        ],
        axis=-1,
    )
    arr = arr + rng.normal(0, 12, arr.shape)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse([width // 5, height // 4, width // 2, height * 3 // 4], fill=(250, 30, 40))
    draw.rectangle([width * 3 // 5, height // 6, width - 3, height // 2], fill=(20, 200, 60))
    return img


FIXTURES = {
    # Several tiles (2x2 + global), untied lm_head, f32 weights in several shards, rope_parameters form.
    "smolvlm-tiny-split": dict(
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    image_size=32, patch_size=8, layer_norm_eps=1e-6),
        text=dict(hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, rope_theta=10000.0, rms_norm_eps=1e-5, max_position_embeddings=256),
        scale_factor=2, tie=False, splitting=True, size=64, max_image_size=32,
        image=(50, 37), dtype="float32", shard="60KB", seed=1, rope_form="parameters",
        prompt="What is in this image?",
    ),
    # A single tile, tied embeddings, GQA 3:1, scale_factor 3, bf16 weights, classic rope_theta form.
    "smolvlm-tiny-single": dict(
        vision=dict(hidden_size=48, intermediate_size=80, num_hidden_layers=3, num_attention_heads=3,
                    image_size=36, patch_size=6, layer_norm_eps=1e-5),
        text=dict(hidden_size=48, intermediate_size=112, num_hidden_layers=2, num_attention_heads=6,
                  num_key_value_heads=2, rope_theta=100000.0, rms_norm_eps=1e-6, max_position_embeddings=128),
        scale_factor=3, tie=True, splitting=False, size=72, max_image_size=36,
        image=(45, 61), dtype="bfloat16", shard=None, seed=2, rope_form="theta",
        prompt="Describe the colours, please.",
    ),
}


def build_fixture(name: str, spec: dict, out_root: Path) -> None:
    out = out_root / name
    model_dir = out / "model"
    if out.exists():
        shutil.rmtree(out)
    model_dir.mkdir(parents=True)

    tokenizer = build_tokenizer(vocab_size=420)
    image_processor = Idefics3ImageProcessorPil(
        do_image_splitting=spec["splitting"],
        size={"longest_edge": spec["size"]},
        max_image_size={"longest_edge": spec["max_image_size"]},
    )
    v = spec["vision"]
    image_seq_len = (v["image_size"] // v["patch_size"]) ** 2 // spec["scale_factor"] ** 2
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=image_seq_len,
                                  chat_template=CHAT_TEMPLATE)
    tokenizer = processor.tokenizer
    vocab = len(tokenizer)

    text_cfg = dict(spec["text"], model_type="llama", vocab_size=vocab,
                    tie_word_embeddings=spec["tie"], pad_token_id=tokenizer.pad_token_id,
                    bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = Idefics3Config(
        vision_config=v,
        text_config=text_cfg,
        scale_factor=spec["scale_factor"],
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=spec["tie"],
    )

    for attempt in range(50):
        torch.manual_seed(spec["seed"] * 1000 + attempt)
        model = Idefics3ForConditionalGeneration(config).eval()
        redraw_weights(model, torch.Generator().manual_seed(spec["seed"] * 1000 + attempt))
        if spec["tie"]:
            model.tie_weights()
        if spec["dtype"] == "bfloat16":
            # Round to bf16 once so that the saved bf16 weights are exactly what the goldens used.
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(torch.bfloat16).to(torch.float32))
        image = make_image(*spec["image"], seed=spec["seed"])
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": spec["prompt"]}]}]
        prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=prompt, images=[image], return_tensors="pt")
        with torch.no_grad():
            pv = inputs["pixel_values"]
            pam = inputs["pixel_attention_mask"]
            img_out = model.model.get_image_features(pixel_values=pv, pixel_attention_mask=pam)
            vision_output = img_out.last_hidden_state
            connector_output = model.model.connector(vision_output)
            logits = model(**inputs).logits[0]
            gen_cfg = GenerationConfig(max_new_tokens=10, do_sample=False, eos_token_id=None,
                                       pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
            gen = model.generate(**inputs, generation_config=gen_cfg, output_logits=True,
                                 return_dict_in_generate=True)
        greedy = gen.sequences[0, inputs["input_ids"].shape[1]:].tolist()
        gaps = []
        for step_logits in gen.logits:
            top2 = torch.topk(step_logits[0].float(), 2).values
            gaps.append(float(top2[0] - top2[1]))
        if len(greedy) == 10 and min(gaps) > 2e-3:
            break
    else:
        raise SystemExit(f"{name}: no seed gave greedy margins above 2e-3")

    # Weights in the requested dtype and sharding, the standard Hub layout.
    save_kwargs = {}
    if spec["shard"]:
        save_kwargs["max_shard_size"] = spec["shard"]
    if spec["dtype"] == "bfloat16":
        model.to(torch.bfloat16)
    model.save_pretrained(model_dir, **save_kwargs)
    processor.save_pretrained(model_dir)
    if spec["rope_form"] == "theta":
        # Older checkpoints (transformers 4.x) write rope_theta at the top of text_config.
        cfg_path = model_dir / "config.json"
        cfg = json.loads(cfg_path.read_text())
        tc = cfg["text_config"]
        rp = tc.pop("rope_parameters", None) or {}
        tc["rope_theta"] = rp.get("rope_theta", spec["text"]["rope_theta"])
        tc["rope_scaling"] = None
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    for extra in ("generation_config.json",):
        (model_dir / extra).unlink(missing_ok=True)

    image.save(out / "image.png")
    save_file(
        {
            "pixel_values": pv[0].contiguous().float(),
            "pixel_attention_mask": pam[0].to(torch.uint8).contiguous(),
            "vision_output": vision_output.contiguous().float(),
            "connector_output": connector_output.contiguous().float(),
            "logits": logits.contiguous().float(),
        },
        out / "goldens.safetensors",
    )
    img_proc_out = image_processor(images=[image], return_row_col_info=True)
    goldens = {
        "fixture": name,
        "prompt": spec["prompt"],
        "rendered_prompt": prompt,
        "input_ids": inputs["input_ids"][0].tolist(),
        "rows": int(img_proc_out["rows"][0][0]),
        "cols": int(img_proc_out["cols"][0][0]),
        "image_seq_len": image_seq_len,
        "greedy_tokens": greedy,
        "greedy_text": tokenizer.decode(greedy, skip_special_tokens=True),
        "greedy_min_top2_gap": min(gaps),
        "max_new_tokens": 10,
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
    }
    (out / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")

    # Reload what was written and check it reproduces the logits: the saved layout is what Rust reads.
    reloaded = Idefics3ForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        again = reloaded(**inputs).logits[0]
    diff = (again - logits).abs().max().item()
    assert diff < 1e-4, f"{name}: reloaded model differs from goldens by {diff}"
    print(f"{name}: seq={logits.shape[0]} vocab={vocab} tiles={pv.shape[1]} greedy={greedy} "
          f"min_gap={min(gaps):.4f} reload_diff={diff:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name, spec in FIXTURES.items():
        build_fixture(name, spec, args.out)


if __name__ == "__main__":
    main()
