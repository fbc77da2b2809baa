//! GGUF tensor names (llama.cpp) → Hugging Face Idefics3 names: one table per file kind.
//!
//! Sources: `gguf-py/gguf/constants.py` (`TENSOR_NAMES`) and `tensor_mapping.py` in
//! ggml-org/llama.cpp, which `convert_hf_to_gguf.py` uses for SmolVLM (`LlamaModel` for the text
//! decoder after stripping `text_model.`, `SmolVLMModel` for the mmproj). Every name ends in
//! `.weight` or `.bias`, kept as is.
//!
//! | file | GGUF | Hugging Face |
//! |---|---|---|
//! | text | `token_embd` / `output_norm` / `output` | `model.text_model.embed_tokens` / `model.text_model.norm` / `lm_head` |
//! | text | `blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output}` | `model.text_model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj}` |
//! | text | `blk.N.{ffn_norm, ffn_gate, ffn_up, ffn_down}` | `…layers.N.{post_attention_layernorm, mlp.{gate,up,down}_proj}` |
//! | mmproj | `v.patch_embd` / `v.position_embd` / `v.post_ln` | `model.vision_model.{embeddings.patch_embedding, embeddings.position_embedding, post_layernorm}` |
//! | mmproj | `v.blk.N.{attn_q, attn_k, attn_v, attn_out, ln1, ln2}` | `model.vision_model.encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, layer_norm2}` |
//! | mmproj | `v.blk.N.{ffn_up, ffn_down}` | `…layers.N.mlp.{fc1, fc2}` (swapped back for legacy files, see [`Role`]) |
//! | mmproj | `mm.model.fc` | `model.connector.modality_projection.proj` |

/// Which of llama.cpp's two SmolVLM files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `general.architecture = llama`: the text decoder.
    Text,
    /// `general.architecture = clip`, projector `idefics3`: vision tower + connector.
    Mmproj,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Text => "text (llama)",
            FileKind::Mmproj => "mmproj (clip)",
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
    /// `(gguf stem, hf stem)` of tensors outside the blocks.
    global: &'static [(&'static str, &'static str)],
    /// GGUF block prefix (`blk.`) and its Hugging Face counterpart (with a trailing dot).
    block_prefix: (&'static str, &'static str),
    /// `(gguf stem, hf stem, role)` inside a block.
    block: &'static [(&'static str, &'static str, Role)],
}

const TEXT: Table = Table {
    global: &[
        ("token_embd", "model.text_model.embed_tokens"),
        ("output_norm", "model.text_model.norm"),
        ("output", "lm_head"),
    ],
    block_prefix: ("blk.", "model.text_model.layers."),
    block: &[
        ("attn_norm", "input_layernorm", Role::Plain),
        ("attn_q", "self_attn.q_proj", Role::Query),
        ("attn_k", "self_attn.k_proj", Role::Key),
        ("attn_v", "self_attn.v_proj", Role::Plain),
        ("attn_output", "self_attn.o_proj", Role::Plain),
        ("ffn_norm", "post_attention_layernorm", Role::Plain),
        ("ffn_gate", "mlp.gate_proj", Role::Plain),
        ("ffn_up", "mlp.up_proj", Role::Plain),
        ("ffn_down", "mlp.down_proj", Role::Plain),
    ],
};

const MMPROJ: Table = Table {
    global: &[
        ("v.patch_embd", "model.vision_model.embeddings.patch_embedding"),
        ("v.position_embd", "model.vision_model.embeddings.position_embedding"),
        ("v.post_ln", "model.vision_model.post_layernorm"),
        ("mm.model.fc", "model.connector.modality_projection.proj"),
    ],
    block_prefix: ("v.blk.", "model.vision_model.encoder.layers."),
    block: &[
        ("attn_q", "self_attn.q_proj", Role::Plain),
        ("attn_k", "self_attn.k_proj", Role::Plain),
        ("attn_v", "self_attn.v_proj", Role::Plain),
        ("attn_out", "self_attn.out_proj", Role::Plain),
        ("ln1", "layer_norm1", Role::Plain),
        ("ln2", "layer_norm2", Role::Plain),
        ("ffn_up", "mlp.fc1", Role::FfnUp),
        ("ffn_down", "mlp.fc2", Role::FfnDown),
    ],
};

/// The Hugging Face stem of vision fc1 and fc2, for the legacy swap.
pub(crate) const VISION_FC1: &str = "mlp.fc1";
pub(crate) const VISION_FC2: &str = "mlp.fc2";

/// Map one GGUF tensor name; `None` when it has no Hugging Face equivalent in this kind of file.
pub fn map_name(kind: FileKind, gguf_name: &str) -> Option<MappedName> {
    let table = match kind {
        FileKind::Text => &TEXT,
        FileKind::Mmproj => &MMPROJ,
    };
    let (stem, suffix) = gguf_name.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    if let Some((_, hf)) = table.global.iter().find(|(g, _)| *g == stem) {
        return Some(MappedName { hf_name: format!("{hf}.{suffix}"), role: Role::Plain, layer: None });
    }
    let (gguf_prefix, hf_prefix) = table.block_prefix;
    let (index, rest) = stem.strip_prefix(gguf_prefix)?.split_once('.')?;
    // Canonical decimal only, so that `blk.01` cannot alias `blk.1`.
    let layer: usize = index.parse().ok().filter(|n: &usize| n.to_string() == index)?;
    let (_, hf, role) = table.block.iter().find(|(g, _, _)| *g == rest)?;
    Some(MappedName { hf_name: format!("{hf_prefix}{layer}.{hf}.{suffix}"), role: *role, layer: Some(layer) })
}
