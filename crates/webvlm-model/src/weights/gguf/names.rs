//! GGUF tensor names (llama.cpp) → Hugging Face names: one table for text files and one per
//! mmproj projector.
//!
//! Sources: `gguf-py/gguf/constants.py` (`TENSOR_NAMES`) and `tensor_mapping.py` in
//! ggml-org/llama.cpp, which `convert_hf_to_gguf.py` uses (`LlamaModel`, `Qwen2Model`,
//! `Qwen2VLModel`, `Phi2Model` for decoders; `SmolVLMModel` and `Qwen2VLVisionModel` for
//! mmproj files), and the legacy LLaVA image-encoder converter
//! (`tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py`). Names end in `.weight` or
//! `.bias`, kept as is, except CLIP's `v.class_embd` and Qwen-VL's second patch frame.
//!
//! | file | GGUF | Hugging Face |
//! |---|---|---|
//! | text | `token_embd` / `output_norm` / `output` | `model.text_model.embed_tokens` / `model.text_model.norm` / `lm_head` (the prefix is then the family's, see [`Projector::text_prefix`]) |
//! | text | `blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output}` | `model.text_model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj}` |
//! | text | `blk.N.{ffn_norm, ffn_gate, ffn_up, ffn_down}` | `…layers.N.{post_attention_layernorm, mlp.{gate,up,down}_proj}` |
//! | idefics3 | `v.patch_embd` / `v.position_embd` / `v.post_ln` | `model.vision_model.{embeddings.patch_embedding, embeddings.position_embedding, post_layernorm}` |
//! | idefics3, mlp | `v.blk.N.{attn_q, attn_k, attn_v, attn_out, ln1, ln2}` | `…encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2}` |
//! | idefics3, mlp | `v.blk.N.{ffn_up, ffn_down}` | `…layers.N.mlp.{fc1, fc2}` (swapped back for legacy files, see [`Role`]) |
//! | idefics3 | `mm.model.fc` | `model.connector.modality_projection.proj` |
//! | mlp (LLaVA) | `v.class_embd` / `v.patch_embd` / `v.position_embd` / `v.pre_ln` | `model.vision_tower.{embeddings.{class_embedding, patch_embedding, position_embedding}, pre_layrnorm}` |
//! | mlp (LLaVA) | `mm.0` / `mm.2` | `model.multi_modal_projector.linear_1` / `linear_2` |
//! | qwen2vl / qwen2.5vl | `v.patch_embd.weight` + `v.patch_embd.weight.1` | `model.visual.patch_embed.proj.weight` (frames interleaved) |
//! | qwen2vl / qwen2.5vl | `v.blk.N.{ln1, ln2, attn_q + attn_k + attn_v, attn_out}` | `model.visual.blocks.N.{norm1, norm2, attn.qkv (stacked), attn.proj}` |
//! | qwen2vl | `v.blk.N.{ffn_up, ffn_down}` | `…blocks.N.mlp.{fc1, fc2}` |
//! | qwen2.5vl | `v.blk.N.{ffn_gate, ffn_up, ffn_down}` | `…blocks.N.mlp.{gate_proj, up_proj, down_proj}` |
//! | qwen2vl / qwen2.5vl | `v.post_ln` / `mm.0` / `mm.2` | `model.visual.merger.{ln_q, mlp.0, mlp.2}` |

/// Which projector an mmproj file holds (`clip.projector_type`), i.e. which model family the
/// text + mmproj pair is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projector {
    /// `idefics3`: SmolVLM / Idefics3 (SigLIP tower, pixel-shuffle connector).
    Idefics3,
    /// `mlp`: LLaVA-1.5 (CLIP tower, two-layer GELU projector), as the legacy llava converter
    /// (`convert_image_encoder_to_gguf.py`) writes it.
    Llava,
    /// `qwen2vl_merger`: Qwen2-VL's tower and 2×2 patch merger.
    Qwen2Vl,
    /// `qwen2.5vl_merger`: Qwen2.5-VL (RMSNorm / SwiGLU blocks, windowed attention).
    Qwen25Vl,
}

impl Projector {
    /// Every projector, for error messages.
    pub const ALL: [Projector; 4] = [Projector::Idefics3, Projector::Llava, Projector::Qwen2Vl, Projector::Qwen25Vl];

    /// The `clip.projector_type` value.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Projector::Idefics3 => "idefics3",
            Projector::Llava => "mlp",
            Projector::Qwen2Vl => "qwen2vl_merger",
            Projector::Qwen25Vl => "qwen2.5vl_merger",
        }
    }

    pub fn from_gguf_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.gguf_name() == name)
    }

    /// Where this family's Hugging Face checkpoint keeps the decoder (`…layers.N…`).
    pub fn text_prefix(self) -> &'static str {
        match self {
            Projector::Idefics3 => "model.text_model.",
            Projector::Llava | Projector::Qwen2Vl | Projector::Qwen25Vl => "model.language_model.",
        }
    }
}

