#!/usr/bin/env python3
"""Build the tiny random-weight fixtures of the families beyond SmolVLM and their goldens.

Everything is made offline from config objects (no hub access), like make_fixtures.py, whose
helpers (training corpus, weight redraw, test image) this reuses. Per fixture, in
tests/fixtures/<name>/:

    model/               the standard Hugging Face layout written by save_pretrained
                         (config.json, model.safetensors, tokenizer files, chat template, and
                         for LLaVA processor_config.json)
    image.png            (LLaVA) the test image
    goldens.safetensors  logits [seq, vocab] of the prefill at every position; LLaVA also
                         pixel_values [3, H, W], vision_output [tokens, vision_hidden] (the
                         hidden state at vision_feature_layer, class token dropped with the
                         "default" strategy) and connector_output [tokens, text_hidden]
    goldens.json         family, architecture, prompt, rendered prompt (chat template, one user
                         turn, generation prompt), input ids (image tokens expanded), 10 greedy
                         tokens (KV cache, EOS ignored), their text, the smallest top-1/top-2 logit
                         gap met while decoding (the token test's slack), versions; LLaVA also the
                         image token id and count, feature layer, select strategy and the image
                         processor class

Each fixture is checked before it is kept: a seed is retried until every greedy step has a top-2
gap above MIN_GAP, bf16 fixtures are rounded to bf16 before the goldens are computed, the saved
directory is reloaded in float32 and must reproduce the logits (< 1e-4), and the checkpoint's tensor
names are checked (Qwen2 q/k/v biases and no o_proj bias, Phi's lm_head bias, tied Llama without
lm_head, the legacy LLaVA names).

Fixtures (weights redrawn away from the default init: norm weights in [0.5, 1.5], biases
~N(0, 0.2), matrices ~N(0, 1/fan_in), so RoPE, norm and bias bugs cannot hide):

    llama-tiny         LlamaForCausalLM, GQA 6/2, tied embeddings, f32
    qwen2-tiny         Qwen2ForCausalLM (q/k/v bias), GQA 4/2, untied, bf16, rope_theta 1e6
    phi-tiny           PhiForCausalLM (Phi-2: parallel block, partial rotary 0.5, gelu_new,
                       LayerNorm, biases, lm_head bias), f32
    llava-tiny         LlavaForConditionalGeneration: CLIP (3 layers, quick_gelu), feature
                       layer -2, "default" strategy, Llama decoder, bf16
    llava-tiny-legacy  LLaVA with feature layer -1, "full" strategy (class token kept), f32,
                       its tensors renamed to the llava-hf Hub layout of transformers 4
                       (vision_tower.vision_model.*, language_model.model.*, ...); transformers 5
                       must still load it (its key mapping drops "vision_model")

The image processor is CLIPImageProcessorPil (PIL resizing, bicubic); no torchvision is needed.

Run from the repository root (versions pinned in requirements.txt):
    /root/genvenv/bin/python tests/generator/make_family_fixtures.py --out tests/fixtures [--only NAME ...]
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPVisionConfig,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PhiConfig,
    PhiForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, PILImageResampling
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_fixtures import CORPUS, make_image, redraw_weights  # noqa: E402

# ChatML with string content (SmolLM2 / Qwen2.5 style); Qwen's inserts its default system turn.
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_CHATML = (
    "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    + CHATML
)
# Phi-2's documented QA format.
PHI_QA = "{% for m in messages %}Instruct: {{ m['content'] }}\nOutput:{% endfor %}"
# LLaVA-1.5's "USER: <image>\n... ASSISTANT:" over typed content parts, as llava-hf's template.
LLAVA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}USER: "
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>\n{% endif %}{% endfor %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %} "
    "{% else %}ASSISTANT: {% for c in m['content'] %}{{ c['text'] }}{% endfor %}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)
TEXT_PROMPT = "What is a vision-language model?"
MAX_NEW = 10
# Smallest top-1/top-2 gap accepted while decoding: wide enough that q8 weights (the packed
# round trip in tests/parity/families.rs) keep the greedy tokens.
MIN_GAP = 2e-2


def build_tokenizer(special: list[str], vocab_size: int = 400) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([CORPUS], trainer)
    return tok


def greedy(model, inputs: dict) -> tuple[list[int], float]:
    cfg = GenerationConfig(max_new_tokens=MAX_NEW, do_sample=False, eos_token_id=None, pad_token_id=0, bos_token_id=None)
    out = model.generate(**inputs, generation_config=cfg, output_logits=True, return_dict_in_generate=True)
    tokens = out.sequences[0, inputs["input_ids"].shape[1]:].tolist()
    gaps = [float(torch.topk(step[0].float(), 2).values.diff().abs()) for step in out.logits]
    assert len(tokens) == len(gaps) == MAX_NEW
    return tokens, min(gaps)


def round_bf16(model) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(torch.bfloat16).to(torch.float32))


def fresh(out: Path) -> Path:
    if out.exists():
        shutil.rmtree(out)
    (out / "model").mkdir(parents=True)
    return out


def checkpoint_names(out: Path) -> set[str]:
    with safe_open(out / "model" / "model.safetensors", "pt") as f:
        return set(f.keys())


def finish(out: Path, model, goldens: dict, tensors: dict, inputs: dict, model_cls) -> None:
    (out / "model" / "generation_config.json").unlink(missing_ok=True)
    save_file({k: v.contiguous().float() for k, v in tensors.items()}, out / "goldens.safetensors")
    goldens.update(torch=torch.__version__, transformers=__import__("transformers").__version__)
    (out / "goldens.json").write_text(json.dumps(goldens, indent=1) + "\n")
    # What Rust reads is the saved directory: it must load completely and reproduce the logits.
    again, info = model_cls.from_pretrained(out / "model", dtype=torch.float32, output_loading_info=True)
    again.eval()
    leftovers = {k: v for k, v in info.items() if v}
    assert not leftovers, f"{out.name}: reload left {leftovers}"
    with torch.no_grad():
        diff = (again(**inputs).logits[0] - tensors["logits"]).abs().max().item()
    assert diff < 1e-4, f"{out.name}: reloaded model differs from goldens by {diff}"
    print(f"{out.name}: seq={len(goldens['input_ids'])} greedy={goldens['greedy_tokens']} "
          f"min_gap={goldens['greedy_min_top2_gap']:.4f} reload_diff={diff:.1e}")


def text_fixture(out_root: Path, name: str, family: str, config_cls, model_cls, config: dict, template: str,
                 special: list[str], eos: str, seed: int, bf16: bool, expect: set[str], forbid: set[str]) -> None:
    """`expect` / `forbid`: tensor names that must / must not be in the saved checkpoint."""
    out = fresh(out_root / name)
    tok = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(special), bos_token=special[0], eos_token=eos)
    tok.chat_template = template
    cfg = config_cls(vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, **config)
    rendered = tok.apply_chat_template([{"role": "user", "content": TEXT_PROMPT}], add_generation_prompt=True, tokenize=False)
    inputs = dict(tok(rendered, return_tensors="pt"))
    for attempt in range(50):
        torch.manual_seed(seed * 1000 + attempt)
        model = model_cls(cfg).eval()
        redraw_weights(model, torch.Generator().manual_seed(seed * 1000 + attempt))
        if cfg.tie_word_embeddings:
            model.tie_weights()
        if bf16:
            round_bf16(model)
        with torch.no_grad():
            logits = model(**inputs).logits[0]
            tokens, gap = greedy(model, inputs)
        if gap > MIN_GAP:
            break
    else:
        raise SystemExit(f"{name}: no seed gave greedy margins above {MIN_GAP}")
    if bf16:
        model.to(torch.bfloat16)
    model.save_pretrained(out / "model")
    tok.save_pretrained(out / "model")
    names = checkpoint_names(out)
    assert expect <= names, f"{name}: missing {expect - names}"
    assert not (forbid & names), f"{name}: unexpected {forbid & names}"
    goldens = dict(fixture=name, family=family, architecture=type(model).__name__, prompt=TEXT_PROMPT, rendered_prompt=rendered,
                   input_ids=inputs["input_ids"][0].tolist(), greedy_tokens=tokens,
                   greedy_text=tok.decode(tokens, skip_special_tokens=True), greedy_min_top2_gap=gap, max_new_tokens=MAX_NEW)
    finish(out, model, goldens, {"logits": logits}, inputs, model_cls)


LEGACY_PREFIXES = ("vision_tower.vision_model.", "multi_modal_projector.", "language_model.model.",
                   "language_model.lm_head.")


def to_hub_layout(path: Path) -> dict[str, str]:
    """Rename a LLaVA checkpoint's tensors to llava-hf's transformers-4 Hub layout; returns old -> new.

    transformers 5.23 already writes language_model.model.*, language_model.lm_head.* and
    multi_modal_projector.* (it reverses its load-time mapping on save), but vision_tower.* without
    the CLIPVisionModel wrapper's "vision_model." that transformers 4 had. The model.* / lm_head.*
    forms (the in-memory names of transformers 5) are handled too, should a later version save them.
    """
    renames = [("model.vision_tower.vision_model.", "vision_tower.vision_model."),
               ("model.vision_tower.", "vision_tower.vision_model."),
               ("vision_tower.vision_model.", "vision_tower.vision_model."),
               ("vision_tower.", "vision_tower.vision_model."),
               ("model.multi_modal_projector.", "multi_modal_projector."),
               ("model.language_model.", "language_model.model."),
               ("lm_head.", "language_model.lm_head."),
               ("multi_modal_projector.", "multi_modal_projector."),
               ("language_model.", "language_model.")]
    tensors = load_file(path)
    out, mapping = {}, {}
    for key, value in tensors.items():
        old, repl = next((o, r) for o, r in renames if key.startswith(o))
        new = repl + key[len(old):]
        assert new.startswith(LEGACY_PREFIXES) and new not in out, f"{key} -> {new}"
        out[new], mapping[key] = value, new
    save_file(out, path, metadata={"format": "pt"})
    return mapping


def llava_fixture(out_root: Path, name: str, vision: dict, text: dict, strategy: str, layer: int,
                  image_size: tuple[int, int], prompt: str, seed: int, bf16: bool, hub_layout: bool,
                  min_distinct: int = 1) -> None:
    """`min_distinct`: seeds whose greedy tokens have fewer distinct values are also retried (a
    decode that repeats one token from the start says little about the KV cache)."""
    out = fresh(out_root / name)
    special = ["<unk>", "<s>", "</s>", "<image>", "<pad>"]
    tok = PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(special), unk_token="<unk>", bos_token="<s>",
                                  eos_token="</s>", pad_token="<pad>")
    side = vision["image_size"]
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": side}, crop_size={"height": side, "width": side},
                                            resample=PILImageResampling.BICUBIC, image_mean=OPENAI_CLIP_MEAN,
                                            image_std=OPENAI_CLIP_STD)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tok, patch_size=vision["patch_size"],
                               vision_feature_select_strategy=strategy, num_additional_image_tokens=1,
                               chat_template=LLAVA_TEMPLATE)
    tok = processor.tokenizer
    cfg = LlavaConfig(vision_config=CLIPVisionConfig(**vision), text_config=LlamaConfig(vocab_size=len(tok), **text),
                      image_token_id=tok.convert_tokens_to_ids("<image>"), vision_feature_layer=layer,
                      vision_feature_select_strategy=strategy, projector_hidden_act="gelu",
                      multimodal_projector_bias=True, tie_word_embeddings=False)
    image = make_image(*image_size, seed=seed)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
    rendered = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = dict(processor(text=rendered, images=[image], return_tensors="pt"))
    for attempt in range(50):
        torch.manual_seed(seed * 1000 + attempt)
        model = LlavaForConditionalGeneration(cfg).eval()
        redraw_weights(model, torch.Generator().manual_seed(seed * 1000 + attempt))
        if bf16:
            round_bf16(model)
        with torch.no_grad():
            hidden = model.model.vision_tower(inputs["pixel_values"], output_hidden_states=True).hidden_states[layer]
            vision_output = hidden[:, 1:] if strategy == "default" else hidden
            connector_output = model.model.multi_modal_projector(vision_output)
            # transformers' own path (get_image_features: the tower's hidden_states[layer], CLS dropped
            # for "default", then the projector) must agree with the stages taken apart above.
            features = model.model.get_image_features(pixel_values=inputs["pixel_values"], vision_feature_layer=layer,
                                                      vision_feature_select_strategy=strategy)
            features = getattr(features, "pooler_output", features)
            features = torch.cat(list(features)) if isinstance(features, (list, tuple)) else features
            assert (features.reshape(connector_output.shape) - connector_output).abs().max() < 1e-6
            patches = (vision["image_size"] // vision["patch_size"]) ** 2
            assert vision_output.shape == (1, patches + (strategy == "full"), vision["hidden_size"])
            logits = model(**inputs).logits[0]
            tokens, gap = greedy(model, inputs)
        if gap > MIN_GAP and len(set(tokens)) >= min_distinct:
            break
    else:
        raise SystemExit(f"{name}: no seed gave greedy margins above {MIN_GAP} and {min_distinct} distinct tokens")
    if bf16:
        model.to(torch.bfloat16)
    model.save_pretrained(out / "model")
    processor.save_pretrained(out / "model")
    saved = checkpoint_names(out)
    # Every tower layer is kept (also the ones past vision_feature_layer), and post_layernorm too,
    # although LLaVA reads hidden_states and never applies it.
    last = f"vision_tower.encoder.layers.{vision['num_hidden_layers'] - 1}.mlp.fc2.weight"
    assert {last, "vision_tower.post_layernorm.weight", "vision_tower.pre_layrnorm.weight",
            "multi_modal_projector.linear_1.bias", "language_model.lm_head.weight"} <= saved, sorted(saved)
    assert "vision_tower.embeddings.patch_embedding.bias" not in saved
    if hub_layout:
        mapping = to_hub_layout(out / "model" / "model.safetensors")
        assert all(k.startswith(LEGACY_PREFIXES) for k in checkpoint_names(out))
        renamed = sorted({(k.split(".")[0], v.split(".")[0] + "." + v.split(".")[1]) for k, v in mapping.items() if k != v})
        print(f"{name}: renamed to the legacy layout: {renamed}")
    image.save(out / "image.png")
    ids = inputs["input_ids"][0].tolist()
    goldens = dict(fixture=name, family="llava", architecture=type(model).__name__, prompt=prompt, rendered_prompt=rendered, input_ids=ids,
                   image_tokens=ids.count(cfg.image_token_id), image_token_id=cfg.image_token_id,
                   vision_feature_layer=layer, vision_feature_select_strategy=strategy,
                   image_processor=type(image_processor).__name__, greedy_tokens=tokens,
                   greedy_text=tok.decode(tokens, skip_special_tokens=True), greedy_min_top2_gap=gap, max_new_tokens=MAX_NEW)
    tensors = {"logits": logits, "pixel_values": inputs["pixel_values"][0], "vision_output": vision_output[0],
               "connector_output": connector_output[0]}
    finish(out, model, goldens, tensors, inputs, LlavaForConditionalGeneration)


FIXTURES = {
    "llama-tiny": lambda out: text_fixture(
        out, "llama-tiny", "llama", LlamaConfig, LlamaForCausalLM,
        dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=6, num_key_value_heads=2, intermediate_size=96,
             rope_theta=50000.0, rms_norm_eps=1e-5, max_position_embeddings=128, tie_word_embeddings=True),
        CHATML, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", seed=8, bf16=False,
        expect={"model.embed_tokens.weight"}, forbid={"lm_head.weight"}),
    "qwen2-tiny": lambda out: text_fixture(
        out, "qwen2-tiny", "qwen2", Qwen2Config, Qwen2ForCausalLM,
        dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=112,
             rope_theta=1e6, rms_norm_eps=1e-6, max_position_embeddings=128, tie_word_embeddings=False,
             use_sliding_window=False),
        QWEN_CHATML, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", seed=3, bf16=True,
        expect={"lm_head.weight"} | {f"model.layers.{i}.self_attn.{p}_proj.bias" for i in range(2) for p in "qkv"},
        forbid={f"model.layers.{i}.self_attn.o_proj.bias" for i in range(2)}),
    "phi-tiny": lambda out: text_fixture(
        out, "phi-tiny", "phi", PhiConfig, PhiForCausalLM,
        dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=112, partial_rotary_factor=0.5,
             hidden_act="gelu_new", layer_norm_eps=1e-5, qk_layernorm=False, max_position_embeddings=128,
             tie_word_embeddings=False),
        PHI_QA, ["<|endoftext|>"], "<|endoftext|>", seed=4, bf16=False,
        expect={"lm_head.weight", "lm_head.bias", "model.final_layernorm.bias", "model.layers.0.self_attn.dense.bias"},
        forbid={"model.layers.0.post_attention_layernorm.weight", "model.layers.0.self_attn.q_layernorm.weight"}),
    "llava-tiny": lambda out: llava_fixture(
        out, "llava-tiny",
        dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4, image_size=30,
             patch_size=6, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        dict(hidden_size=48, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
             rope_theta=10000.0, max_position_embeddings=256),
        "default", -2, (45, 61), "What is in this image?", seed=5, bf16=True, hub_layout=False),
    "llava-tiny-legacy": lambda out: llava_fixture(
        out, "llava-tiny-legacy",
        dict(hidden_size=48, intermediate_size=64, num_hidden_layers=4, num_attention_heads=3, image_size=24,
             patch_size=4, hidden_act="quick_gelu", layer_norm_eps=1e-5),
        dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, intermediate_size=80,
             rope_theta=10000.0, max_position_embeddings=256),
        "full", -1, (70, 40), "Describe the colours, please.", seed=7, bf16=False, hub_layout=True, min_distinct=4),
}


def run_fixtures(fixtures: dict) -> None:
    """The command line of a fixture generator: `--out DIR`, `--only NAME...`."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures")
    ap.add_argument("--only", nargs="*", choices=sorted(fixtures))
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.only or fixtures:
        fixtures[name](args.out)


if __name__ == "__main__":
    run_fixtures(FIXTURES)
