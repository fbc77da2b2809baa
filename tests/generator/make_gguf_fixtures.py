#!/usr/bin/env python3
"""Build the GGUF fixtures: webvlm's tiny SmolVLM checkpoints as llama.cpp ships SmolVLM.

llama.cpp splits a SmolVLM checkpoint into two GGUF files: the text decoder (`general.architecture
= llama`) and an `mmproj` file with the vision tower and connector (`general.architecture = clip`,
`clip.projector_type = idefics3`). This script converts the committed Hugging Face fixtures
(`tests/fixtures/smolvlm-tiny-{split,single}/model`) the way llama.cpp's `convert_hf_to_gguf.py`
does (LlamaModel for the text, SmolVLMModel for the mmproj):

* tensor names come from gguf-py's own `TensorNameMap` (the table the converter uses), after the
  converter's `text_model.` strip for the decoder;
* the rows of every Q and K projection are permuted with the converter's `LlamaModel.permute`
  (n_head for Q, n_head_kv for K), which interleaves the two rotary halves of each head;
* 1-D tensors and the vision embeddings are F32, as the converter forces;
* metadata keys are those the converter writes (llama.* / clip.vision.* / tokenizer.ggml.*).

On top of what the converter would do, tensors are stored in a deliberate mix of F32, F16, BF16,
Q8_0, Q4_0 and Q4_1 (quantised with gguf-py's `gguf.quants.quantize`, bit-exact with ggml), so that
one file exercises every decoder path. Outputs, under `--out` (default tests/fixtures/gguf):

    smolvlm-tiny-split/text.gguf        GGUF v3, untied lm_head, all six tensor types
    smolvlm-tiny-split/mmproj.gguf      GGUF v3
    smolvlm-tiny-split/mmproj-legacy-ffn.gguf
                                        the same vision tower with ffn_up/ffn_down swapped, the
                                        legacy naming clip.cpp detects by shape and swaps back
    smolvlm-tiny-split/expected.safetensors
                                        for every quantised tensor, keyed by its Hugging Face name:
                                        gguf-py's dequantisation of the stored blocks, in Hugging
                                        Face shape and row order (Q/K un-permuted)
    smolvlm-tiny-single/text.gguf       GGUF v2 (version field rewritten), tied (no output.weight),
                                        BF16/F16/F32 only (its widths are not multiples of 32)
    smolvlm-tiny-single/mmproj.gguf     GGUF v3
    qwen2-tiny/model.gguf               the text-only Qwen2 fixture (tests/fixtures/qwen2-tiny) as
                                        llama.cpp's Qwen2Model writes it: arch `qwen2`, Q/K rows
                                        NOT permuted, q/k/v biases, BF16 matrices, F32 vectors,
                                        tokenizer.ggml.pre = qwen2
    qwen2-tiny/pretokenized.json        ids of sample strings under the qwen2 pre-tokenizer (the
                                        Hugging Face tokenizers library with Qwen2's split regex
                                        over the same BPE), which the GGUF tokenizer must match
    phi-tiny/model.gguf                 the text-only Phi fixture (tests/fixtures/phi-tiny) as
                                        llama.cpp's Phi2Model writes it: arch `phi2`, separate
                                        q/k/v, rope.dimension_count = the partial rotary width,
                                        LayerNorm epsilon, F32, tokenizer.ggml.pre = phi-2
    llava-tiny/text.gguf, mmproj.gguf   the LLaVA fixture as llama.cpp ships LLaVA-1.5: the decoder
                                        as LlamaModel writes it (Q/K permuted), the CLIP tower and
                                        projector as the legacy `convert_image_encoder_to_gguf.py`
                                        writes them (projector `mlp`, `mm.0`/`mm.2`, fc1 named
                                        `ffn_down`, layers after the feature layer left out)
    llava-tiny/text-no-image-token.gguf the same decoder with `<image>` renamed in the vocabulary,
                                        as in files converted from the original LLaVA checkpoints
    qwen2-vl-tiny/, qwen2_5-vl-tiny/    text.gguf (arch `qwen2vl`, rope.dimension_sections) and
                                        mmproj.gguf as Qwen2VLVisionModel writes it (q/k/v and the
                                        Conv3d frames split, `qwen2vl_merger` / `qwen2.5vl_merger`)
    qwen2-vl-tiny/mmproj-q8.gguf        the same tower with Q8_0 matrices, no pixel-limit keys
    spm-vocab/vocab.gguf, expected.json a SentencePiece BPE vocabulary (`tokenizer.ggml.model =
                                        llama`, trained here with byte fallback) and the ids the
                                        sentencepiece library gives for sample strings
    valid/align64.gguf                  general.alignment = 64, hand-written
    broken/*.gguf                       one file per failure the reader must name (see BROKEN)

Run (versions pinned in requirements.txt next to this file):
    python tests/generator/make_gguf_fixtures.py
"""

import argparse
import json
import re
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from safetensors.torch import load_file

