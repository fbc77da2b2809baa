#!/usr/bin/env python3
"""Build the tiny random-weight Qwen2-VL and Qwen2.5-VL fixtures and their goldens.

Made offline from config objects like make_fixtures.py (whose corpus, weight redraw and test
image this reuses); nothing comes from the Hub. The prompt goes through transformers' own
`Qwen2VLProcessor` (chat template, <|image_pad|> expansion, mm_token_type_ids) with the Pillow
image processor `Qwen2VLImageProcessorPil`; building that processor needs torchvision (for its
video processor), pinned in requirements.txt. Per fixture, in tests/fixtures/<name>/:

    model/               config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
                         chat_template.jinja and preprocessor_config.json (the flat, Hub-style
                         image processor file), as save_pretrained writes them (transformers 5.23
                         writes the Hub layout: visual.*, model.layers.*, model.embed_tokens,
                         model.norm, lm_head). generation_config.json is deleted.
    image.png            the test image (make_fixtures.make_image)
    goldens.safetensors  (float32 unless noted; transformers in float32, bf16 weights rounded first)
        pixel_values          [patches, C·T·p·p]   exactly as the processor returns them
        vision_output         [patches, vision_hidden]  hidden state after the last vision block,
                              before the merger, in the image's patch order (merge-unit-major, as
                              the processor lays rows out): Qwen2.5-VL's window reordering undone
        vision_blocks_output  the same tensor under a second, more explicit name
        vision_blocks_output_window_order  (Qwen2.5-VL only) the same rows in the order the
                              tower keeps them internally (merge units permuted by window_index)
        connector_output      [image_tokens, text_hidden]  merger output = the image features the
                              decoder sees, in image order (what get_image_features returns)
        position_ids          [3, seq] int64   M-RoPE (t, h, w) positions from get_rope_index
        logits                [seq, vocab]  prefill, every prompt position
    goldens.json         prompt, rendered prompt, input ids (image tokens expanded), image token
                         count/id and grid (t, h, w), the size smart_resize chose, the processor
                         settings, M-RoPE positions per token ([t, h, w]) and rope_deltas, the
                         vision attention segments (cu_seqlens; for Qwen2.5-VL window_index and
                         cu_window_seqlens), 10 greedy tokens (KV cache, EOS ignored), their text
                         and the smallest top-1/top-2 gap (> 2e-2, so q8 keeps them), versions,
                         and how far the torchvision image processor's pixels are from Pillow's.

    qwen2-vl-tiny      Qwen2VLForConditionalGeneration: ViT 32 wide, 2 blocks, 4 heads, patch 4,
                       merge 2, quick_gelu; decoder 64 wide, 4/2 heads, head_dim 16,
                       mrope_section [2, 3, 3]; a 45x61 image → 32x48 px → 8x12 patches (grid
                       t,h,w = 1,12,8), 24 image tokens; untied; bf16 weights
    qwen2_5-vl-tiny    Qwen2_5_VLForConditionalGeneration: ViT 32 wide, 4 blocks (1 and 3 full
                       attention, 0 and 2 windowed with 16-px windows = 2x2 merged units, which do
                       not divide the 4x7 unit grid), RMSNorm + SwiGLU; tied embeddings; a 70x40
                       image → 56x32 px (grid 1,8,14), 28 image tokens; f32

The model files are byte-for-byte what earlier versions of this script wrote (the packed
browser fixture tests/fixtures/packed/qwen2-vl-tiny is converted from them and checked
byte-exactly by tests/parity/quant.rs), so keep configs, seeds and the tokenizer as they are.

Run (versions pinned in requirements.txt next to this file, torchvision included):
    python tests/generator/make_qwen_vl_fixtures.py [--out tests/fixtures] [--only NAME ...]
"""

import json
import shutil
import sys
from pathlib import Path

