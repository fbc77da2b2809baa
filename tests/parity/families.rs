//! Every family beyond SmolVLM against transformers 5.23 on the tiny fixtures made by
//! `tests/generator/make_family_fixtures.py`, on burn's ndarray backend and on wgpu: the family
//! read from config.json, the rendered prompt and its ids (image tokens expanded), pixel values,
//! the vision features after the feature-layer selection, the projector output, logits at every
//! prompt position, and 10 greedy tokens decoded with the KV cache (which must be identical).
//! Each fixture also goes through `webvlm convert` to a packed q8 model, which must keep the
//! greedy tokens.
//!
//! Tolerances (f32): pixel values within 1e-6 (computed exactly); vision features, projector
//! output and logits within `5e-5 + 1e-4·|x|`, as for SmolVLM. The measured maxima are printed
//! (`--nocapture`).

use std::collections::HashMap;

use serde::Deserialize;
use webvlm_model::device::{Backend, read_f32};
use webvlm_model::vlm::QuantScheme;
use webvlm_model::weights::convert::convert;
use webvlm_model::{DirSource, Family, MemorySource, Vlm};
use webvlm_parity::{assert_close, device, fixture, golden_tensor};
use webvlm_runtime::{FinishReason, GenerationOptions, Generator};

const ATOL: f32 = 5e-5;
const RTOL: f32 = 1e-4;

/// `goldens.json` of a family fixture.
#[derive(Debug, Deserialize)]
struct Goldens {
    architecture: String,
    prompt: String,
    rendered_prompt: String,
    input_ids: Vec<u32>,
    greedy_tokens: Vec<u32>,
    greedy_text: String,
    greedy_min_top2_gap: f64,
    max_new_tokens: usize,
    #[serde(default)]
    image_tokens: Option<usize>,
    /// Qwen-VL: each prompt token's (t, h, w) M-RoPE position.
    #[serde(default)]
    positions: Option<Vec<[u32; 3]>>,
}

fn goldens(name: &str) -> Goldens {
    let text = std::fs::read_to_string(fixture(name).join("goldens.json")).expect("goldens.json");
    serde_json::from_str(&text).expect("goldens.json parses")
}

fn has_image(name: &str) -> bool {
    fixture(name).join("image.png").is_file()
}