import gguf
from gguf import GGMLQuantizationType as T

ROOT = Path(__file__).resolve().parents[2]
HF_FIXTURES = ROOT / "tests" / "fixtures"

# Per-fixture storage type of each GGUF tensor (by GGUF name). Anything not listed: 1-D tensors
# and vision embeddings F32 (as the converter forces), other tensors the fixture's default.
SPLIT_TEXT_TYPES = {
    "token_embd.weight": T.F16,
    "output.weight": T.Q8_0,
    "blk.0.attn_q.weight": T.F32,  # un-permutation checked exactly against the HF tensor
    "blk.0.attn_k.weight": T.F32,
    "blk.0.attn_v.weight": T.Q4_0,
    "blk.0.attn_output.weight": T.Q4_1,
    "blk.0.ffn_gate.weight": T.Q8_0,
    "blk.0.ffn_up.weight": T.Q4_0,
    "blk.0.ffn_down.weight": T.Q4_1,
    "blk.1.attn_q.weight": T.Q8_0,  # permuted rows of a quantised matrix
    "blk.1.attn_k.weight": T.Q4_1,
    "blk.1.attn_v.weight": T.F16,
    "blk.1.attn_output.weight": T.F32,
    "blk.1.ffn_gate.weight": T.F16,
    "blk.1.ffn_up.weight": T.F32,
    "blk.1.ffn_down.weight": T.Q8_0,
}
SPLIT_MMPROJ_TYPES = {
    "v.blk.0.attn_q.weight": T.Q8_0,
    "v.blk.0.attn_k.weight": T.Q4_1,
    "v.blk.0.attn_v.weight": T.Q4_0,
    "v.blk.0.attn_out.weight": T.F16,
    "v.blk.0.ffn_up.weight": T.Q8_0,
    "v.blk.0.ffn_down.weight": T.Q4_1,
    "mm.model.fc.weight": T.Q4_0,
}
SINGLE_TEXT_TYPES = {
    "token_embd.weight": T.BF16,
    "blk.0.attn_q.weight": T.BF16,
    "blk.0.attn_k.weight": T.BF16,
    "blk.1.attn_q.weight": T.F32,
    "blk.1.attn_k.weight": T.F16,
    "blk.0.ffn_gate.weight": T.F16,
}
SINGLE_MMPROJ_TYPES = {
    "v.blk.0.attn_q.weight": T.BF16,
    "v.blk.1.ffn_up.weight": T.F32,
    "mm.model.fc.weight": T.F16,
}

QUANTISED = (T.Q8_0, T.Q4_0, T.Q4_1)


