#!/usr/bin/env python3
"""Build the tiny random-weight Qwen2-VL and Qwen2.5-VL fixtures and their goldens.

Made offline from config objects like make_fixtures.py (whose corpus, weight redraw and test
image this reuses; the tokenizer builder and greedy helper come from make_family_fixtures.py).
The image processor is transformers' `Qwen2VLImageProcessorPil` (Pillow resize, no torchvision).
Per fixture, in tests/fixtures/<name>/:

    model/               config.json, model.safetensors, tokenizer files, chat template and
                         preprocessor_config.json, as save_pretrained writes them (transformers
                         5.23 writes the Hub layout: visual.*, model.layers.*, lm_head)
    image.png            the test image
    goldens.safetensors  pixel_values [patches, C·T·p·p] (as the processor returns them),
                         vision_output [patches, vision_hidden] (after the last block, in the
                         image's patch order: Qwen2.5-VL's window reordering undone),
                         connector_output [image_tokens, text_hidden] (the merger output, the
                         features the decoder sees, in image order), logits [seq, vocab]
    goldens.json         prompt, rendered prompt, input ids (image tokens expanded), image token
                         count and grid (t, h, w), M-RoPE positions of every prompt token
                         (get_rope_index, as [t, h, w] per token), 10 greedy tokens and the
                         smallest top-2 gap (≥ 2e-2, so q8 keeps them)

    qwen2-vl-tiny      Qwen2VLForConditionalGeneration: ViT 32 wide, 2 blocks, 4 heads, patch 4,
                       merge 2, quick_gelu; decoder 64 wide, 4/2 heads, mrope_section [2, 3, 3];
                       a 45x61 image → 12x8 patches; bf16
    qwen2_5-vl-tiny    Qwen2_5_VLForConditionalGeneration: ViT 32 wide, 4 blocks (1 and 3 full
                       attention, 0 and 2 windowed with 16-px windows = 2x2 merged units, which do
                       not divide the 4x7 unit grid), RMSNorm + SwiGLU; tied embeddings; a 70x40
                       image; f32

Run: python tests/generator/make_qwen_vl_fixtures.py [--out tests/fixtures] [--only NAME ...]
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.vision_utils import get_vision_window_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_family_fixtures import MIN_GAP, build_tokenizer, greedy, round_bf16  # noqa: E402
from make_fixtures import make_image, redraw_weights  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]
# Qwen2-VL's template over typed content parts, default system turn included.
TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}"
    "{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PATCH, MERGE, TEMPORAL = 4, 2, 2
TEXT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
            max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]})


def build(out_root: Path, name: str, config_cls, model_cls, vision: dict, tied: bool, image_size, prompt: str,
          seed: int, bf16: bool) -> None:
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    tok = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(SPECIAL), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = TEMPLATE
    processor = Qwen2VLImageProcessorPil(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=TEMPORAL,
                                         size={"shortest_edge": 16 * 16, "longest_edge": 64 * 30})
    ids_of = tok.convert_tokens_to_ids
    text = dict(TEXT, vocab_size=len(tok), tie_word_embeddings=tied, bos_token_id=None, eos_token_id=ids_of("<|im_end|>"),
                pad_token_id=tok.pad_token_id)
    config = config_cls(vision_config=vision, text_config=text,
                        image_token_id=ids_of("<|image_pad|>"), video_token_id=ids_of("<|video_pad|>"),
                        vision_start_token_id=ids_of("<|vision_start|>"), vision_end_token_id=ids_of("<|vision_end|>"),
                        tie_word_embeddings=tied)
    image = make_image(*image_size, seed=seed)
    pixels = processor(images=[image], return_tensors="pt")
    grid = pixels["image_grid_thw"]
    n_image = int(grid[0].prod()) // MERGE**2
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    rendered = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = tok(rendered.replace("<|image_pad|>", "<|image_pad|>" * n_image), return_tensors="pt")["input_ids"]
    mm = (ids == config.image_token_id).int()
    inputs = dict(input_ids=ids, pixel_values=pixels["pixel_values"], image_grid_thw=grid, mm_token_type_ids=mm)
    for attempt in range(50):
        torch.manual_seed(seed * 1000 + attempt)
        model = model_cls(config).eval()
        redraw_weights(model, torch.Generator().manual_seed(seed * 1000 + attempt))
        if tied:
            model.tie_weights()
        if bf16:
            round_bf16(model)
        captured = {}
        hook = model.model.visual.merger.register_forward_hook(lambda _m, i, o: captured.update(blocks=i[0], merged=o))
        with torch.no_grad():
            logits = model(**inputs).logits[0]
        hook.remove()
        with torch.no_grad():
            tokens, gap = greedy(model, inputs)
        if gap > MIN_GAP:
            break
    else:
        raise SystemExit(f"{name}: no seed gave greedy margins above {MIN_GAP}")
    blocks, merged = captured["blocks"], captured["merged"]
    if "window_size" in vision:
        # The tower runs window by window; put units back in image order.
        order, _ = get_vision_window_index(grid, spatial_merge_size=MERGE, window_size=vision["window_size"], patch_size=PATCH)
        back = torch.argsort(order)
        blocks = blocks.reshape(-1, MERGE**2, blocks.shape[-1])[back].reshape(-1, blocks.shape[-1])
        merged = merged[back]
    with torch.no_grad():
        features = model.model.get_image_features(pixel_values=inputs["pixel_values"], image_grid_thw=grid)
    features = getattr(features, "pooler_output", features)
    features = torch.cat(list(features)) if isinstance(features, (list, tuple)) else features
    assert (features - merged).abs().max() < 1e-6, "merger output differs from get_image_features"
    positions, delta = model.model.get_rope_index(ids, mm, grid)
    if bf16:
        model.to(torch.bfloat16)
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    processor.save_pretrained(out / "model")
    (out / "model" / "generation_config.json").unlink(missing_ok=True)
    image.save(out / "image.png")
    save_file({"pixel_values": pixels["pixel_values"].float().contiguous(), "vision_output": blocks.float().contiguous(),
               "connector_output": merged.float().contiguous(), "logits": logits.float().contiguous()},
              out / "goldens.safetensors")
    goldens = dict(fixture=name, family=config.model_type, architecture=type(model).__name__, prompt=prompt,
                   rendered_prompt=rendered, input_ids=ids[0].tolist(), image_tokens=n_image,
                   image_token_id=config.image_token_id, image_grid_thw=grid[0].tolist(),
                   positions=positions[:, 0].T.tolist(), rope_delta=int(delta[0, 0]), greedy_tokens=tokens,
                   greedy_text=tok.decode(tokens, skip_special_tokens=True), greedy_min_top2_gap=gap, max_new_tokens=10,
                   image_processor=type(processor).__name__, torch=torch.__version__,
                   transformers=__import__("transformers").__version__)
    (out / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")
    again = model_cls.from_pretrained(out / "model", dtype=torch.float32).eval()
    with torch.no_grad():
        diff = (again(**inputs).logits[0] - logits).abs().max().item()
    assert diff < 1e-4, f"{name}: reloaded model differs from goldens by {diff}"
    print(f"{name}: grid={grid[0].tolist()} image_tokens={n_image} seq={ids.shape[1]} greedy={tokens} "
          f"min_gap={gap:.4f} reload_diff={diff:.1e}")


FIXTURES = {
    "qwen2-vl-tiny": lambda out: build(
        out, "qwen2-vl-tiny", Qwen2VLConfig, Qwen2VLForConditionalGeneration,
        dict(depth=2, embed_dim=32, num_heads=4, mlp_ratio=2, patch_size=PATCH, temporal_patch_size=TEMPORAL,
             spatial_merge_size=MERGE, in_channels=3, hidden_size=64),
        tied=False, image_size=(45, 61), prompt="What is in this image?", seed=11, bf16=True),
    "qwen2_5-vl-tiny": lambda out: build(
        out, "qwen2_5-vl-tiny", Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration,
        dict(depth=4, hidden_size=32, intermediate_size=48, num_heads=4, patch_size=PATCH, temporal_patch_size=TEMPORAL,
             spatial_merge_size=MERGE, in_channels=3, out_hidden_size=64, window_size=16, fullatt_block_indexes=[1, 3],
             hidden_act="silu"),
        tied=True, image_size=(70, 40), prompt="Describe the colours, please.", seed=12, bf16=False),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures")
    ap.add_argument("--only", nargs="*", choices=sorted(FIXTURES))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.only or FIXTURES:
        FIXTURES[name](args.out)


if __name__ == "__main__":
    main()