/// Which of llama.cpp's two files of a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `general.architecture = llama | qwen2 | qwen2vl | phi2`: the text decoder.
    Text,
    /// `general.architecture = clip`: vision tower + projector.
    Mmproj(Projector),
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Text => "text",
            FileKind::Mmproj(Projector::Idefics3) => "mmproj (idefics3)",
            FileKind::Mmproj(Projector::Llava) => "mmproj (mlp)",
            FileKind::Mmproj(Projector::Qwen2Vl) => "mmproj (qwen2vl_merger)",
            FileKind::Mmproj(Projector::Qwen25Vl) => "mmproj (qwen2.5vl_merger)",
        }
    }
}

/// What else than renaming a tensor needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Plain,
    /// Text Q projection: rows permuted by the converter with `n_head`.
    Query,
    /// Text K projection: rows permuted with `n_head_kv`.
    Key,
    /// Vision `ffn_up` (fc1). Files from old converters named fc1 `ffn_down`; clip.cpp detects
    /// them by shape (`ffn_down.ne[0] == n_embd`) and swaps, and so does the reader.
    FfnUp,
    /// Vision `ffn_down` (fc2).
    FfnDown,
    /// Qwen-VL's `attn_q` (0), `attn_k` (1), `attn_v` (2): the converter split the fused `qkv`
    /// projection, and the reader stacks the three back (rows q, then k, then v).
    QkvPart(usize),
    /// Qwen-VL's patch kernel: the converter split the Conv3d kernel over its two frames into
    /// `v.patch_embd.weight` (frame 0) and `v.patch_embd.weight.1` (frame 1); the reader
    /// interleaves them back into `[out, c, 2, p, p]`.
    TemporalPatch,
}

/// A GGUF name resolved to its Hugging Face name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedName {
    pub hf_name: String,
    pub role: Role,
    /// The block index, for per-layer tensors.
    pub layer: Option<usize>,
}

struct Table {
    /// `(gguf stem, hf stem, role)` of tensors outside the blocks.
    global: &'static [(&'static str, &'static str, Role)],
    /// Whole GGUF names without a `.weight`/`.bias` suffix (CLIP's class embedding).
    bare: &'static [(&'static str, &'static str)],
    /// GGUF block prefix (`blk.`) and its Hugging Face counterpart (with a trailing dot).
    block_prefix: (&'static str, &'static str),
    /// `(gguf stem, hf stem, role)` inside a block, in one or more lists.
    block: &'static [&'static [(&'static str, &'static str, Role)]],
}

const TEXT: Table = Table {
    global: &[
        ("token_embd", "model.text_model.embed_tokens", Role::Plain),
        ("output_norm", "model.text_model.norm", Role::Plain),
        ("output", "lm_head", Role::Plain),
    ],
    bare: &[],
    block_prefix: ("blk.", "model.text_model.layers."),
    block: &[&[
        ("attn_norm", "input_layernorm", Role::Plain),
        ("attn_q", "self_attn.q_proj", Role::Query),
        ("attn_k", "self_attn.k_proj", Role::Key),
        ("attn_v", "self_attn.v_proj", Role::Plain),
        ("attn_output", "self_attn.o_proj", Role::Plain),
        ("ffn_norm", "post_attention_layernorm", Role::Plain),
        ("ffn_gate", "mlp.gate_proj", Role::Plain),
        ("ffn_up", "mlp.up_proj", Role::Plain),
        ("ffn_down", "mlp.down_proj", Role::Plain),
    ]],
};

/// A SigLIP / CLIP encoder layer (Idefics3 and LLaVA towers).
const SIGLIP_CLIP_BLOCK: &[(&str, &str, Role)] = &[
    ("attn_q", "self_attn.q_proj", Role::Plain),
    ("attn_k", "self_attn.k_proj", Role::Plain),
    ("attn_v", "self_attn.v_proj", Role::Plain),
    ("attn_out", "self_attn.out_proj", Role::Plain),
    ("ln1", "layer_norm1", Role::Plain),
    ("ln2", "layer_norm2", Role::Plain),
    ("ffn_up", "mlp.fc1", Role::FfnUp),
    ("ffn_down", "mlp.fc2", Role::FfnDown),
];

const IDEFICS3: Table = Table {
    global: &[
        ("v.patch_embd", "model.vision_model.embeddings.patch_embedding", Role::Plain),
        ("v.position_embd", "model.vision_model.embeddings.position_embedding", Role::Plain),
        ("v.post_ln", "model.vision_model.post_layernorm", Role::Plain),
        ("mm.model.fc", "model.connector.modality_projection.proj", Role::Plain),
    ],
    bare: &[],
    block_prefix: ("v.blk.", "model.vision_model.encoder.layers."),
    block: &[SIGLIP_CLIP_BLOCK],
};