def permute(w: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """llama.cpp's `LlamaModel.permute`: within each head, row `half·(hd/2) + i` moves to `2i + half`."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Inverse of `permute` with the effective head count."""
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def load_hf(model_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor of a (possibly sharded) checkpoint as f32 numpy (bf16 is widened exactly)."""
    out = {}
    for f in sorted(model_dir.glob("*.safetensors")):
        for name, t in load_file(f).items():
            out[name] = t.float().numpy()
    return out


def encode(data: np.ndarray, qtype: T) -> tuple[np.ndarray, T | None]:
    """Array to hand to GGUFWriter.add_tensor, and its raw dtype."""
    data = np.ascontiguousarray(data, dtype=np.float32)
    if qtype == T.F32:
        return data, None
    if qtype == T.F16:
        return data.astype(np.float16), None
    return gguf.quants.quantize(data, qtype), qtype


def write(writer: gguf.GGUFWriter, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file(path)
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def add_tokenizer(w: gguf.GGUFWriter, model_dir: Path, text_cfg: dict, pre: str = "smollm",
                  renames: dict | None = None) -> None:
    """tokenizer.ggml.* as the converter's `_set_vocab_gpt2` writes them; `renames` replaces
    token strings (to make a vocabulary without some token)."""
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    added = {t["id"]: t for t in tok["added_tokens"]}
    n = text_cfg["vocab_size"]
    reverse = {i: s for s, i in vocab.items()}
    for i, t in added.items():
        reverse[i] = t["content"]
    for i, token in reverse.items():
        reverse[i] = (renames or {}).get(token, token)
    tokens, types = [], []
    for i in range(n):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.CONTROL if i in added else gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(text_cfg["bos_token_id"])
    w.add_eos_token_id(text_cfg["eos_token_id"])
    w.add_pad_token_id(text_cfg["pad_token_id"])
    w.add_chat_template((model_dir / "chat_template.jinja").read_text())


def decoder_writer(arch: str, name: str, tc: dict) -> gguf.GGUFWriter:
    """A GGUF writer with the decoder hyperparameters every converter writes first."""
    w = gguf.GGUFWriter(None, arch)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(name)
    w.add_context_length(tc["max_position_embeddings"])
    w.add_embedding_length(tc["hidden_size"])
    w.add_block_count(tc["num_hidden_layers"])
    w.add_feed_forward_length(tc["intermediate_size"])
    w.add_head_count(tc["num_attention_heads"])
    w.add_head_count_kv(tc["num_key_value_heads"])
    w.add_rope_freq_base(tc.get("rope_theta") or tc["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(tc["rms_norm_eps"])
    return w


def text_gguf(model_dir: Path, hf: dict, types: dict, path: Path, version: int = 3) -> dict:
    """The decoder file. Returns {gguf_name: (hf_name, qtype, permute_heads or None)}."""
    cfg = json.loads((model_dir / "config.json").read_text())
    tc = cfg["text_config"]
    n_layer, n_head, n_kv = tc["num_hidden_layers"], tc["num_attention_heads"], tc["num_key_value_heads"]
    w = decoder_writer("llama", "smolvlm-tiny", tc)
    w.add_key_length(tc["head_dim"])
    w.add_value_length(tc["head_dim"])
    w.add_vocab_size(tc["vocab_size"])
    w.add_rope_dimension_count(tc["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    add_tokenizer(w, model_dir, tc)

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    plan = {}
    for hf_name in sorted(hf):
        if not (hf_name.startswith("model.text_model.") or hf_name == "lm_head.weight"):
            continue
        conv_name = hf_name.replace("text_model.", "")  # the converter's SmolVLM strip
        name = tmap.get_name(conv_name, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf_name
        data = hf[hf_name]
        heads = None
        if conv_name.endswith(("q_proj.weight", "q_proj.bias")):
            data, heads = permute(data, n_head, n_head), n_head
        elif conv_name.endswith(("k_proj.weight", "k_proj.bias")):
            data, heads = permute(data, n_head, n_kv), n_kv
        if heads is not None:
            assert np.array_equal(unpermute(data, heads), hf[hf_name])
        qtype = T.F32 if data.ndim == 1 else types.get(name, T.F16)
        arr, raw = encode(data, qtype)
        w.add_tensor(name, arr, raw_dtype=raw)
        plan[name] = (hf_name, qtype, heads)
    write(w, path)
    if version != 3:
        blob = bytearray(path.read_bytes())
        blob[4:8] = struct.pack("<I", version)  # v2 and v3 share one layout (v3 added big-endian)
        path.write_bytes(bytes(blob))
    return plan


QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_SAMPLES = ["What is a vision-language model?", "Numbers 2024 and 42, (ok)!\n\nNew   line", "It's ü-ber's"]


def qwen2_gguf(model_dir: Path, hf: dict, out: Path) -> None:
    """A text-only Qwen2 checkpoint as llama.cpp's `Qwen2Model` converts it."""
    cfg = json.loads((model_dir / "config.json").read_text())
    n_layer = cfg["num_hidden_layers"]
    w = decoder_writer("qwen2", "qwen2-tiny", cfg)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_BF16)
    tc = dict(cfg, pad_token_id=cfg.get("pad_token_id") or cfg["eos_token_id"])
    add_tokenizer(w, model_dir, tc, pre="qwen2")
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, n_layer)
    for hf_name in sorted(hf):
        name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf_name
        qtype = T.F32 if hf[hf_name].ndim == 1 else T.BF16
        arr, raw = encode(hf[hf_name], qtype)
        w.add_tensor(name, arr, raw_dtype=raw)
    write(w, out / "model.gguf")

    # What the qwen2 pre-tokenizer must give, from the tokenizers library itself.
    from tokenizers import Regex, Tokenizer, pre_tokenizers
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    samples = {s: tok.encode(s, add_special_tokens=False).ids for s in QWEN2_SAMPLES}
    (out / "pretokenized.json").write_text(json.dumps(samples, indent=1) + "\n")


def phi2_gguf(model_dir: Path, hf: dict, out: Path) -> None:
    """A text-only Phi checkpoint as llama.cpp's `Phi2Model` converts it."""
    cfg = json.loads((model_dir / "config.json").read_text())
    n_layer, n_head = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    head_dim = cfg["hidden_size"] // n_head
    factor = cfg.get("partial_rotary_factor") or cfg["rope_parameters"]["partial_rotary_factor"]
    w = gguf.GGUFWriter(None, "phi2")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("phi-tiny")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(n_layer)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_rope_dimension_count(int(factor * head_dim))
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    tc = dict(cfg, pad_token_id=cfg.get("pad_token_id") or cfg["eos_token_id"])
    add_tokenizer(w, model_dir, tc, pre="phi-2")
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.PHI2, n_layer)
    for hf_name in sorted(hf):
        name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf_name
        w.add_tensor(name, np.ascontiguousarray(hf[hf_name], dtype=np.float32))
    write(w, out / "model.gguf")