fn greedy(vlm: &Vlm, prompt: webvlm_model::PreparedPrompt, max_new_tokens: usize) -> Generator<&Vlm> {
    let opts = GenerationOptions { max_new_tokens, ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    generator
}

fn check_fixture(name: &str, family: Family, backend: Backend) {
    let g = goldens(name);
    let device = device(backend);
    let source = DirSource::new(fixture(name).join("model")).unwrap();
    let vlm = Vlm::load(&source, &device).unwrap();
    assert_eq!(vlm.config().family, family, "{name}: family");
    assert!(family.architectures().contains(&g.architecture.as_str()), "{name}: {} not listed for {family:?}", g.architecture);
    let image = has_image(name).then(|| webvlm_parity::fixture_image(name));

    let prompt = vlm.prepare(&g.prompt, image.as_ref()).unwrap();
    assert_eq!(prompt.rendered, g.rendered_prompt, "{name}: rendered chat template");
    assert_eq!(prompt.input_ids, g.input_ids, "{name}: input_ids");

    let (mut max_v, mut max_c) = (0f32, 0f32);
    if let Some(processed) = &prompt.image {
        let image_id = vlm.config().image_token_id;
        let count = prompt.input_ids.iter().filter(|&&t| t == image_id).count();
        assert_eq!(Some(count), g.image_tokens, "{name}: image tokens");
        let pv = golden_tensor(name, "pixel_values");
        let shape = match processed.patch_grid {
            Some((gh, gw)) => vec![gh * gw, processed.pixel_values.len() / (gh * gw)],
            None => vec![3, processed.height, processed.width],
        };
        assert_eq!(shape, pv.shape, "{name}: pixel_values shape");
        if let Some(want) = &g.positions {
            assert_eq!(prompt.positions.as_ref(), Some(want), "{name}: M-RoPE positions");
        }
        assert_close(&format!("{name} pixel_values"), &processed.pixel_values, &pv.values, 1e-6, 0.0);
        let feats = vlm.model.encode_tile(processed, 0).unwrap();
        let vision = golden_tensor(name, "vision_output");
        let connector = golden_tensor(name, "connector_output");
        assert_eq!(feats.vision_output.dims().to_vec(), vision.shape, "{name}: vision_output shape");
        assert_eq!(feats.connector_output.dims().to_vec(), connector.shape, "{name}: connector_output shape");
        max_v = assert_close(&format!("{name} vision_output"), &read_f32(feats.vision_output).unwrap(), &vision.values, ATOL, RTOL);
        max_c = assert_close(&format!("{name} connector_output"), &read_f32(feats.connector_output).unwrap(), &connector.values, ATOL, RTOL);
    }

    let logits = golden_tensor(name, "logits");
    let embeds = vlm.embed_prompt(&prompt).unwrap();
    let mut cache = vlm.model.new_cache(prompt.input_ids.len());
    let got = read_f32(vlm.model.forward_at(embeds, &mut cache, prompt.positions.as_deref(), true).unwrap()).unwrap();
    let max_l = assert_close(&format!("{name} logits"), &got, &logits.values, ATOL, RTOL);

    let generator = greedy(&vlm, prompt, g.max_new_tokens);
    assert_eq!(generator.generated(), g.greedy_tokens.as_slice(), "{name}: greedy tokens");
    assert_eq!(generator.text(), g.greedy_text, "{name}: greedy text");
    assert_eq!(generator.finish_reason(), Some(FinishReason::Length));
    println!(
        "{name} on {backend:?}: max |diff| vision {max_v:.2e}, projector {max_c:.2e}, logits {max_l:.2e}; greedy margin in transformers {:.3e}",
        g.greedy_min_top2_gap
    );
}

/// `webvlm convert --quant q8` of the fixture, loaded from memory: the same family, and the
/// greedy tokens of transformers.
fn check_packed_q8(name: &str, family: Family) {
    let g = goldens(name);
    let source = DirSource::new(fixture(name).join("model")).unwrap();
    let mut files = HashMap::<String, Vec<u8>>::new();
    let mut sink = |n: &str, b: &[u8]| {
        files.insert(n.to_string(), b.to_vec());
        Ok(())
    };
    convert(&source, Some(QuantScheme::Q8), 64 * 1024, &mut sink, &mut |_| {}).unwrap();
    let mut memory = MemorySource::new();
    for (k, v) in files {
        memory.insert(k, v);
    }
    let vlm = Vlm::load(&memory, &device(Backend::Wgpu)).unwrap();
    assert_eq!(vlm.config().family, family);
    let image = has_image(name).then(|| webvlm_parity::fixture_image(name));
    let prompt = vlm.prepare(&g.prompt, image.as_ref()).unwrap();
    let generator = greedy(&vlm, prompt, g.max_new_tokens);
    assert_eq!(generator.generated(), g.greedy_tokens.as_slice(), "{name}: q8 greedy tokens");
}

macro_rules! family_tests {
    ($($test:ident: $name:literal, $family:expr;)*) => {
        mod cpu {
            use super::*;
            $(#[test] fn $test() { check_fixture($name, $family, Backend::Cpu); })*
        }
        mod wgpu {
            use super::*;
            $(#[test] fn $test() { check_fixture($name, $family, Backend::Wgpu); })*
        }
        mod packed_q8 {
            use super::*;
            $(#[test] fn $test() { check_packed_q8($name, $family); })*
        }
    };
}

family_tests! {
    llama: "llama-tiny", Family::Llama;
    qwen2: "qwen2-tiny", Family::Qwen2;
    phi: "phi-tiny", Family::Phi;
    llava: "llava-tiny", Family::Llava;
    llava_legacy_layout: "llava-tiny-legacy", Family::Llava;
    qwen2_vl: "qwen2-vl-tiny", Family::Qwen2Vl;
    qwen2_5_vl: "qwen2_5-vl-tiny", Family::Qwen25Vl;
}

/// A token embedding larger than one GPU binding (Qwen2.5's 151936 × 1536 is 933 MB in f32) is
/// held in row blocks; lookups across blocks come back in the ids' order, and asking for it as one
/// dense matrix (a tied dense lm_head) is a named error.
fn check_large_embedding(backend: Backend) {
    use webvlm_model::nn::Embedding;
    use webvlm_model::weights::{MAX_DENSE_BINDING_BYTES, WeightStore};
    let dim = 1024;
    let vocab = MAX_DENSE_BINDING_BYTES / 4 / dim + 1000; // two blocks
    let values: Vec<f32> = (0..vocab * dim).map(|i| ((i / dim) as f32) + (i % dim) as f32 * 1e-4).collect();
    let device = device(backend);
    let mut store = WeightStore::empty(&device);
    store.insert("embed.weight".into(), vec![vocab, dim], values).unwrap();
    let embed = Embedding::load(&mut store.reader(""), "embed", vocab, dim, false).unwrap();
    let ids = [5u32, vocab as u32 - 1, 32767, 32768, 5, 0];
    let rows = read_f32(embed.forward(&ids).unwrap()).unwrap();
    for (k, &id) in ids.iter().enumerate() {
        assert_eq!(rows[k * dim], id as f32, "row {k}");
        assert_eq!(rows[k * dim + 3], id as f32 + 3.0 * 1e-4, "row {k} column 3");
    }
    let err = embed.weight().unwrap_err();
    assert!(matches!(err, webvlm_model::ModelError::TooLarge { .. }) && err.to_string().contains("--quant"), "{err}");
}

#[test]
fn large_embedding_in_blocks_on_cpu() {
    check_large_embedding(Backend::Cpu);
}

#[test]
fn large_embedding_in_blocks_on_wgpu() {
    check_large_embedding(Backend::Wgpu);
}

/// A second turn after an image on Qwen-VL: the reused KV cache keeps M-RoPE's position lag
/// (text after the image continues from its compressed positions), so the follow-up's logits
/// and tokens equal a fresh prefill of the whole conversation.
#[test]
fn qwen_vl_follow_up_turn_matches_a_fresh_prefill() {
    use webvlm_model::prompt::Message;
    let name = "qwen2_5-vl-tiny";
    let g = goldens(name);
    let vlm = Vlm::load(&DirSource::new(fixture(name).join("model")).unwrap(), &device(Backend::Wgpu)).unwrap();
    let image = webvlm_parity::fixture_image(name);
    let opts = || GenerationOptions { max_new_tokens: 4, ignore_eos: true, ..Default::default() };
    let first = greedy_with(&vlm, vlm.prepare(&g.prompt, Some(&image)).unwrap(), opts());
    let reply = first.text().to_string();
    let conversation = [Message::user(&g.prompt, true), Message::assistant(&reply), Message::user("And the shapes?", false)];
    let prompt = vlm.prepare_chat(&conversation, Some(&image)).unwrap();
    let mut reused = first.follow_up(prompt.clone(), opts()).unwrap();
    assert!(reused.reused_positions() > g.input_ids.len(), "the image turn is reused ({} positions)", reused.reused_positions());
    pollster::block_on(reused.prefill()).unwrap();
    let mut fresh = Generator::new(&vlm, prompt, opts()).unwrap();
    pollster::block_on(fresh.prefill()).unwrap();
    let logits = |g: &Generator<&Vlm>| pollster::block_on(g.next_logits()).unwrap().unwrap();
    assert_close("follow-up logits", &logits(&reused), &logits(&fresh), 1e-4, 1e-4);
    while pollster::block_on(reused.step()).unwrap().is_some() {}
    while pollster::block_on(fresh.step()).unwrap().is_some() {}
    assert_eq!(reused.generated(), fresh.generated());
}

fn greedy_with(vlm: &Vlm, prompt: webvlm_model::PreparedPrompt, opts: GenerationOptions) -> Generator<&Vlm> {
    let mut generator = Generator::new(vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    generator
}
