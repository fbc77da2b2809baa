//! Every stage of SmolVLM/Idefics3 against transformers 5.23 on the tiny fixtures, on burn's
//! ndarray backend and on wgpu: prompt text and ids, pixel values, vision tower output per tile,
//! connector output per tile (one at a time and batched), logits at every prompt position, and 10 greedy tokens decoded with
//! the KV cache (which must be identical).
//!
//! Tolerances (f32 everywhere): pixel values within 1e-6 (they are computed exactly);
//! vision/connector outputs and logits within `5e-5 + 1e-4·|x|` (measured: below 5e-6). The measured maximum
//! differences are printed (`cargo test -- --nocapture`).

use webvlm_model::device::{Backend, read_f32};
use webvlm_model::{DirSource, Vlm};
use webvlm_parity::{assert_close, device, fixture, golden_tensor, goldens};
use webvlm_runtime::{FinishReason, GenerationOptions, Generator};

const ATOL: f32 = 5e-5;
const RTOL: f32 = 1e-4;

fn check_fixture(name: &str, backend: webvlm_model::device::Backend) {
    let g = goldens(name);
    let device = device(backend);
    let source = DirSource::new(fixture(name).join("model")).unwrap();
    let vlm = Vlm::load(&source, &device).unwrap();
    let image = webvlm_parity::fixture_image(name);

    // Prompt: chat template, image expansion, tokenisation.
    let prompt = vlm.prepare(&g.prompt, Some(&image)).unwrap();
    assert_eq!(prompt.rendered, g.rendered_prompt, "{name}: rendered chat template");
    assert_eq!(prompt.input_ids, g.input_ids, "{name}: input_ids");
    assert_eq!(vlm.image_seq_len, g.image_seq_len);

    // Pixels.
    let processed = prompt.image.as_ref().unwrap();
    assert_eq!((processed.rows, processed.cols), (g.rows, g.cols), "{name}: tile grid");
    let pv = golden_tensor(name, "pixel_values");
    assert_eq!(vec![processed.num_tiles, 3, processed.height, processed.width], pv.shape);
    assert_close(&format!("{name} pixel_values"), &processed.pixel_values, &pv.values, 1e-6, 0.0);
    let mask = golden_tensor(name, "pixel_attention_mask");
    let got_mask: Vec<f32> = processed.pixel_attention_mask.iter().map(|&m| m as f32).collect();
    assert_eq!(got_mask, mask.values, "{name}: pixel_attention_mask");

    // Vision tower and connector, tile by tile.
    let vision = golden_tensor(name, "vision_output");
    let connector = golden_tensor(name, "connector_output");
    let (tiles, patches, vh) = (vision.shape[0], vision.shape[1], vision.shape[2]);
    let (seq, th) = (connector.shape[1], connector.shape[2]);
    assert_eq!(tiles, processed.num_tiles);
    let (mut max_v, mut max_c) = (0f32, 0f32);
    for t in 0..tiles {
        let feats = vlm.model.encode_tile(processed, t).unwrap();
        let v = read_f32(feats.vision_output).unwrap();
        let c = read_f32(feats.connector_output).unwrap();
        let want_v = &vision.values[t * patches * vh..(t + 1) * patches * vh];
        let want_c = &connector.values[t * seq * th..(t + 1) * seq * th];
        max_v = max_v.max(assert_close(&format!("{name} vision_output tile {t}"), &v, want_v, ATOL, RTOL));
        max_c = max_c.max(assert_close(&format!("{name} connector_output tile {t}"), &c, want_c, ATOL, RTOL));
    }

    // All tiles at once, as generation encodes them (in batches): the same connector output.
    assert_eq!(vlm.model.tiles_per_batch(), webvlm_model::model::MAX_TILES_PER_BATCH, "{name}: tiny tiles batch fully");
    let all = read_f32(vlm.model.encode_image(processed).unwrap()).unwrap();
    max_c = max_c.max(assert_close(&format!("{name} connector_output, tiles batched"), &all, &connector.values, ATOL, RTOL));

    // Logits at every prompt position (one prefill).
    let logits = golden_tensor(name, "logits");
    let embeds = vlm.embed_prompt(&prompt).unwrap();
    let mut cache = vlm.model.new_cache(prompt.input_ids.len());
    let got = read_f32(vlm.model.forward(embeds, &mut cache, true).unwrap()).unwrap();
    let max_l = assert_close(&format!("{name} logits"), &got, &logits.values, ATOL, RTOL);

    // Greedy decoding with the KV cache, EOS ignored as in the generator script.
    let opts = GenerationOptions { max_new_tokens: g.max_new_tokens, ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(&vlm, prompt, opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    assert_eq!(generator.generated(), g.greedy_tokens.as_slice(), "{name}: greedy tokens");
    assert_eq!(generator.text(), g.greedy_text, "{name}: greedy text");
    assert_eq!(generator.finish_reason(), Some(FinishReason::Length));
    println!(
        "{name} on {backend:?}: max |diff| vision {max_v:.2e}, connector {max_c:.2e}, logits {max_l:.2e}; \
         greedy margin in transformers {:.3e}",
        g.greedy_min_top2_gap
    );
}

#[test]
fn split_fixture_on_cpu() {
    check_fixture("smolvlm-tiny-split", Backend::Cpu);
}

#[test]
fn split_fixture_on_wgpu() {
    check_fixture("smolvlm-tiny-split", Backend::Wgpu);
}

#[test]
fn single_fixture_on_cpu() {
    check_fixture("smolvlm-tiny-single", Backend::Cpu);
}

#[test]
fn single_fixture_on_wgpu() {
    check_fixture("smolvlm-tiny-single", Backend::Wgpu);
}

/// The split fixture's tiles go through the tower as one batch: encoding all of them costs the
/// dispatches of one tile plus two (the position embeddings repeated over the tiles, the
/// features' concatenation), not a tile's dispatches times the tile count (counted by CubeCL's
/// launch observer, on this test's thread).
#[test]
fn split_image_tiles_encode_as_one_batch() {
    let name = "smolvlm-tiny-split";
    let device = device(Backend::Wgpu);
    let vlm = Vlm::load(&DirSource::new(fixture(name).join("model")).unwrap(), &device).unwrap();
    let prompt = vlm.prepare(&goldens(name).prompt, Some(&webvlm_parity::fixture_image(name))).unwrap();
    let processed = prompt.image.as_ref().unwrap();
    assert!(processed.num_tiles > 2, "{} tiles", processed.num_tiles);
    // This thread's launches only: the other tests of this binary use the device meanwhile.
    let count = |f: &dyn Fn()| {
        let before = webvlm_kernels::counters::thread_dispatches();
        f();
        webvlm_kernels::counters::thread_dispatches() - before
    };
    let one = count(&|| drop(vlm.model.encode_tile(processed, 0).unwrap()));
    let all = count(&|| drop(vlm.model.encode_image(processed).unwrap()));
    println!("{name}: one tile {one} dispatches, all {} tiles {all}", processed.num_tiles);
    assert_eq!(all, one + 2, "{} tiles against one", processed.num_tiles);
}
