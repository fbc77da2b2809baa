//! Bad input gets a named error that says what is wrong, never a panic or garbage output.

use std::collections::HashMap;

use safetensors::tensor::{Dtype, TensorView, serialize};
use safetensors::SafeTensors;
use webvlm_model::device::Backend;
use webvlm_model::preprocess::{PreprocessError, RgbImage};
use webvlm_model::{DirSource, MemorySource, ModelError, Vlm};
use webvlm_parity::{device, fixture};

const FIXTURE: &str = "smolvlm-tiny-single";

/// Every file of the fixture model, in memory.
fn files() -> HashMap<String, Vec<u8>> {
    let dir = fixture(FIXTURE).join("model");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn source(files: &HashMap<String, Vec<u8>>) -> MemorySource {
    let mut s = MemorySource::new();
    for (k, v) in files {
        s.insert(k.clone(), v.clone());
    }
    s
}

fn load(files: &HashMap<String, Vec<u8>>) -> Result<Vlm, ModelError> {
    Vlm::load(&source(files), &device(Backend::Cpu))
}

/// Rewrite model.safetensors through `edit`, which gets (name, dtype, shape, bytes) entries.
fn edit_weights(edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) -> HashMap<String, Vec<u8>> {
    let mut f = files();
    let bytes = f["model.safetensors"].clone();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut entries: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .iter()
        .map(|(n, v)| (n.to_string(), v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut entries);
    let views: Vec<(String, TensorView)> = entries
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    f.insert("model.safetensors".into(), serialize(views, None).unwrap());
    f
}

#[test]
fn the_unmodified_fixture_loads_from_memory() {
    load(&files()).expect("the in-memory copy of the fixture loads");
}

#[test]
fn missing_tensor_is_named() {
    let f = edit_weights(|e| e.retain(|(n, ..)| n != "model.text_model.norm.weight"));
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains("model.text_model.norm.weight"), "{err}");
}

#[test]
fn misnamed_tensor_is_named() {
    let f = edit_weights(|e| {
        for (n, ..) in e.iter_mut() {
            if n == "model.vision_model.post_layernorm.bias" {
                *n = "model.vision_model.post_layer_norm.bias".into();
            }
        }
    });
    let err = load(&f).unwrap_err();
    assert!(err.to_string().contains("model.vision_model.post_layernorm.bias"), "{err}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let name = "model.connector.modality_projection.proj.weight";
    let f = edit_weights(|e| {
        for (n, d, s, b) in e.iter_mut() {
            if n == name {
                *s = vec![3, 3];
                *b = vec![0u8; 9 * d.bitsize() / 8];
            }
        }
    });
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::ShapeMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains(name) && msg.contains("[3, 3]") && msg.contains("[48, 432]"), "{msg}");
}

#[test]
fn tensors_of_another_family_are_refused_by_name() {
    // A LLaVA projector tensor in a SmolVLM checkpoint.
    let f = edit_weights(|e| {
        e.push(("model.multi_modal_projector.linear_2.bias".into(), Dtype::F32, vec![2], vec![0u8; 8]))
    });
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::MixedFamily { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("model.multi_modal_projector.linear_2.bias") && msg.contains("LLaVA") && msg.contains("SmolVLM"), "{msg}");
    // A Qwen-VL tower tensor, in the Hub's spelling.
    let f = edit_weights(|e| e.push(("visual.blocks.0.attn.qkv.bias".into(), Dtype::F32, vec![2], vec![0u8; 8])));
    let err = load(&f).unwrap_err();
    assert!(err.to_string().contains("model.visual.blocks.0.attn.qkv.bias") && err.to_string().contains("Qwen2-VL"), "{err}");
    // The same tensor in the legacy (transformers 4) spelling is caught under its canonical name.
    let f = edit_weights(|e| e.push(("multi_modal_projector.linear_1.weight".into(), Dtype::F32, vec![2], vec![0u8; 8])));
    let err = load(&f).unwrap_err();
    assert!(err.to_string().contains("model.multi_modal_projector.linear_1.weight"), "{err}");
    // A tensor no family knows is still reported as unused.
    let f = edit_weights(|e| e.push(("model.text_model.layers.0.extra.weight".into(), Dtype::F32, vec![2], vec![0u8; 8])));
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::UnusedTensors { .. }), "{err}");
    assert!(err.to_string().contains("model.text_model.layers.0.extra.weight"), "{err}");
}

#[test]
fn a_decoder_of_another_kind_is_refused_by_name() {
    // config.json says Phi, the weights are a gated-MLP (Llama/Qwen2) decoder.
    let dir = fixture("qwen2-tiny").join("model");
    let mut f: HashMap<String, Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    let cfg = String::from_utf8(f["config.json"].clone()).unwrap().replace("\"qwen2\"", "\"phi\"").replace("Qwen2ForCausalLM", "PhiForCausalLM").replace("\"silu\"", "\"gelu_new\"");
    f.insert("config.json".into(), cfg.into_bytes());
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::MixedFamily { .. }), "{err}");
    assert!(err.to_string().contains("mlp.gate_proj"), "{err}");
}

