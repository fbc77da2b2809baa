//! A llama.cpp-style model directory (text GGUF + mmproj GGUF, no config.json) runs through the
//! same model code. The GGUF fixtures (tests/generator/make_gguf_fixtures.py) hold the tiny
//! fixtures' weights: `smolvlm-tiny-single` as BF16/F16/F32, `smolvlm-tiny-split` mixing F32,
//! F16, Q8_0, Q4_0 and Q4_1.
//!
//! Tolerances against transformers' f32 logits: BF16/F16/F32 within 0.05 (F16 rounding of some
//! tensors) with identical greedy tokens; the quantised mix within 2.5 max / 0.4 mean, as q4.

use webvlm_model::device::{Backend, read_f32};
use webvlm_model::{MemorySource, ModelError, Vlm};
use webvlm_parity::{device, fixture, fixtures_dir, golden_tensor, goldens};
use webvlm_runtime::{GenerationOptions, Generator};

/// The GGUF pair plus the tokenizer (GGUF tokenizers are not read yet), without config.json.
fn gguf_dir(name: &str, mmproj: &str) -> MemorySource {
    let mut s = MemorySource::new();
    let g = fixtures_dir().join("gguf").join(name);
    s.insert("model.gguf", std::fs::read(g.join("text.gguf")).unwrap());
    s.insert("mmproj.gguf", std::fs::read(g.join(mmproj)).unwrap());
    s.insert("tokenizer.json", std::fs::read(fixture(name).join("model/tokenizer.json")).unwrap());
    s.insert("tokenizer_config.json", std::fs::read(fixture(name).join("model/tokenizer_config.json")).unwrap());
    s
}