def mmproj_gguf(model_dir: Path, hf: dict, types: dict, path: Path, legacy_ffn: bool = False) -> dict:
    """The vision tower + connector file, as SmolVLMModel(MmprojModel) writes it."""
    cfg = json.loads((model_dir / "config.json").read_text())
    vc, tc = cfg["vision_config"], cfg["text_config"]
    proc = json.loads((model_dir / "processor_config.json").read_text())["image_processor"]
    w = gguf.GGUFWriter(None, "clip")
    w.add_type(gguf.GGUFType.MMPROJ)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(tc["hidden_size"])
    w.add_vision_image_size(vc["image_size"])
    w.add_vision_patch_size(vc["patch_size"])
    w.add_vision_embedding_length(vc["hidden_size"])
    w.add_vision_feed_forward_length(vc["intermediate_size"])
    w.add_vision_block_count(vc["num_hidden_layers"])
    w.add_vision_head_count(vc["num_attention_heads"])
    w.add_vision_image_mean(proc["image_mean"])
    w.add_vision_image_std(proc["image_std"])
    w.add_clip_projector_type(gguf.VisionProjectorType.IDEFICS3)
    w.add_vision_attention_layernorm_eps(vc.get("layer_norm_eps", 1e-5))
    w.add_vision_projector_scale_factor(cfg.get("scale_factor", 2))
    w.add_vision_use_gelu(True)
    w.add_vision_preproc_image_size(proc.get("size", {}).get("longest_edge", vc["image_size"]))

    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, vc["num_hidden_layers"])
    plan = {}
    for hf_name in sorted(hf):
        if not ("vision_model" in hf_name or "model.connector" in hf_name):
            continue
        name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf_name
        if legacy_ffn:
            name = name.replace(".ffn_up.", ".ffn_TMP.").replace(".ffn_down.", ".ffn_up.").replace(".ffn_TMP.", ".ffn_down.")
        data = hf[hf_name]
        forced_f32 = data.ndim == 1 or ".embeddings." in hf_name
        qtype = T.F32 if forced_f32 or legacy_ffn else types.get(name, T.F16)
        arr, raw = encode(data, qtype)
        w.add_tensor(name, arr, raw_dtype=raw)
        plan[name] = (hf_name, qtype, None)
    write(w, path)
    return plan


def vlm_text_gguf(model_dir: Path, hf: dict, arch: str, path: Path, renames: dict | None = None) -> None:
    """The decoder of a LLaVA (`llama`, Q/K permuted) or Qwen2-VL / Qwen2.5-VL (`qwen2vl`, rope
    sections) checkpoint, as the converter's LlamaModel / Qwen2VLModel write it: F16 matrices
    for bf16 checkpoints, F32 for f32 ones (both exact), F32 vectors. `renames` as in
    `add_tokenizer`."""
    cfg = json.loads((model_dir / "config.json").read_text())
    tc = cfg["text_config"]
    n_layer, n_head, n_kv = tc["num_hidden_layers"], tc["num_attention_heads"], tc["num_key_value_heads"]
    rope = tc.get("rope_parameters") or {}
    w = decoder_writer(arch, model_dir.parent.name, tc)
    if arch == "qwen2vl":
        w.add_rope_dimension_sections(list(rope["mrope_section"]) + [0])
    else:
        w.add_rope_dimension_count(tc["head_dim"])
    matrix = T.F32 if cfg.get("dtype") == "float32" else T.F16
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if matrix == T.F32 else gguf.LlamaFileType.MOSTLY_F16)
    text_cfg = dict(tc, bos_token_id=tc.get("bos_token_id") or 0, pad_token_id=tc.get("pad_token_id") or 0)
    add_tokenizer(w, model_dir, text_cfg, pre="qwen2" if arch == "qwen2vl" else "gpt2", renames=renames)
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2VL, n_layer)
    for hf_name in sorted(hf):
        if hf_name.startswith(("visual.", "vision_tower.", "multi_modal_projector.")):
            continue
        conv_name = hf_name.removeprefix("language_model.")  # the converter's LLaVA strip
        name = tmap.get_name(conv_name, try_suffixes=(".weight", ".bias"))
        assert name is not None, hf_name
        data = hf[hf_name]
        if arch == "llama" and conv_name.endswith("q_proj.weight"):
            data = permute(data, n_head, n_head)
        elif arch == "llama" and conv_name.endswith("k_proj.weight"):
            data = permute(data, n_head, n_kv)
        arr, raw = encode(data, T.F32 if data.ndim == 1 else matrix)
        w.add_tensor(name, arr, raw_dtype=raw)
    write(w, path)


def legacy_clip_name(hf_name: str) -> str:
    """llama.cpp's legacy LLaVA image-encoder names (`convert_image_encoder_to_gguf.py` after
    `llava_surgery`): `v.` tower, `fc1` written as `ffn_down` and `fc2` as `ffn_up`, the
    projector's two linears as `mm.0` / `mm.2`."""
    if hf_name.startswith("multi_modal_projector."):
        return hf_name.replace("multi_modal_projector.linear_1", "mm.0").replace("multi_modal_projector.linear_2", "mm.2")
    name = hf_name.replace("vision_tower.", "v.", 1)
    for old, new in [("embeddings.class_embedding", "class_embd"), ("embeddings.patch_embedding", "patch_embd"),
                     ("embeddings.position_embedding", "position_embd"), ("pre_layrnorm", "pre_ln"),
                     ("encoder.layers.", "blk."), ("self_attn.out_proj", "attn_out"), ("self_attn.q_proj", "attn_q"),
                     ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"), ("layer_norm1", "ln1"),
                     ("layer_norm2", "ln2"), ("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up")]:
        name = name.replace(old, new)
    return name