#[test]
fn unsupported_model_type_lists_what_is_supported() {
    let mut f = files();
    let cfg = String::from_utf8(f["config.json"].clone()).unwrap().replace("\"idefics3\"", "\"qwen3_vl\"");
    f.insert("config.json".into(), cfg.into_bytes());
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("qwen3_vl") && ["idefics3", "llava", "qwen2_vl", "qwen2_5_vl", "llama", "qwen2", "phi"].iter().all(|t| msg.contains(t)), "{msg}");
}

#[test]
fn unsupported_architecture_lists_what_is_supported() {
    let mut f = files();
    let cfg = String::from_utf8(f["config.json"].clone()).unwrap().replace("Idefics3ForConditionalGeneration", "Idefics3ForSequenceClassification");
    f.insert("config.json".into(), cfg.into_bytes());
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("Idefics3ForSequenceClassification") && msg.contains("LlavaForConditionalGeneration") && msg.contains("PhiForCausalLM"), "{msg}");
}

#[test]
fn truncated_safetensors_names_the_file() {
    let mut f = files();
    let bytes = f["model.safetensors"].clone();
    f.insert("model.safetensors".into(), bytes[..bytes.len() / 2].to_vec());
    let err = load(&f).unwrap_err();
    assert!(matches!(err, ModelError::Safetensors { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
}

#[test]
fn missing_shard_of_an_index_is_named() {
    let dir = fixture("smolvlm-tiny-split").join("model");
    let mut s = MemorySource::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "model-00003-of-00010.safetensors" {
            s.insert(name, std::fs::read(e.path()).unwrap());
        }
    }
    let err = Vlm::load(&s, &device(Backend::Cpu)).unwrap_err();
    assert!(err.to_string().contains("model-00003-of-00010.safetensors"), "{err}");
}

#[test]
fn zero_size_and_huge_images_are_refused_before_allocating() {
    assert!(matches!(RgbImage::from_rgb(0, 10, vec![]), Err(PreprocessError::EmptyImage)));
    let err = RgbImage::from_rgb(20000, 20000, vec![]).unwrap_err();
    assert!(matches!(err, PreprocessError::ImageTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("20000"), "{err}");
    let err = RgbImage::from_rgb(4, 4, vec![0; 10]).unwrap_err();
    assert!(matches!(err, PreprocessError::BufferSize { .. }), "{err}");
}

#[test]
fn prompt_longer_than_the_context_is_refused() {
    let vlm = Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(Backend::Cpu)).unwrap();
    let context = vlm.config().text_config.max_position_embeddings;
    let long = "the answer streams back token by token ".repeat(context);
    let err = vlm.prepare(&long, None).unwrap_err();
    match err {
        ModelError::ContextOverflow { tokens, context: c } => {
            assert!(tokens > c);
            assert_eq!(c, context);
        }
        other => panic!("expected ContextOverflow, got {other}"),
    }
}

#[test]
fn image_tokens_without_an_image_are_refused() {
    let vlm = Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(Backend::Cpu)).unwrap();
    let image_id = vlm.config().image_token_id;
    let err = vlm.model.embed(&[1, image_id, 2], None).unwrap_err();
    assert!(matches!(err, ModelError::ImageTokenMismatch { tokens: 1, features: 0 }), "{err}");
    let err = vlm.model.embed(&[1, 100_000], None).unwrap_err();
    assert!(matches!(err, ModelError::TokenOutOfRange { .. }), "{err}");
}

/// A model whose logits come out NaN (here: a NaN final norm, as an f16 overflow or a corrupt
/// weight would make them) stops with `NonFiniteLogits` instead of inventing a token: on the
/// CPU (host sampler) and on wgpu (argmax and sampler kernels), greedy and sampled.
#[test]
fn nan_logits_stop_the_generation_with_a_named_error() {
    use webvlm_runtime::{GenerateError, GenerationOptions, Generator};
    let files = edit_weights(|entries| {
        let norm = entries.iter_mut().find(|e| e.0 == "model.text_model.norm.weight").expect("the final norm");
        let nan: &[u8] = match norm.1 {
            Dtype::F32 => &[0x00, 0x00, 0xc0, 0x7f],
            Dtype::BF16 => &[0xc0, 0x7f],
            Dtype::F16 => &[0x00, 0x7e],
            other => panic!("unexpected dtype {other:?}"),
        };
        norm.3 = nan.repeat(norm.3.len() / nan.len());
    });
    for backend in [Backend::Cpu, Backend::Wgpu] {
        let vlm = Vlm::load(&source(&files), &device(backend)).unwrap();
        for temperature in [0.0, 0.8] {
            let opts = GenerationOptions { max_new_tokens: 4, temperature, seed: 1, ..Default::default() };
            let mut g = Generator::new(&vlm, vlm.prepare("Describe the colours", None).unwrap(), opts).unwrap();
            pollster::block_on(g.prefill()).unwrap();
            let err = pollster::block_on(g.step()).unwrap_err();
            assert!(matches!(err, GenerateError::NonFiniteLogits { token: 0 }), "{backend:?} T={temperature}: {err}");
            assert!(err.to_string().contains("not finite"), "{err}");
            assert!(g.generated().is_empty(), "no token was made up");
        }
    }
}
