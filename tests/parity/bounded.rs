//! Bounded memory: on a wgpu device whose `maxStorageBufferBindingSize` and `maxBufferSize` are
//! 16 MiB (wgpu itself refuses anything larger: no lenient driver), long inputs run to the
//! result of the CPU reference (burn's ndarray backend, the path checked against transformers
//! in `families.rs`), never past the limit and never to a panic.
//!
//! - Qwen2-VL with a 5 120-patch image: each vision layer's materialised scores would be
//!   4 heads × 5 120² × 4 B = 420 MB, 25× the limit.
//! - A 4 000-token Qwen2 prefill: 4 × 4 000² × 4 B = 256 MB of scores per layer.
//!
//! The fixtures' contexts (256 positions) are widened in a copy of their config: that changes
//! no computation, only what the context check allows. Every test in this binary runs on the
//! limited device (it is created once per process).

use std::path::{Path, PathBuf};

use webvlm_model::burn::tensor::Device;
use webvlm_model::device::{Backend, adapter_summary, create_device, limit_bindings, read_f32};
use webvlm_model::{DirSource, PreparedPrompt, RgbImage, Vlm};
use webvlm_parity::{assert_close, fixture};
use webvlm_runtime::{GenerationOptions, Generator};

const LIMIT: u64 = 16 << 20;
const ATOL: f32 = 2e-4;
const RTOL: f32 = 2e-3;

fn limited_gpu() -> Device {
    limit_bindings(LIMIT).expect("limit before the device exists");
    let device = create_device(Backend::Wgpu).expect("wgpu device");
    let limits = adapter_summary().expect("adapter").limits;
    assert_eq!(limits["maxStorageBufferBindingSize"], LIMIT as f64, "the device's binding limit");
    assert!(limits["maxBufferSize"] <= LIMIT as f64, "the device's buffer limit");
    device
}

/// A copy of a fixture's model folder whose JSON files are edited by `edit(name, json)`.
fn widened_copy(name: &str, edit: impl Fn(&str, &mut serde_json::Value)) -> PathBuf {
    let from = fixture(name).join("model");
    let to = std::env::temp_dir().join(format!("webvlm-bounded-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(&from).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if file.ends_with(".json") && file != "tokenizer.json" {
            let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            edit(&file, &mut json);
            std::fs::write(to.join(&file), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
        } else {
            std::fs::copy(&path, to.join(&file)).unwrap();
        }
    }
    to
}

fn load(dir: &Path, device: &Device) -> Vlm {
    Vlm::load(&DirSource::new(dir).unwrap(), device).unwrap()
}

/// Last-position logits of a prefill and the next `steps` greedy tokens.
fn prefill_and_greedy(vlm: &Vlm, prompt: &PreparedPrompt, steps: usize) -> (Vec<f32>, Vec<u32>) {
    let embeds = vlm.embed_prompt(prompt).unwrap();
    let mut cache = vlm.model.new_cache(prompt.input_ids.len());
    let logits = read_f32(vlm.model.forward_at(embeds, &mut cache, prompt.positions.as_deref(), false).unwrap()).unwrap();
    let opts = GenerationOptions { max_new_tokens: steps, ignore_eos: true, ..Default::default() };
    let mut generator = Generator::new(vlm, prompt.clone(), opts).unwrap();
    pollster::block_on(generator.prefill()).unwrap();
    while pollster::block_on(generator.step()).unwrap().is_some() {}
    (logits, generator.generated().to_vec())
}

/// A smooth picture with some detail, `w × h`.
fn picture(w: u32, h: u32) -> RgbImage {
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            rgb.extend([(x * 255 / w) as u8, (y * 255 / h) as u8, ((x ^ y) & 0xff) as u8]);
        }
    }
    RgbImage::from_rgb(w, h, rgb).unwrap()
}