def llava_mmproj_gguf(model_dir: Path, hf: dict, path: Path) -> None:
    """LLaVA-1.5's CLIP tower + MLP projector as the legacy converter writes it: projector type
    `mlp`, the layers after `vision_feature_layer` and `post_layernorm` left out (block_count and
    `clip.vision.feature_layer` say how many run), `clip.use_gelu` false for quick_gelu, F16
    matrices and patch conv, F32 vectors."""
    cfg = json.loads((model_dir / "config.json").read_text())
    vc = cfg["vision_config"]
    proc = json.loads((model_dir / "processor_config.json").read_text())["image_processor"]
    layers = vc["num_hidden_layers"]
    feature = cfg["vision_feature_layer"]
    feature = feature if feature >= 0 else layers + feature + 1  # hidden_states index, non-negative
    w = gguf.GGUFWriter(None, "clip")
    w.add_bool("clip.has_text_encoder", False)
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_file_type(1)
    w.add_name(model_dir.parent.name)
    w.add_string("clip.projector_type", "mlp")
    w.add_uint32("clip.vision.image_size", vc["image_size"])
    w.add_uint32("clip.vision.patch_size", vc["patch_size"])
    w.add_uint32("clip.vision.embedding_length", vc["hidden_size"])
    w.add_uint32("clip.vision.feed_forward_length", vc["intermediate_size"])
    w.add_uint32("clip.vision.projection_dim", vc["projection_dim"])
    w.add_uint32("clip.vision.attention.head_count", vc["num_attention_heads"])
    w.add_float32("clip.vision.attention.layer_norm_epsilon", vc["layer_norm_eps"])
    w.add_uint32("clip.vision.block_count", feature)
    w.add_array("clip.vision.feature_layer", [feature])
    w.add_array("clip.vision.image_mean", proc["image_mean"])
    w.add_array("clip.vision.image_std", proc["image_std"])
    w.add_bool("clip.use_gelu", vc["hidden_act"] == "gelu")
    for hf_name in sorted(hf):
        if not hf_name.startswith(("vision_tower.", "multi_modal_projector.")) or "post_layernorm" in hf_name:
            continue
        m = re.search(r"encoder\.layers\.(\d+)\.", hf_name)
        if m and int(m.group(1)) >= feature:
            continue
        data = hf[hf_name]
        arr, raw = encode(data, T.F16 if data.ndim >= 2 else T.F32)
        w.add_tensor(legacy_clip_name(hf_name), arr, raw_dtype=raw)
    write(w, path)