const LLAVA: Table = Table {
    global: &[
        ("v.patch_embd", "model.vision_tower.embeddings.patch_embedding", Role::Plain),
        ("v.position_embd", "model.vision_tower.embeddings.position_embedding", Role::Plain),
        ("v.pre_ln", "model.vision_tower.pre_layrnorm", Role::Plain),
        // Written by converters that keep it; LLaVA's feature layer comes before it.
        ("v.post_ln", "model.vision_tower.post_layernorm", Role::Plain),
        ("mm.0", "model.multi_modal_projector.linear_1", Role::Plain),
        ("mm.2", "model.multi_modal_projector.linear_2", Role::Plain),
    ],
    bare: &[("v.class_embd", "model.vision_tower.embeddings.class_embedding")],
    block_prefix: ("v.blk.", "model.vision_tower.encoder.layers."),
    block: &[SIGLIP_CLIP_BLOCK],
};

const QWEN_GLOBAL: &[(&str, &str, Role)] = &[
    ("v.patch_embd", "model.visual.patch_embed.proj", Role::TemporalPatch),
    ("v.post_ln", "model.visual.merger.ln_q", Role::Plain),
    ("mm.0", "model.visual.merger.mlp.0", Role::Plain),
    ("mm.2", "model.visual.merger.mlp.2", Role::Plain),
];

/// A Qwen-VL vision block without its MLP.
const QWEN_BLOCK: &[(&str, &str, Role)] = &[
    ("ln1", "norm1", Role::Plain),
    ("ln2", "norm2", Role::Plain),
    ("attn_q", "attn.qkv", Role::QkvPart(0)),
    ("attn_k", "attn.qkv", Role::QkvPart(1)),
    ("attn_v", "attn.qkv", Role::QkvPart(2)),
    ("attn_out", "attn.proj", Role::Plain),
];

const QWEN2VL: Table = Table {
    global: QWEN_GLOBAL,
    bare: &[],
    block_prefix: ("v.blk.", "model.visual.blocks."),
    block: &[QWEN_BLOCK, &[("ffn_up", "mlp.fc1", Role::Plain), ("ffn_down", "mlp.fc2", Role::Plain)]],
};

const QWEN25VL: Table = Table {
    global: QWEN_GLOBAL,
    bare: &[],
    block_prefix: ("v.blk.", "model.visual.blocks."),
    block: &[
        QWEN_BLOCK,
        &[
            ("ffn_gate", "mlp.gate_proj", Role::Plain),
            ("ffn_up", "mlp.up_proj", Role::Plain),
            ("ffn_down", "mlp.down_proj", Role::Plain),
        ],
    ],
};

/// The second frame of Qwen-VL's split patch kernel (see [`Role::TemporalPatch`]).
pub(crate) const PATCH_FRAME_1: &str = "v.patch_embd.weight.1";

/// The Hugging Face stem of vision fc1 and fc2, for the legacy swap.
pub(crate) const VISION_FC1: &str = "mlp.fc1";
pub(crate) const VISION_FC2: &str = "mlp.fc2";

/// Map one GGUF tensor name; `None` when it has no Hugging Face equivalent in this kind of file.
pub fn map_name(kind: FileKind, gguf_name: &str) -> Option<MappedName> {
    let table = match kind {
        FileKind::Text => &TEXT,
        FileKind::Mmproj(Projector::Idefics3) => &IDEFICS3,
        FileKind::Mmproj(Projector::Llava) => &LLAVA,
        FileKind::Mmproj(Projector::Qwen2Vl) => &QWEN2VL,
        FileKind::Mmproj(Projector::Qwen25Vl) => &QWEN25VL,
    };
    if let Some((_, hf)) = table.bare.iter().find(|(g, _)| *g == gguf_name) {
        return Some(MappedName { hf_name: hf.to_string(), role: Role::Plain, layer: None });
    }
    let (stem, suffix) = gguf_name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    if let Some((_, hf, role)) = table.global.iter().find(|(g, _, _)| *g == stem) {
        return Some(MappedName { hf_name: format!("{hf}.{suffix}"), role: *role, layer: None });
    }
    let (gguf_prefix, hf_prefix) = table.block_prefix;
    let (index, rest) = stem.strip_prefix(gguf_prefix)?.split_once('.')?;
    // Canonical decimal only, so that `blk.01` cannot alias `blk.1`.
    let layer: usize = index.parse().ok().filter(|n: &usize| n.to_string() == index)?;
    let (_, hf, role) = table.block.iter().flat_map(|b| b.iter()).find(|(g, _, _)| *g == rest)?;
    Some(MappedName { hf_name: format!("{hf_prefix}{layer}.{hf}.{suffix}"), role: *role, layer: Some(layer) })
}