import torch
import torchvision
from safetensors.torch import save_file
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
)
from transformers.image_utils import PILImageResampling
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil, smart_resize
from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor
from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor
from transformers.vision_utils import get_vision_cu_seqlens, get_vision_window_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_family_fixtures import MAX_NEW, MIN_GAP, build_tokenizer, greedy, round_bf16, run_fixtures  # noqa: E402
from make_fixtures import make_image, redraw_weights  # noqa: E402

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]
# Qwen2-VL's ChatML over typed content parts, default system turn included.
TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m['role'] != 'system' %}<|im_start|>system\nYou are a helpful "
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% elif c['type'] == 'text' %}"
    "{{ c['text'] }}{% endif %}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
PATCH, MERGE, TEMPORAL = 4, 2, 2
MIN_PIXELS, MAX_PIXELS = 16 * 16, 64 * 30  # smart_resize bounds (processor size shortest_edge / longest_edge)
TEXT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
            max_position_embeddings=256, rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]})


def qwen_tokenizer() -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on make_fixtures.CORPUS with Qwen's special tokens as ids 0..6."""
    fast = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(SPECIAL), eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = TEMPLATE
    return fast


def build(out_root: Path, name: str, config_cls, model_cls, vision: dict, tied: bool, image_size, prompt: str,
          seed: int, bf16: bool) -> None:
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    tok = qwen_tokenizer()
    proc_kwargs = dict(patch_size=PATCH, merge_size=MERGE, temporal_patch_size=TEMPORAL,
                       size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS})
    image_processor = Qwen2VLImageProcessorPil(**proc_kwargs)
    processor = Qwen2VLProcessor(image_processor=image_processor, tokenizer=tok,
                                 video_processor=Qwen2VLVideoProcessor(**proc_kwargs), chat_template=TEMPLATE)
    ids_of = tok.convert_tokens_to_ids
    text = dict(TEXT, vocab_size=len(tok), tie_word_embeddings=tied, bos_token_id=None, eos_token_id=ids_of("<|im_end|>"),
                pad_token_id=tok.pad_token_id)
    config = config_cls(vision_config=vision, text_config=text,
                        image_token_id=ids_of("<|image_pad|>"), video_token_id=ids_of("<|video_pad|>"),
                        vision_start_token_id=ids_of("<|vision_start|>"), vision_end_token_id=ids_of("<|vision_end|>"),
                        tie_word_embeddings=tied)

    image = make_image(*image_size, seed=seed)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = processor(text=rendered, images=[image], return_tensors="pt")
    ids, mm, grid, pv = enc["input_ids"], enc["mm_token_type_ids"], enc["image_grid_thw"], enc["pixel_values"]
    n_image = int(grid[0].prod()) // MERGE**2
    # The processor's expansion is grid_t·grid_h·grid_w / merge² copies of <|image_pad|>.
    by_hand = tok(rendered.replace("<|image_pad|>", "<|image_pad|>" * n_image), return_tensors="pt")["input_ids"]
    assert torch.equal(ids, by_hand) and torch.equal(mm, (ids == config.image_token_id).to(mm.dtype))
    t, gh, gw = grid[0].tolist()
    resized = smart_resize(image.height, image.width, factor=PATCH * MERGE, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
    assert resized == (gh * PATCH, gw * PATCH) and t == 1
    inputs = dict(input_ids=ids, pixel_values=pv, image_grid_thw=grid, mm_token_type_ids=mm)

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

    # The merger's input is the last block's output in the tower's internal order; its output
    # (hooked before Qwen2.5-VL's own reverse permutation) likewise.
    blocks, merged = captured["blocks"], captured["merged"]
    blocks_internal = blocks
    windows = {}
    if "window_size" in vision:
        # The tower runs window by window (merge units permuted by window_index); put them back.
        order, cu_window = get_vision_window_index(grid, spatial_merge_size=MERGE, window_size=vision["window_size"],
                                                   patch_size=PATCH)
        back = torch.argsort(order)
        blocks = blocks.reshape(-1, MERGE**2, blocks.shape[-1])[back].reshape(-1, blocks.shape[-1])
        merged = merged[back]
        windows = dict(window_index=order.tolist(), cu_window_seqlens=cu_window.tolist())
    with torch.no_grad():
        features = model.model.get_image_features(pixel_values=pv, image_grid_thw=grid)
    features = getattr(features, "pooler_output", features)
    features = torch.cat(list(features)) if isinstance(features, (list, tuple)) else features
    assert (features - merged).abs().max() < 1e-6, "merger output differs from get_image_features"
    positions, delta = model.model.get_rope_index(ids, mm, grid)

    if bf16:
        model.to(torch.bfloat16)
    model.save_pretrained(out / "model")
    # Tokenizer and the flat preprocessor_config.json (the layout of the Qwen2-VL checkpoints on
    # the Hub); processor.save_pretrained would write a nested processor_config.json instead.
    tok.save_pretrained(out / "model")
    image_processor.save_pretrained(out / "model")
    (out / "model" / "generation_config.json").unlink(missing_ok=True)
    image.save(out / "image.png")

    tensors = {"pixel_values": pv.float().contiguous(), "vision_output": blocks.float().contiguous(),
               "vision_blocks_output": blocks.float().clone(),
               "connector_output": merged.float().contiguous(), "position_ids": positions[:, 0].contiguous(),
               "logits": logits.float().contiguous()}
    if windows:
        tensors["vision_blocks_output_window_order"] = blocks_internal.float().contiguous()
    save_file(tensors, out / "goldens.safetensors")

    # Informational: the torchvision image processor (transformers' default "fast" backend) resizes
    # differently from Pillow; the goldens use Pillow.
    fast = Qwen2VLImageProcessor(**proc_kwargs)(images=[image], return_tensors="pt")
    assert torch.equal(fast["image_grid_thw"], grid)
    fast_diff = (fast["pixel_values"] - pv).abs().max().item()

    ip = image_processor
    goldens = dict(
        fixture=name, family=config.model_type, architecture=type(model).__name__, prompt=prompt,
        rendered_prompt=rendered, input_ids=ids[0].tolist(), image_tokens=n_image,
        image_token_id=config.image_token_id, image_grid_thw=grid[0].tolist(),
        image_size=[image.width, image.height], resized_height=resized[0], resized_width=resized[1],
        positions=positions[:, 0].T.tolist(), rope_deltas=int(delta[0, 0]),
        vision_cu_seqlens=get_vision_cu_seqlens(grid).tolist(), **windows,
        greedy_tokens=tokens, greedy_text=tok.decode(tokens, skip_special_tokens=True), greedy_min_top2_gap=gap,
        max_new_tokens=MAX_NEW,
        image_processor=type(ip).__name__,
        processor=dict(min_pixels=ip.size["shortest_edge"], max_pixels=ip.size["longest_edge"], patch_size=ip.patch_size,
                       merge_size=ip.merge_size, temporal_patch_size=ip.temporal_patch_size,
                       image_mean=list(ip.image_mean), image_std=list(ip.image_std), rescale_factor=ip.rescale_factor,
                       resample=int(ip.resample), resample_name=PILImageResampling(ip.resample).name.lower(),
                       do_convert_rgb=ip.do_convert_rgb),
        torchvision_processor_pixel_max_diff=fast_diff,
        tensors=dict(
            vision_output="last vision block output before the merger, image patch order"
                          + (" (window reordering undone)" if windows else ""),
            vision_blocks_output="same as vision_output",
            **({"vision_blocks_output_window_order": "the same rows in the tower's internal window order"}
               if windows else {}),
            connector_output="merger output = image features fed to the decoder, image order",
            position_ids="int64 [3, seq] from get_rope_index (rows t, h, w)",
        ),
        torch=torch.__version__, transformers=__import__("transformers").__version__,
        torchvision=torchvision.__version__,
    )
    (out / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")

    again = model_cls.from_pretrained(out / "model", dtype=torch.float32).eval()
    with torch.no_grad():
        diff = (again(**inputs).logits[0] - logits).abs().max().item()
    assert diff < 1e-4, f"{name}: reloaded model differs from goldens by {diff}"
    print(f"{name}: grid={grid[0].tolist()} resized={resized} image_tokens={n_image} seq={ids.shape[1]} greedy={tokens} "
          f"min_gap={gap:.4f} reload_diff={diff:.1e} torchvision_pixels_diff={fast_diff:.3g}")


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


if __name__ == "__main__":
    run_fixtures(FIXTURES)