def qwen_vl_mmproj_gguf(model_dir: Path, hf: dict, path: Path, q8: bool = False) -> None:
    """A Qwen2-VL / Qwen2.5-VL tower + merger as `Qwen2VLVisionModel` writes it: fused qkv split
    into attn_q/k/v, the Conv3d patch kernel split into `v.patch_embd.weight` (t = 0) and
    `v.patch_embd.weight.1` (t = 1), the merger as `v.post_ln` / `mm.0` / `mm.2`, projector type
    `qwen2vl_merger` or `qwen2.5vl_merger` (with `clip.use_silu` and `n_wa_pattern`). On top,
    `clip.vision.image_{min,max}_pixels` and `window_size` carry the fixture's processor limits
    and window (keys clip.cpp reads; the converter leaves them to clip.cpp's defaults). With
    `q8`, every matrix whose rows are whole Q8_0 blocks is Q8_0 and the pixel keys are left out."""
    cfg = json.loads((model_dir / "config.json").read_text())
    vc = cfg["vision_config"]
    proc = json.loads((model_dir / "preprocessor_config.json").read_text())
    qwen25 = cfg["model_type"] == "qwen2_5_vl"
    embed = vc["hidden_size"] if qwen25 else vc["embed_dim"]
    matrix = T.F32 if cfg.get("dtype") == "float32" else T.F16
    w = gguf.GGUFWriter(None, "clip")
    w.add_type(gguf.GGUFType.MMPROJ)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if matrix == T.F32 else gguf.LlamaFileType.MOSTLY_F16)
    w.add_clip_has_vision_encoder(True)
    w.add_vision_projection_dim(cfg["text_config"]["hidden_size"])
    w.add_vision_image_size(vc.get("image_size", 560))
    w.add_vision_patch_size(vc["patch_size"])
    w.add_vision_embedding_length(embed)
    # The converter writes Qwen2-VL's `hidden_size` (the merger's output width) here.
    w.add_vision_feed_forward_length(vc["intermediate_size"] if qwen25 else vc["hidden_size"])
    w.add_vision_block_count(vc["depth"])
    w.add_vision_head_count(vc["num_heads"])
    w.add_vision_image_mean(proc["image_mean"])
    w.add_vision_image_std(proc["image_std"])
    if qwen25:
        w.add_clip_projector_type(gguf.VisionProjectorType.QWEN25VL)
        w.add_vision_use_silu(True)
        full = vc["fullatt_block_indexes"]
        w.add_vision_n_wa_pattern(full[0] + 1)
        w.add_vision_window_size(vc["window_size"])
    else:
        w.add_clip_projector_type(gguf.VisionProjectorType.QWEN2VL)
    w.add_vision_attention_layernorm_eps(cfg.get("rms_norm_eps", 1e-6))
    if not q8:
        w.add_vision_min_pixels(proc["size"]["shortest_edge"])
        w.add_uint32("clip.vision.image_max_pixels", proc["size"]["longest_edge"])
    # Enough block ids for `mm.2` too (the real towers are deeper than the merger index).
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, max(vc["depth"], 3))

    def add(name: str, data: np.ndarray) -> None:
        qtype = T.F32 if data.ndim == 1 or ".position_embd." in name else matrix
        if q8 and data.ndim == 2 and data.shape[1] % 32 == 0:
            qtype = T.Q8_0
        arr, raw = encode(data, qtype)
        w.add_tensor(name, arr, raw_dtype=raw)

    for hf_name in sorted(hf):
        if not hf_name.startswith("visual."):
            continue
        data = hf[hf_name]
        if ".qkv." in hf_name:
            c = data.shape[0] // 3
            for i, part in enumerate("qkv"):
                add(tmap.get_name(hf_name.replace("qkv", part), try_suffixes=(".weight", ".bias")), data[i * c:(i + 1) * c])
        elif "patch_embed.proj.weight" in hf_name:
            assert data.shape[2] == 2, "the converter splits a temporal patch of 2"
            for t, name in enumerate(["v.patch_embd.weight", "v.patch_embd.weight.1"]):
                arr, raw = encode(np.ascontiguousarray(data[:, :, t]), matrix)
                w.add_tensor(name, arr, raw_dtype=raw)
        else:
            name = tmap.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            assert name is not None, hf_name
            add(name, data)
    write(w, path)


SPM_CORPUS = """\
The quick brown fox jumps over the lazy dog. A vision-language model answers questions about images.
What is in this picture? There are 3 cats and 12 dogs sitting on 2024 chairs, said the assistant.
Über naïve café: 東京 is a city. Emojis like 🙂 are bytes to a small vocabulary.
USER: <image>
Describe the photo in detail. ASSISTANT: The photo shows a red bicycle leaning on a wall.
   Indented    text with   many spaces, tabs\tand
newlines.
"""
SPM_SAMPLES = [
    "Hello world",
    " leading space and  double  spaces ",
    "Numbers 2024 and 3.14, (ok)!",
    "Über naïve café 東京 🙂 ünknown ЖЖ",
    "line one\nline two\ttab",
    "USER: Describe the photo. ASSISTANT:",
    "",
]
SPM_SPECIAL_SAMPLES = ["<s>USER: hi</s>", "a<s>b", "<s></s>", "x </s> y"]