fn check(name: &str, mmproj: &str, max_tol: f32, mean_tol: f64, tokens_must_match: bool) {
    let mut dir = gguf_dir(name, mmproj);
    if name == "smolvlm-tiny-single" {
        // llama.cpp always tiles, so GGUF metadata cannot say "no splitting"; this fixture's
        // processor does not split, and a processor_config.json next to the GGUFs wins.
        dir.insert("processor_config.json", std::fs::read(fixture(name).join("model/processor_config.json")).unwrap());
    }
    let vlm = Vlm::load(&dir, &device(Backend::Wgpu)).unwrap();
    let g = goldens(name);
    let img = webvlm_parity::fixture_image(name);
    let prompt = vlm.prepare(&g.prompt, Some(&img)).unwrap();
    assert_eq!(prompt.input_ids, g.input_ids, "{name}: config, template and processor from GGUF metadata");
    let embeds = vlm.embed_prompt(&prompt).unwrap();
    let mut cache = vlm.model.new_cache(prompt.input_ids.len());
    let logits = read_f32(vlm.model.forward(embeds, &mut cache, true).unwrap()).unwrap();
    let golden = golden_tensor(name, "logits");
    let max = logits.iter().zip(&golden.values).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    let mean = logits.iter().zip(&golden.values).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / logits.len() as f64;
    let opts = GenerationOptions { max_new_tokens: g.max_new_tokens, ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(&vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    let same = generator.generated() == g.greedy_tokens.as_slice();
    println!("{name} GGUF ({mmproj}): |logit diff| max {max:.4} mean {mean:.4}, greedy {}", if same { "identical" } else { "differs" });
    assert!(max <= max_tol && mean <= mean_tol, "{name}: logit diff max {max} mean {mean}");
    if tokens_must_match {
        assert!(same, "{name}: greedy tokens {:?} vs {:?}", generator.generated(), g.greedy_tokens);
    }
}

#[test]
fn bf16_f16_f32_gguf_matches_transformers() {
    check("smolvlm-tiny-single", "mmproj.gguf", 0.05, 0.01, true);
}

#[test]
fn quantised_gguf_mix_stays_within_tolerance() {
    check("smolvlm-tiny-split", "mmproj.gguf", 2.5, 0.4, false);
}

#[test]
fn legacy_mmproj_naming_gives_the_same_model() {
    check("smolvlm-tiny-split", "mmproj-legacy-ffn.gguf", 2.5, 0.4, false);
}

#[test]
fn broken_gguf_files_are_named_errors() {
    let broken = fixtures_dir().join("gguf/broken");
    for entry in std::fs::read_dir(&broken).unwrap() {
        let path = entry.unwrap().path();
        let mut s = gguf_dir("smolvlm-tiny-split", "mmproj.gguf");
        s.insert("model.gguf", std::fs::read(&path).unwrap());
        let err = Vlm::load(&s, &device(Backend::Cpu)).err().unwrap_or_else(|| panic!("{} loaded", path.display()));
        assert!(
            matches!(err, ModelError::Gguf(_) | ModelError::MissingFile { .. }),
            "{}: {err}",
            path.display()
        );
        assert!(!err.to_string().is_empty());
    }
}

/// A text-only GGUF alone in a directory: config, tokenizer and chat template come from its
/// metadata, and the decoder matches transformers' logits of the HF fixture `name` within
/// `5e-5 + 1e-4·|x|` with identical greedy tokens.
fn check_text_gguf(name: &str, family: webvlm_model::Family) -> Vlm {
    let dir = fixtures_dir().join("gguf").join(name);
    let mut s = MemorySource::new();
    s.insert("model.gguf", std::fs::read(dir.join("model.gguf")).unwrap());
    let vlm = Vlm::load(&s, &device(Backend::Wgpu)).unwrap();
    assert_eq!(vlm.config().family, family);
    let text: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("goldens.json")).unwrap()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(text["input_ids"].clone()).unwrap();
    let prompt = vlm.prepare(text["prompt"].as_str().unwrap(), None).unwrap();
    assert_eq!(prompt.rendered, text["rendered_prompt"].as_str().unwrap(), "{name}: chat template from GGUF metadata");
    let prompt = webvlm_model::PreparedPrompt { input_ids: ids.clone(), ..prompt };
    let mut cache = vlm.model.new_cache(ids.len());
    let logits = read_f32(vlm.model.forward(vlm.model.embed(&ids, None).unwrap(), &mut cache, true).unwrap()).unwrap();
    webvlm_parity::assert_close(&format!("{name} gguf logits"), &logits, &golden_tensor(name, "logits").values, 5e-5, 1e-4);
    let want: Vec<u32> = serde_json::from_value(text["greedy_tokens"].clone()).unwrap();
    let opts = GenerationOptions { max_new_tokens: want.len(), ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(&vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    assert_eq!(generator.generated(), want.as_slice(), "{name}: greedy tokens");
    drop(generator);
    vlm
}

/// Qwen2 (`general.architecture = qwen2`: Q/K rows not permuted, q/k/v biases, BF16 matrices,
/// pre-tokenizer `qwen2`, checked on sample strings against the tokenizers library).
#[test]
fn qwen2_gguf_alone_matches_transformers() {
    let vlm = check_text_gguf("qwen2-tiny", webvlm_model::Family::Qwen2);
    let dir = fixtures_dir().join("gguf/qwen2-tiny");
    let samples: std::collections::BTreeMap<String, Vec<u32>> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("pretokenized.json")).unwrap()).unwrap();
    for (text, ids) in &samples {
        assert_eq!(&vlm.tokenizer.encode_plain(text).unwrap(), ids, "qwen2 pre-tokenizer on {text:?}");
    }
}

/// Phi-2 (`general.architecture = phi2`: LayerNorm epsilon, partial rotary from
/// `rope.dimension_count`, fc1/fc2/dense/final_layernorm under llama.cpp's names, lm_head bias).
#[test]
fn phi2_gguf_alone_matches_transformers() {
    check_text_gguf("phi-tiny", webvlm_model::Family::Phi);
}

/// A LLaVA / Qwen-VL text + mmproj GGUF pair alone in a directory (config, tokenizer, chat
/// template and image processor all from GGUF metadata, plus `extra` files placed next to them)
/// against transformers' goldens of the HF fixture: prompt ids and M-RoPE positions exactly,
/// logits at every prompt position within `atol + 1e-4·|x|`, greedy tokens identical when
/// `tokens_must_match`.
fn check_vlm_gguf(name: &str, mmproj: &str, extra: &[&str], family: webvlm_model::Family, atol: f32, tokens_must_match: bool) {
    check_vlm_gguf_text(name, "text.gguf", mmproj, extra, family, atol, tokens_must_match);
}

fn check_vlm_gguf_text(
    name: &str,
    text: &str,
    mmproj: &str,
    extra: &[&str],
    family: webvlm_model::Family,
    atol: f32,
    tokens_must_match: bool,
) {
    let dir = fixtures_dir().join("gguf").join(name);
    let mut s = MemorySource::new();
    s.insert("text.gguf", std::fs::read(dir.join(text)).unwrap());
    s.insert("mmproj.gguf", std::fs::read(dir.join(mmproj)).unwrap());
    for file in extra {
        s.insert(*file, std::fs::read(fixture(name).join("model").join(file)).unwrap());
    }
    let vlm = Vlm::load(&s, &device(Backend::Wgpu)).unwrap();
    assert_eq!(vlm.config().family, family, "{name}");
    let g: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("goldens.json")).unwrap()).unwrap();
    let img = webvlm_parity::fixture_image(name);
    let prompt = vlm.prepare(g["prompt"].as_str().unwrap(), Some(&img)).unwrap();
    assert_eq!(prompt.rendered, g["rendered_prompt"].as_str().unwrap(), "{name}: chat template from GGUF metadata");
    let mut ids: Vec<u32> = serde_json::from_value(g["input_ids"].clone()).unwrap();
    // The image token's id may differ (see `llava_gguf_without_an_image_token_in_its_vocabulary`).
    let want_image_id = webvlm_model::ModelConfig::from_json(&std::fs::read_to_string(fixture(name).join("model/config.json")).unwrap())
        .unwrap()
        .image_token_id;
    for id in &mut ids {
        if *id == want_image_id {
            *id = vlm.config().image_token_id;
        }
    }
    assert_eq!(prompt.input_ids, ids, "{name}: tokenizer, image tokens and processor from GGUF metadata");
    if let Some(positions) = g.get("positions").filter(|p| !p.is_null()) {
        let want: Vec<[u32; 3]> = serde_json::from_value(positions.clone()).unwrap();
        assert_eq!(prompt.positions.as_ref(), Some(&want), "{name}: M-RoPE positions");
    }
    let embeds = vlm.embed_prompt(&prompt).unwrap();
    let mut cache = vlm.model.new_cache(prompt.input_ids.len());
    let logits = read_f32(vlm.model.forward_at(embeds, &mut cache, prompt.positions.as_deref(), true).unwrap()).unwrap();
    let max = webvlm_parity::assert_close(&format!("{name} GGUF ({mmproj}) logits"), &logits, &golden_tensor(name, "logits").values, atol, 1e-4);
    let want: Vec<u32> = serde_json::from_value(g["greedy_tokens"].clone()).unwrap();
    let opts = GenerationOptions { max_new_tokens: want.len(), ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(&vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    let same = generator.generated() == want.as_slice();
    println!("{name} GGUF ({mmproj}): |logit diff| max {max:.2e}, greedy {}", if same { "identical" } else { "differs" });
    if tokens_must_match {
        assert!(same, "{name}: greedy tokens {:?} vs {want:?}", generator.generated());
    }
}

/// LLaVA-1.5 as the legacy llava converter writes it (`mlp` projector, F16 matrices, CLIP
/// layers after the feature layer left out, fc1/fc2 under swapped names).
#[test]
fn llava_gguf_pair_matches_transformers() {
    check_vlm_gguf("llava-tiny", "mmproj.gguf", &[], webvlm_model::Family::Llava, 5e-5, true);
}

/// Qwen2-VL: `qwen2vl` decoder with M-RoPE sections, `qwen2vl_merger` mmproj (q/k/v and the
/// Conv3d frames split by the converter).
#[test]
fn qwen2_vl_gguf_pair_matches_transformers() {
    check_vlm_gguf("qwen2-vl-tiny", "mmproj.gguf", &[], webvlm_model::Family::Qwen2Vl, 5e-5, true);
}

/// Qwen2.5-VL: windowed attention from `n_wa_pattern` and `window_size`, SwiGLU blocks.
#[test]
fn qwen2_5_vl_gguf_pair_matches_transformers() {
    check_vlm_gguf("qwen2_5-vl-tiny", "mmproj.gguf", &[], webvlm_model::Family::Qwen25Vl, 5e-5, true);
}

/// Q8_0 vision matrices (the stacked qkv stays quantised) without pixel limits in the file: the
/// fixture's preprocessor_config.json next to the GGUF files sets them.
#[test]
fn quantised_qwen2_vl_mmproj_stays_within_tolerance() {
    check_vlm_gguf("qwen2-vl-tiny", "mmproj-q8.gguf", &["preprocessor_config.json"], webvlm_model::Family::Qwen2Vl, 0.2, false);
}

/// A LLaVA text GGUF whose vocabulary has no `<image>` (as converted from the original LLaVA
/// checkpoints): the image token takes the first id past the vocabulary, the tokenizer made from
/// the file knows it, and the model is the same.
#[test]
fn llava_gguf_without_an_image_token_in_its_vocabulary() {
    check_vlm_gguf_text("llava-tiny", "text-no-image-token.gguf", "mmproj.gguf", &[], webvlm_model::Family::Llava, 5e-5, true);
}

/// The token embedding stays in the GGUF's own form on the device when nothing needs it dense:
/// the split fixture's F16 `token_embd` (untied lm_head) is held as f16, half its f32 size; the
/// single fixture's is also its tied dense lm_head, so it is f32 there.
#[test]
fn a_gguf_token_embedding_stays_in_its_own_format() {
    for (name, format, bytes_per_value) in [("smolvlm-tiny-split", "f16", 2), ("smolvlm-tiny-single", "f32", 4)] {
        let vlm = Vlm::load(&gguf_dir(name, "mmproj.gguf"), &device(Backend::Wgpu)).unwrap();
        let e = vlm.model.token_embedding();
        let t = &vlm.model.config().text_config;
        assert_eq!((e.format(), e.byte_size()), (format, (t.vocab_size * t.hidden_size * bytes_per_value) as u64), "{name}");
    }
}