#[test]
fn qwen2_vl_encodes_a_5120_patch_image_within_16_mib_bindings() {
    let gpu = limited_gpu();
    // 256 × 320 px at patch 4: a 64 × 80 patch grid, 1 280 image tokens after the 2 × 2 merge.
    let dir = widened_copy("qwen2-vl-tiny", |file, json| match file {
        "config.json" => json["text_config"]["max_position_embeddings"] = 4096.into(),
        "preprocessor_config.json" => json["size"]["longest_edge"] = (256 * 320).into(),
        _ => {}
    });
    let image = picture(256, 320);
    let run = |device: &Device| {
        let vlm = load(&dir, device);
        let prompt = vlm.prepare("Describe this picture.", Some(&image)).unwrap();
        let processed = prompt.image.as_ref().unwrap();
        assert_eq!(processed.patch_grid, Some((80, 64)), "patch grid");
        let feats = vlm.model.encode_tile(processed, 0).unwrap();
        let vision = read_f32(feats.vision_output).unwrap();
        let connector = read_f32(feats.connector_output).unwrap();
        let (logits, tokens) = prefill_and_greedy(&vlm, &prompt, 3);
        (prompt.input_ids.len(), vision, connector, logits, tokens)
    };
    let (n, vision, connector, logits, tokens) = run(&gpu);
    let (n_cpu, vision_cpu, connector_cpu, logits_cpu, tokens_cpu) = run(&create_device(Backend::Cpu).unwrap());
    assert_eq!(n, n_cpu);
    assert!(n > 1280, "{n} prompt tokens");
    assert_eq!(vision.len(), 5120 * 32);
    let v = assert_close("vision_output", &vision, &vision_cpu, ATOL, RTOL);
    let c = assert_close("connector_output", &connector, &connector_cpu, ATOL, RTOL);
    let l = assert_close("logits", &logits, &logits_cpu, ATOL, RTOL);
    assert_eq!(tokens, tokens_cpu, "greedy tokens");
    println!("5120 patches, {n} tokens under 16 MiB bindings: max |diff| vision {v:.2e}, connector {c:.2e}, logits {l:.2e}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_4000_token_prefill_runs_within_16_mib_bindings() {
    let gpu = limited_gpu();
    let dir = widened_copy("qwen2-tiny", |file, json| {
        if file == "config.json" {
            json["max_position_embeddings"] = 4096.into();
        }
    });
    // A long, varied prompt: ids cycling through the vocabulary past the special tokens.
    let ids: Vec<u32> = (0..4000u32).map(|i| 7 + (i * 37 + i / 13) % 380).collect();
    let prompt = PreparedPrompt { rendered: String::new(), input_ids: ids, image: None, positions: None };
    let (logits, tokens) = prefill_and_greedy(&load(&dir, &gpu), &prompt, 2);
    let (logits_cpu, tokens_cpu) = prefill_and_greedy(&load(&dir, &create_device(Backend::Cpu).unwrap()), &prompt, 2);
    let l = assert_close("logits", &logits, &logits_cpu, ATOL, RTOL);
    assert_eq!(tokens, tokens_cpu, "greedy tokens");
    println!("4000-token prefill under 16 MiB bindings: max |diff| logits {l:.2e}");
    std::fs::remove_dir_all(dir).ok();
}

/// A dense matrix past the device's binding (here 20 MB over 16 MiB) is held in row blocks of at
/// most one binding, and lookups across blocks come back in the ids' order.
#[test]
fn a_dense_embedding_past_the_binding_is_held_in_blocks() {
    use webvlm_model::nn::Embedding;
    use webvlm_model::weights::WeightStore;
    let gpu = limited_gpu();
    let (vocab, dim) = (10_000, 500);
    let values: Vec<f32> = (0..vocab * dim).map(|i| ((i / dim) as f32) + (i % dim) as f32 * 1e-3).collect();
    let mut store = WeightStore::empty(&gpu);
    store.insert("embed.weight".into(), vec![vocab, dim], values).unwrap();
    let embed = Embedding::load(&mut store.reader(""), "embed", vocab, dim, false).unwrap();
    assert!(embed.weight().is_err(), "two blocks, not one tensor");
    let ids = [3u32, 9_999, 8_387, 8_388, 0]; // 8 388 rows per 16 MiB block
    let rows = read_f32(embed.forward(&ids).unwrap()).unwrap();
    for (k, &id) in ids.iter().enumerate() {
        assert_eq!(rows[k * dim], id as f32, "row {k}");
        assert_eq!(rows[k * dim + 7], id as f32 + 7.0 * 1e-3, "row {k} column 7");
    }
}

/// A token embedding of bf16 values past the device's binding (20 MB over 16 MiB) stays bf16
/// on the device, in row chunks of at most one binding, and lookups — of ids from the host and
/// of ids already on the device — return the rows exactly.
#[test]
fn a_bf16_token_embedding_past_the_binding_stays_compact_in_chunks() {
    use webvlm_model::burn::tensor::{Int, Tensor, TensorData};
    use webvlm_model::nn::Embedding;
    use webvlm_model::weights::WeightStore;
    let gpu = limited_gpu();
    let (vocab, dim) = (20_000, 500);
    // Every value a bf16 (the top half of its f32), distinct between neighbouring rows.
    let value = |row: usize, col: usize| f32::from_bits(((0x3000 + (row * 7 + col * 13) % 0x4000) as u32) << 16);
    let values: Vec<f32> = (0..vocab * dim).map(|i| value(i / dim, i % dim)).collect();
    let mut store = WeightStore::empty(&gpu);
    store.insert("model.embed_tokens.weight".into(), vec![vocab, dim], values).unwrap();
    let embed = Embedding::load(&mut store.reader("model"), "embed_tokens", vocab, dim, false).unwrap();
    assert_eq!(embed.byte_size(), (vocab * dim * 2) as u64, "held as bf16");
    let ids = [3u32, 19_999, 16_776, 16_777, 0, 16_777]; // 16 777 rows per 16 MiB chunk
    let on_device = Tensor::<1, Int>::from_data(TensorData::new(ids.map(|i| i as i32).to_vec(), [ids.len()]), &gpu);
    for rows in [read_f32(embed.forward(&ids).unwrap()).unwrap(), read_f32(embed.forward_device(on_device).unwrap()).unwrap()] {
        for (k, &id) in ids.iter().enumerate() {
            for col in [0, 7, dim - 1] {
                assert_eq!(rows[k * dim + col], value(id as usize, col), "row {k} ({id}) column {col}");
            }
        }
    }
}