def spm_gguf(out: Path) -> None:
    """A SentencePiece BPE vocabulary (Llama / Vicuna style: byte fallback, split digits, no
    normalisation, dummy prefix) as the converter's `_set_vocab_sentencepiece` writes it:
    pieces, scores and token types, `tokenizer.ggml.model = llama`. `expected.json` holds the
    ids the sentencepiece library gives for sample strings, and for strings with control tokens
    what llama.cpp does (split on them, encode each piece of text with its own dummy prefix)."""
    import sentencepiece as spm
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(SPM_CORPUS.splitlines() * 4), model_prefix=f"{tmp}/spm", vocab_size=360,
            model_type="bpe", byte_fallback=True, split_digits=True, character_coverage=1.0,
            normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True,
            allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            minloglevel=2, num_threads=1,
        )
        sp = spm.SentencePieceProcessor(model_file=f"{tmp}/spm.model")
    n = sp.get_piece_size()
    tokens = [sp.id_to_piece(i) for i in range(n)]
    scores = [sp.get_score(i) for i in range(n)]
    types = []
    for i in range(n):
        if sp.is_unknown(i):
            types.append(gguf.TokenType.UNKNOWN)
        elif sp.is_control(i):
            types.append(gguf.TokenType.CONTROL)
        elif sp.is_byte(i):
            types.append(gguf.TokenType.BYTE)
        elif sp.is_unused(i):
            types.append(gguf.TokenType.UNUSED)
        else:
            types.append(gguf.TokenType.NORMAL)
    w = gguf.GGUFWriter(None, "llama")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name("spm-vocab")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_space_prefix(True)
    w.add_tensor("token_embd.weight", np.zeros((n, 4), dtype=np.float32))
    out.mkdir(parents=True, exist_ok=True)
    write(w, out / "vocab.gguf")

    special = {"<s>": 1, "</s>": 2}

    def llama_cpp(text: str) -> list[int]:
        ids = []
        for part in re.split(r"(<s>|</s>)", text):
            if part in special:
                ids.append(special[part])
            elif part:
                ids.extend(sp.encode(part))
        return ids

    expected = {
        "sentencepiece": {s: sp.encode(s) for s in SPM_SAMPLES},
        "with_control_tokens": {s: llama_cpp(s) for s in SPM_SPECIAL_SAMPLES},
        "decoded": {s: sp.decode(sp.encode(s)) for s in SPM_SAMPLES},
    }
    (out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")


def expectations(path: Path, plan: dict) -> dict[str, np.ndarray]:
    """gguf-py's dequantisation of every quantised tensor of a written file, in HF order."""
    out = {}
    reader = gguf.GGUFReader(path)
    for t in reader.tensors:
        hf_name, qtype, heads = plan[t.name]
        assert t.tensor_type == qtype, (t.name, t.tensor_type, qtype)
        if qtype not in QUANTISED:
            continue
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        values = gguf.quants.dequantize(np.asarray(t.data), qtype).astype(np.float32).reshape(shape)
        if heads is not None:
            values = unpermute(values, heads)
        out[hf_name] = np.ascontiguousarray(values)
    return out


# --- hand-written files: control over every byte ---------------------------------------------

U32, I32, F32V, BOOL, STRING, ARRAY, U64 = 4, 5, 6, 7, 8, 9, 10


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_value(ty: int, v) -> bytes:
    if ty == U32:
        return struct.pack("<I", v)
    if ty == I32:
        return struct.pack("<i", v)
    if ty == F32V:
        return struct.pack("<f", v)
    if ty == BOOL:
        return struct.pack("<?", v)
    if ty == STRING:
        return gguf_string(v)
    if ty == U64:
        return struct.pack("<Q", v)
    if ty == ARRAY:
        item_ty, items = v
        return struct.pack("<IQ", item_ty, len(items)) + b"".join(gguf_value(item_ty, i) for i in items)
    raise ValueError(ty)


def raw_gguf(kv, tensors, *, version=3, alignment=32, magic=b"GGUF", offsets=None) -> bytes:
    """kv: [(key, type, value)]; tensors: [(name, ne innermost-first, ggml type, data bytes)]."""
    head = magic + struct.pack("<IQQ", version, len(tensors), len(kv))
    for key, ty, v in kv:
        head += gguf_string(key) + struct.pack("<I", ty) + gguf_value(ty, v)
    data, auto_offsets = b"", []
    for _, _, _, blob in tensors:
        data += b"\0" * ((-len(data)) % alignment)
        auto_offsets.append(len(data))
        data += blob
    offsets = offsets or auto_offsets
    for (name, ne, ty, _), off in zip(tensors, offsets):
        head += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        head += struct.pack("<IQ", int(ty), off)
    head += b"\0" * ((-len(head)) % alignment)
    return head + data


def f32_bytes(values) -> bytes:
    return np.asarray(values, dtype=np.float32).tobytes()


LLAMA = [("general.architecture", STRING, "llama")]
EMBD = ("token_embd.weight", [4, 2], T.F32, f32_bytes(np.arange(8) * 0.25 - 1))


def broken_files() -> dict[str, bytes]:
    """Each file is named after the error the reader must give (see the Rust tests)."""
    ok = raw_gguf(LLAMA, [EMBD])
    q4k = ("token_embd.weight", [256, 1], T.Q4_K, bytes(144))
    # Q4_0 block with d = 60000: m = -8·d = -480000 does not fit in f16.
    q4_0_big = ("blk.0.attn_v.weight", [32, 1], T.Q4_0, np.float16(60000).tobytes() + bytes(range(16)))
    q8_odd = ("token_embd.weight", [48, 1], T.Q8_0, bytes(34 * 2))
    return {
        "bad_magic": b"GGML" + ok[4:],
        "version1": ok[:4] + struct.pack("<I", 1) + ok[8:],
        "truncated": ok[:40],  # cuts the first metadata key
        "data_past_end": ok[:-4],  # the tensor's last f32 is missing
        "offset_past_end": raw_gguf(LLAMA, [EMBD], offsets=[4096]),
        "misaligned": raw_gguf(LLAMA, [EMBD, ("output_norm.weight", [2], T.F32, f32_bytes([1, 2]))], offsets=[0, 36]),
        "bad_alignment": raw_gguf(LLAMA + [("general.alignment", U32, 24)], [EMBD], alignment=24),
        "duplicate_key": raw_gguf(LLAMA + LLAMA, [EMBD]),
        "bad_block_shape": raw_gguf(LLAMA, [q8_odd]),
        "unsupported_type": raw_gguf(LLAMA, [q4k]),
        "unsupported_arch": raw_gguf([("general.architecture", STRING, "gemma2")], [EMBD]),
        "unsupported_projector": raw_gguf(
            [("general.architecture", STRING, "clip"), ("clip.projector_type", STRING, "ldp")],
            [("v.post_ln.weight", [2], T.F32, f32_bytes([1, 2]))],
        ),
        "unknown_tensor": raw_gguf(LLAMA, [EMBD, ("blk.0.attn_qkv.weight", [2, 6], T.F32, f32_bytes(np.ones(12)))]),
        "q4_0_overflow": raw_gguf(LLAMA, [q4_0_big]),
    }


def valid_align64() -> bytes:
    """Two tensors at 64-byte alignment, one of them Q8_0 with a negative scale."""
    block = np.float16(-0.5).tobytes() + np.arange(-16, 16, dtype=np.int8).tobytes()
    return raw_gguf(
        LLAMA + [("general.alignment", U32, 64)],
        [EMBD, ("output.weight", [32, 1], T.Q8_0, block)],
        alignment=64,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HF_FIXTURES / "gguf")
    ap.add_argument("--only", choices=["smolvlm", "qwen2", "phi", "vlm", "spm"], help="write one group of files")
    args = ap.parse_args()
    out = args.out
    if args.only in (None, "spm"):
        spm_gguf(out / "spm-vocab")
    if args.only in (None, "vlm"):
        llava_dir = HF_FIXTURES / "llava-tiny" / "model"
        hf = load_hf(llava_dir)
        vlm_text_gguf(llava_dir, hf, "llama", out / "llava-tiny" / "text.gguf")
        llava_mmproj_gguf(llava_dir, hf, out / "llava-tiny" / "mmproj.gguf")
        # As files converted from the original LLaVA checkpoints: no `<image>` in the vocabulary.
        vlm_text_gguf(llava_dir, hf, "llama", out / "llava-tiny" / "text-no-image-token.gguf", renames={"<image>": "<imagx>"})
        for name in ["qwen2-vl-tiny", "qwen2_5-vl-tiny"]:
            model_dir = HF_FIXTURES / name / "model"
            hf = load_hf(model_dir)
            vlm_text_gguf(model_dir, hf, "qwen2vl", out / name / "text.gguf")
            qwen_vl_mmproj_gguf(model_dir, hf, out / name / "mmproj.gguf")
        qwen2vl_dir = HF_FIXTURES / "qwen2-vl-tiny" / "model"
        qwen_vl_mmproj_gguf(qwen2vl_dir, load_hf(qwen2vl_dir), out / "qwen2-vl-tiny" / "mmproj-q8.gguf", q8=True)
    if args.only in (None, "qwen2"):
        qwen2_dir = HF_FIXTURES / "qwen2-tiny" / "model"
        qwen2_gguf(qwen2_dir, load_hf(qwen2_dir), out / "qwen2-tiny")
    if args.only in (None, "phi"):
        phi_dir = HF_FIXTURES / "phi-tiny" / "model"
        phi2_gguf(phi_dir, load_hf(phi_dir), out / "phi-tiny")
    if args.only in ("qwen2", "phi", "vlm", "spm"):
        return

    split_dir = HF_FIXTURES / "smolvlm-tiny-split" / "model"
    hf = load_hf(split_dir)
    d = out / "smolvlm-tiny-split"
    expected = {}
    for name, plan in [
        ("text.gguf", text_gguf(split_dir, hf, SPLIT_TEXT_TYPES, d / "text.gguf")),
        ("mmproj.gguf", mmproj_gguf(split_dir, hf, SPLIT_MMPROJ_TYPES, d / "mmproj.gguf")),
    ]:
        expected.update(expectations(d / name, plan))
    mmproj_gguf(split_dir, hf, {}, d / "mmproj-legacy-ffn.gguf", legacy_ffn=True)
    save_file(expected, str(d / "expected.safetensors"))

    single_dir = HF_FIXTURES / "smolvlm-tiny-single" / "model"
    hf = load_hf(single_dir)
    d = out / "smolvlm-tiny-single"
    text_gguf(single_dir, hf, SINGLE_TEXT_TYPES, d / "text.gguf", version=2)
    mmproj_gguf(single_dir, hf, SINGLE_MMPROJ_TYPES, d / "mmproj.gguf")

    (out / "valid").mkdir(parents=True, exist_ok=True)
    (out / "valid" / "align64.gguf").write_bytes(valid_align64())
    (out / "broken").mkdir(parents=True, exist_ok=True)
    for name, blob in broken_files().items():
        (out / "broken" / f"{name}.gguf").write_bytes(blob)

    total = 0
    for f in sorted(out.rglob("*")):
        if f.is_file():
            size = f.stat().st_size
            assert size < 1 << 20, f"{f} is {size} bytes"
            total += size
            print(f"{size:>8}  {f.relative_to(out)}")
    assert total < 4 << 20, f"fixtures total {total} bytes"
    print(f"{total:>8}  total")


if __name__ == "__main__":
    main()
