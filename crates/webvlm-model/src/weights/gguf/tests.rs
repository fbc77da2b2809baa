//! Tests on the fixtures of `tests/generator/make_gguf_fixtures.py`: webvlm's tiny SmolVLM
//! checkpoints converted the way llama.cpp converts SmolVLM, compared with the Hugging Face
//! originals, plus one hand-written file per failure the reader must name.

use std::collections::{BTreeMap, BTreeSet};

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use super::decode::{self, BlockPlanes};
use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

type Tensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

fn read_safetensors(bytes: &[u8], into: &mut Tensors) {
    let st = SafeTensors::deserialize(bytes).expect("safetensors");
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => panic!("{name}: {other:?}"),
        };
        into.insert(name, (view.shape().to_vec(), values));
    }
}

/// Every tensor of a Hugging Face fixture checkpoint, as f32.
fn hf_checkpoint(fixture: &str) -> Tensors {
    let dir = format!("{FIXTURES}/{fixture}/model");
    let mut out = Tensors::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fixture dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    for path in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "safetensors")) {
        read_safetensors(&std::fs::read(&path).expect("shard"), &mut out);
    }
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Equal as numbers (so `-0.0 == 0.0`: `d·q + m` with `m = -8d` gives `+0` where ggml's
/// `d·(q - 8)` gives `-0` for a negative `d`), reporting the first difference.
fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = got.iter().zip(want).position(|(g, w)| g != w) {
        panic!("{what}: element {i} is {} but should be {}", got[i], want[i]);
    }
}

fn f16_round(v: &[f32]) -> Vec<f32> {
    v.iter().map(|x| f16::from_f32(*x).to_f32()).collect()
}

/// Decode every tensor of `files` and compare it with the Hugging Face checkpoint: F32/BF16
/// exactly, F16 with the HF value rounded to f16, block formats bit-exactly with gguf-py's
/// dequantisation (`expected`) and loosely with the HF value. Returns the GGUF types met.
fn check_against_hf(fixture: &str, files: &[&str], hf: &Tensors, expected: &Tensors) -> BTreeMap<String, usize> {
    let mut produced = BTreeSet::new();
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for f in files {
        let bytes = read(&format!("gguf/{fixture}/{f}"));
        let file = GgufFile::parse(&bytes).unwrap_or_else(|e| panic!("{f}: {e}"));
        for t in file.hf_tensors().unwrap_or_else(|e| panic!("{f}: {e}")) {
            let t = t.unwrap_or_else(|e| panic!("{f}: {e}"));
            let (shape, want) =
                hf.get(&t.name).unwrap_or_else(|| panic!("{} ({}) is not in the HF checkpoint", t.name, t.gguf_name));
            assert_eq!(&t.shape, shape, "{}", t.name);
            let ty = t.ggml_type;
            match t.value {
                TensorValue::Dense(got) => match ty {
                    GgmlType::F32 | GgmlType::BF16 => assert_eq!(bits(&got), bits(want), "{} ({ty})", t.name),
                    GgmlType::F16 => assert_eq!(bits(&got), bits(&f16_round(want)), "{} ({ty})", t.name),
                    other => panic!("{}: unexpected dense {other}", t.name),
                },
                TensorValue::Quant(m) => {
                    assert!(ty.is_block_quant(), "{}", t.name);
                    assert_eq!(vec![m.n(), m.k()], *shape, "{}", t.name);
                    let got = m.dequantize();
                    let (eshape, exp) =
                        expected.get(&t.name).unwrap_or_else(|| panic!("no expectation for {}", t.name));
                    assert_eq!(eshape, shape, "{}", t.name);
                    assert_same(&got, exp, &format!("{} ({ty}) vs gguf-py's dequantisation", t.name));
                    // A row in the wrong place would be far off its HF row; rounding is not.
                    let amax = want.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let err = got.iter().zip(want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
                    assert!(err <= 0.15 * amax, "{} ({ty}): max error {err} vs max |w| {amax}", t.name);
                }
            }
            *types.entry(ty.to_string()).or_default() += 1;
            assert!(produced.insert(t.name.clone()), "{} produced twice", t.name);
        }
    }
    let missing: Vec<_> = hf.keys().filter(|k| !produced.contains(*k)).collect();
    assert!(missing.is_empty(), "HF tensors with no GGUF counterpart: {missing:?}");
    types
}

#[test]
fn split_fixture_matches_hf_in_every_type() {
    let hf = hf_checkpoint("smolvlm-tiny-split");
    let mut expected = Tensors::new();
    read_safetensors(&read("gguf/smolvlm-tiny-split/expected.safetensors"), &mut expected);
    let types = check_against_hf("smolvlm-tiny-split", &["text.gguf", "mmproj.gguf"], &hf, &expected);
    for ty in ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"] {
        assert!(types.get(ty).is_some_and(|n| *n > 0), "no {ty} tensor exercised: {types:?}");
    }
    let quantised: usize = ["Q8_0", "Q4_0", "Q4_1"].iter().filter_map(|t| types.get(*t)).sum();
    assert_eq!(quantised, expected.len(), "every expectation used once");
    let text = read("gguf/smolvlm-tiny-split/text.gguf");
    assert_eq!(GgufFile::parse(&text).unwrap().version(), 3);
}

#[test]
fn single_fixture_v2_bf16_tied_matches_hf() {
    let hf = hf_checkpoint("smolvlm-tiny-single");
    let types = check_against_hf("smolvlm-tiny-single", &["text.gguf", "mmproj.gguf"], &hf, &Tensors::new());
    assert!(types.contains_key("BF16") && types.contains_key("F16") && types.contains_key("F32"), "{types:?}");
    let text = read("gguf/smolvlm-tiny-single/text.gguf");
    let file = GgufFile::parse(&text).unwrap();
    assert_eq!(file.version(), 2);
    assert!(file.tensor("output.weight").is_none(), "tied: no lm_head in the file");
}

/// The F32 Q/K of the split fixture are the permuted HF rows on disk and the HF rows after
/// decoding: the un-permutation is checked on exact values, for n_head (Q) and n_head_kv (K).
#[test]
fn query_and_key_rows_are_unpermuted() {
    let hf = hf_checkpoint("smolvlm-tiny-split");
    let bytes = read("gguf/smolvlm-tiny-split/text.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    for (gguf_name, hf_name) in [
        ("blk.0.attn_q.weight", "model.text_model.layers.0.self_attn.q_proj.weight"),
        ("blk.0.attn_k.weight", "model.text_model.layers.0.self_attn.k_proj.weight"),
    ] {
        let info = file.tensor(gguf_name).unwrap();
        assert_eq!(info.ggml_type, GgmlType::F32);
        let raw = file.decode(info).unwrap().into_dense();
        let (_, want) = &hf[hf_name];
        assert_ne!(bits(&raw), bits(want), "{gguf_name} should be stored permuted");
        let t = file.hf_tensors().unwrap().map(Result::unwrap).find(|t| t.gguf_name == gguf_name).unwrap();
        assert_eq!(t.name, hf_name);
        assert_eq!(bits(&t.value.into_dense()), bits(want), "{gguf_name}");
    }
}

#[test]
fn legacy_ffn_names_are_swapped_back_by_shape() {
    let bytes = read("gguf/smolvlm-tiny-split/mmproj-legacy-ffn.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    // The file really is legacy: its "ffn_down" takes n_embd (32) inputs, i.e. it is fc1.
    assert_eq!(file.tensor("v.blk.0.ffn_down.weight").unwrap().ne, vec![32, 64]);
    let hf = hf_checkpoint("smolvlm-tiny-split");
    let mut seen = 0;
    for t in file.hf_tensors().unwrap() {
        let t = t.unwrap();
        let (shape, want) = &hf[&t.name];
        assert_eq!(&t.shape, shape, "{}", t.name);
        assert_eq!(bits(&t.value.into_dense()), bits(want), "{}", t.name);
        seen += usize::from(t.name.contains(".mlp.fc"));
    }
    assert_eq!(seen, 8, "fc1/fc2 weight and bias of two layers");
}

fn hf_json(fixture: &str, file: &str) -> serde_json::Value {
    serde_json::from_slice(&read(&format!("{fixture}/model/{file}"))).unwrap()
}

#[test]
fn config_matches_hf_config_json() {
    for fixture in ["smolvlm-tiny-split", "smolvlm-tiny-single"] {
        let text = read(&format!("gguf/{fixture}/text.gguf"));
        let mmproj = read(&format!("gguf/{fixture}/mmproj.gguf"));
        let (text, mmproj) = (GgufFile::parse(&text).unwrap(), GgufFile::parse(&mmproj).unwrap());
        let got = config_json(&text, Some(&mmproj)).unwrap();
        let want = hf_json(fixture, "config.json");
        for key in ["model_type", "scale_factor", "image_token_id", "tie_word_embeddings"] {
            assert_eq!(got[key], want[key], "{fixture}: {key}");
        }
        let (gt, wt) = (&got["text_config"], &want["text_config"]);
        for key in [
            "model_type",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "head_dim",
            "rms_norm_eps",
            "max_position_embeddings",
            "hidden_act",
            "attention_bias",
            "mlp_bias",
            "tie_word_embeddings",
            "bos_token_id",
            "eos_token_id",
            "pad_token_id",
        ] {
            assert_eq!(gt[key], wt[key], "{fixture}: text_config.{key}");
        }
        let theta = wt.get("rope_theta").filter(|v| !v.is_null()).unwrap_or(&wt["rope_parameters"]["rope_theta"]);
        assert_eq!(gt["rope_theta"].as_f64(), theta.as_f64(), "{fixture}: rope_theta");
        let (gv, wv) = (&got["vision_config"], &want["vision_config"]);
        for key in [
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_channels",
            "image_size",
            "patch_size",
            "hidden_act",
            "layer_norm_eps",
        ] {
            assert_eq!(gv[key], wv[key], "{fixture}: vision_config.{key}");
        }

        let pre = preprocessor_config_json(&mmproj).unwrap();
        let want = &hf_json(fixture, "processor_config.json")["image_processor"];
        for key in ["image_mean", "image_std", "size", "max_image_size", "rescale_factor", "resample", "do_resize"] {
            assert_eq!(pre[key], want[key], "{fixture}: preprocessor {key}");
        }
        // llama.cpp always tiles when the resize target exceeds the tile; the single fixture's
        // HF processor disables splitting, which GGUF cannot record.
        assert_eq!(pre["do_image_splitting"], true);
        assert_eq!(
            chat_template(&text).unwrap(),
            Some(&*String::from_utf8(read(&format!("{fixture}/model/chat_template.jinja"))).unwrap())
        );
    }
}

#[test]
fn config_refuses_swapped_or_foreign_files() {
    let text = read("gguf/smolvlm-tiny-split/text.gguf");
    let mmproj = read("gguf/smolvlm-tiny-split/mmproj.gguf");
    let (text, mmproj) = (GgufFile::parse(&text).unwrap(), GgufFile::parse(&mmproj).unwrap());
    assert!(matches!(config_json(&mmproj, Some(&text)), Err(GgufError::Mismatch { .. })));
    let other = read("gguf/smolvlm-tiny-single/mmproj.gguf");
    let other = GgufFile::parse(&other).unwrap();
    let e = config_json(&text, Some(&other)).unwrap_err();
    assert!(matches!(e, GgufError::Mismatch { .. }) && e.to_string().contains("projection_dim"), "{e}");
    let arch = read("gguf/broken/unsupported_arch.gguf");
    let arch = GgufFile::parse(&arch).unwrap();
    let e = config_json(&arch, Some(&mmproj)).unwrap_err();
    assert!(
        matches!(&e, GgufError::UnsupportedArchitecture { found, supported } if found == "gemma2" && supported.contains("llama") && supported.contains("qwen2")),
        "{e}"
    );
}

fn broken(name: &str) -> Vec<u8> {
    read(&format!("gguf/broken/{name}.gguf"))
}

/// Parse, map and decode everything; the first error.
fn load_all(bytes: &[u8]) -> Result<usize> {
    let file = GgufFile::parse(bytes)?;
    let mut n = 0;
    for t in file.hf_tensors()? {
        t?;
        n += 1;
    }
    Ok(n)
}

#[test]
fn every_broken_file_gives_its_named_error() {
    use GgufError as E;
    type Check = fn(&GgufError) -> bool;
    let cases: Vec<(&str, Check)> = vec![
        ("bad_magic", |e| matches!(e, E::BadMagic { found } if found == b"GGML")),
        ("version1", |e| matches!(e, E::UnsupportedVersion { version: 1 })),
        ("truncated", |e| matches!(e, E::Truncated { file_len: 40, .. })),
        ("data_past_end", |e| matches!(e, E::TensorOutOfBounds { name, .. } if name == "token_embd.weight")),
        ("offset_past_end", |e| matches!(e, E::TensorOutOfBounds { start, .. } if *start > 4096)),
        ("misaligned", |e| matches!(e, E::MisalignedTensor { offset: 36, alignment: 32, .. })),
        ("bad_alignment", |e| matches!(e, E::BadAlignment { value: 24 })),
        ("duplicate_key", |e| matches!(e, E::DuplicateKey { key } if key == "general.architecture")),
        ("bad_block_shape", |e| matches!(e, E::BadShape { ne, .. } if ne == &[48, 1])),
        (
            "unsupported_type",
            |e| matches!(e, E::UnsupportedTensorType { name, ggml_type } if name == "token_embd.weight" && *ggml_type == GgmlType::Q4_K),
        ),
        ("unsupported_arch", |e| matches!(e, E::UnsupportedArchitecture { found, .. } if found == "gemma2")),
        ("unsupported_projector", |e| matches!(e, E::UnsupportedProjector { found, .. } if found == "ldp")),
        ("unknown_tensor", |e| matches!(e, E::UnknownTensor { name, .. } if name == "blk.0.attn_qkv.weight")),
        ("q4_0_overflow", |e| matches!(e, E::Q4OffsetOverflow { block: 0, d, .. } if *d == 60000.0)),
    ];
    for (name, expected) in cases {
        let e = load_all(&broken(name)).expect_err(name);
        assert!(expected(&e), "{name}: got {e:?}");
        assert!(!e.to_string().is_empty());
    }
    // The message names the type and what is supported.
    let e = load_all(&broken("unsupported_type")).unwrap_err().to_string();
    assert!(e.contains("Q4_K") && e.contains("Q8_0"), "{e}");
}

#[test]
fn align64_file_decodes() {
    let bytes = read("gguf/valid/align64.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    assert_eq!(file.alignment(), 64);
    assert_eq!(file.data_start() % 64, 0);
    let ts: Vec<HfTensor> = file.hf_tensors().unwrap().map(Result::unwrap).collect();
    assert_eq!(ts[0].name, "model.text_model.embed_tokens.weight");
    assert_eq!(ts[0].shape, vec![2, 4]);
    assert_eq!(ts[0].value, TensorValue::Dense((0..8).map(|i| i as f32 * 0.25 - 1.0).collect()));
    assert_eq!(ts[1].name, "lm_head.weight");
    let want: Vec<f32> = (-16..16).map(|q| -0.5 * q as f32).collect();
    match &ts[1].value {
        TensorValue::Quant(m) => assert_eq!((m.n(), m.k(), m.dequantize()), (1, 32, want)),
        other => panic!("{other:?}"),
    }
}

/// No input may panic: every prefix of a file, and files with bytes flipped in the header.
#[test]
fn truncations_and_corruptions_never_panic() {
    let small = read("gguf/valid/align64.gguf");
    for len in 0..small.len() {
        assert!(load_all(&small[..len]).is_err(), "prefix of {len} bytes parsed");
    }
    assert_eq!(load_all(&small).unwrap(), 2);

    let text = read("gguf/smolvlm-tiny-split/text.gguf");
    let data_start = GgufFile::parse(&text).unwrap().data_start() as usize;
    for len in (0..data_start + 64).step_by(7) {
        assert!(GgufFile::parse(&text[..len]).is_err(), "prefix of {len} bytes parsed");
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mmproj = read("gguf/smolvlm-tiny-split/mmproj.gguf");
    let header = GgufFile::parse(&mmproj).unwrap().data_start() as usize;
    for _ in 0..3000 {
        let mut bytes = mmproj.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % header as u64) as usize;
            bytes[at] ^= 1 << (next() % 8);
        }
        let _ = load_all(&bytes);
    }
}

#[test]
fn huge_counts_do_not_allocate() {
    // 2^60 tensors and 2^60 metadata entries in a 24-byte file.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend((1u64 << 60).to_le_bytes());
    bytes.extend((1u64 << 60).to_le_bytes());
    assert!(matches!(GgufFile::parse(&bytes), Err(GgufError::Truncated { .. })));
    // An array claiming 2^62 strings.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(0u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.extend(1u64.to_le_bytes());
    bytes.push(b'k');
    bytes.extend(9u32.to_le_bytes());
    bytes.extend(8u32.to_le_bytes());
    bytes.extend((1u64 << 62).to_le_bytes());
    assert!(matches!(GgufFile::parse(&bytes), Err(GgufError::Truncated { .. })));
}

#[test]
fn q4_nibbles_are_repacked_lowest_first() {
    // Q4_1 block: d = 1, m = 0, nibble of weight w = w % 16 → byte j = j | (j << 4).
    let mut block = Vec::new();
    block.extend(f16::from_f32(1.0).to_le_bytes());
    block.extend(f16::from_f32(0.0).to_le_bytes());
    block.extend((0u8..16).map(|j| j | (j << 4)));
    let BlockPlanes::Q4 { qs, dm } = decode::block_planes("t", GgmlType::Q4_1, &block).unwrap() else { panic!() };
    assert_eq!(qs, vec![0x7654_3210, 0xfedc_ba98, 0x7654_3210, 0xfedc_ba98]);
    assert_eq!(dm, vec![u32::from(f16::from_f32(1.0).to_bits())]);
    // Weight j low and j+16 high: byte j = j | (15 - j) << 4.
    let mut block = f16::from_f32(1.0).to_le_bytes().to_vec();
    block.extend((0u8..16).map(|j| j | ((15 - j) << 4)));
    let BlockPlanes::Q4 { qs, .. } = decode::block_planes("t", GgmlType::Q4_0, &block).unwrap() else { panic!() };
    assert_eq!(qs, vec![0x7654_3210, 0xfedc_ba98, 0x89ab_cdef, 0x0123_4567]);
}

#[test]
fn q4_0_becomes_exact_q4() {
    // Every nibble, scales of both signs, subnormal and near the f16 limit (8·8184 = 65472 ≤ 65504).
    for d in [1.0f32, -0.375, 6.1e-5, 3.0e-7, -1.0e-7, 8184.0, -8184.0, 0.0] {
        let d16 = f16::from_f32(d);
        let mut block = d16.to_le_bytes().to_vec();
        block.extend((0u8..16).map(|j| j | ((15 - j) << 4)));
        let BlockPlanes::Q4 { qs, dm } = decode::block_planes("t", GgmlType::Q4_0, &block).unwrap() else { panic!() };
        let m = webvlm_kernels::QuantMatrix::from_q4_planes(1, 32, qs, dm).unwrap();
        let q = |w: usize| if w < 16 { w as f32 } else { (31 - w) as f32 };
        let want: Vec<f32> = (0..32).map(|w| d16.to_f32() * (q(w) - 8.0)).collect();
        assert_same(&m.dequantize(), &want, &format!("d = {d}"));
    }
    let mut block = f16::from_f32(8192.0).to_le_bytes().to_vec();
    block.extend([0u8; 16]);
    assert!(matches!(decode::block_planes("t", GgmlType::Q4_0, &block), Err(GgufError::Q4OffsetOverflow { .. })));
}

#[test]
fn q8_scales_pack_two_per_word() {
    let mut bytes = Vec::new();
    for (d, q) in [(1.0f32, 1i8), (2.0, -2), (-3.0, 127)] {
        bytes.extend(f16::from_f32(d).to_le_bytes());
        bytes.extend(std::iter::repeat_n(q as u8, 32));
    }
    let BlockPlanes::Q8 { qs, d } = decode::block_planes("t", GgmlType::Q8_0, &bytes).unwrap() else { panic!() };
    assert_eq!(qs.len(), 24);
    assert_eq!(qs[8], 0xfefe_fefe);
    let h = |x: f32| u32::from(f16::from_f32(x).to_bits());
    assert_eq!(d, vec![h(1.0) | h(2.0) << 16, h(-3.0)]);
    let m = webvlm_kernels::QuantMatrix::from_q8_planes(3, 32, qs, d).unwrap();
    assert_eq!(m.dequantize()[64..], [-381.0; 32]);
}

#[test]
fn unpermute_inverts_llama_cpp_permute() {
    // 2 heads of 4 rows: HF row h·4 + half·2 + i sits at GGUF row h·4 + 2i + half.
    let hf_rows: Vec<u8> = (0..8).collect();
    let gguf_rows = [0u8, 2, 1, 3, 4, 6, 5, 7];
    assert_eq!(decode::unpermute_rows("q", &gguf_rows, 8, 2).unwrap(), hf_rows);
    // Rows of several bytes move whole.
    let gguf: Vec<u8> = gguf_rows.iter().flat_map(|r| [r * 10, r * 10 + 1]).collect();
    let hf: Vec<u8> = hf_rows.iter().flat_map(|r| [r * 10, r * 10 + 1]).collect();
    assert_eq!(decode::unpermute_rows("q", &gguf, 8, 2).unwrap(), hf);
    assert!(matches!(decode::unpermute_rows("q", &gguf, 8, 3), Err(GgufError::BadPermutation { .. })));
    assert!(matches!(decode::unpermute_rows("q", &gguf, 6, 3), Err(GgufError::BadPermutation { .. })));
}

#[test]
fn name_tables() {
    let m = |k, n| map_name(k, n).map(|m| m.hf_name);
    assert_eq!(
        m(FileKind::Text, "blk.12.attn_output.weight").as_deref(),
        Some("model.text_model.layers.12.self_attn.o_proj.weight")
    );
    assert_eq!(m(FileKind::Text, "output.weight").as_deref(), Some("lm_head.weight"));
    assert_eq!(
        m(FileKind::Mmproj(Projector::Idefics3), "v.blk.3.ffn_up.bias").as_deref(),
        Some("model.vision_model.encoder.layers.3.mlp.fc1.bias")
    );
    assert_eq!(
        m(FileKind::Mmproj(Projector::Idefics3), "mm.model.fc.weight").as_deref(),
        Some("model.connector.modality_projection.proj.weight")
    );
    for bad in [
        "blk.01.attn_q.weight",
        "blk.x.attn_q.weight",
        "blk.0.attn_q.scale",
        "v.blk.0.ffn_up.weight",
        "rope_freqs.weight",
    ] {
        assert_eq!(m(FileKind::Text, bad), None, "{bad}");
    }
    assert_eq!(m(FileKind::Mmproj(Projector::Idefics3), "token_embd.weight"), None);
    assert_eq!(map_name(FileKind::Text, "blk.0.attn_k.weight").unwrap().role, Role::Key);
}

#[test]
fn ggml_type_table() {
    assert_eq!(GgmlType::Q8_0.block(), Some((32, 34)));
    assert_eq!(GgmlType::Q4_K.block(), Some((256, 144)));
    assert_eq!(GgmlType(4).block(), None);
    assert_eq!(GgmlType(99).to_string(), "ggml type #99");
    assert_eq!(GgmlType::BF16.to_string(), "BF16");
}

/// The tokenizer built from GGUF metadata tokenizes like the fixture's own tokenizer.json (the
/// converter wrote the same vocabulary and merges into the GGUF). Digits are left out: the
/// fixture's tokenizer.json does not split them while its GGUF says `smollm`, which does, as
/// llama.cpp does (the real SmolLM2 test compares digits with llama.cpp itself).
#[test]
fn tokenizer_from_metadata_matches_tokenizer_json() {
    for fixture in ["smolvlm-tiny-single", "smolvlm-tiny-split"] {
        let bytes = read(&format!("gguf/{fixture}/text.gguf"));
        let file = GgufFile::parse(&bytes).unwrap();
        let built = match tokenizer_json(&file) {
            Ok(json) => crate::Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap(),
            // The fixture's pre-tokenizer may be one this builder names as unsupported: that
            // is a named error, which is what this test then checks.
            Err(GgufError::UnsupportedTokenizer { .. }) => continue,
            Err(e) => panic!("{fixture}: {e}"),
        };
        let hf = crate::Tokenizer::from_bytes(&read(&format!("{fixture}/model/tokenizer.json"))).unwrap();
        for text in ["Describe the colours, please.", "  two  spaces\tand a tab\n", "<|im_start|>User:<image>x<end_of_utterance>"] {
            assert_eq!(built.encode(text).unwrap(), hf.encode(text).unwrap(), "{fixture}: {text:?}");
        }
        let cfg = tokenizer_config_json(&file).unwrap();
        assert!(cfg["bos_token"].is_string() && cfg["eos_token"].is_string(), "{cfg}");
    }
}

/// A GGUF without tokenizer metadata is a named error, never a model that prints garbage.
#[test]
fn missing_tokenizer_metadata_is_a_named_error() {
    let bytes = read("gguf/valid/align64.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    assert!(matches!(tokenizer_json(&file), Err(GgufError::MissingKey { ref key }) if key == "tokenizer.ggml.model"));
}

/// A LLaVA / Qwen-VL checkpoint name as the GGUF reader (and then the loader) names it: the
/// loader's canonical transformers-5 name, with the decoder under `model.language_model.`.
fn vlm_hf_name(name: &str) -> String {
    let name = crate::weights::canonical_name(name);
    match name.strip_prefix("model.") {
        Some(rest)
            if !["language_model.", "visual.", "vision_tower.", "multi_modal_projector."].iter().any(|p| rest.starts_with(p)) =>
        {
            format!("model.language_model.{rest}")
        }
        _ => name,
    }
}

/// Every tensor of a VLM fixture's text + mmproj GGUF pair against the Hugging Face checkpoint
/// (F32/BF16 bit-exact, F16 equal to the HF value rounded to f16, block formats within their
/// rounding); `unused` lists the HF tensors the file leaves out. Returns the HF names produced.
fn check_vlm_pair(fixture: &str, mmproj: &str, unused: &[&str]) -> BTreeSet<String> {
    let hf: Tensors = hf_checkpoint(fixture).into_iter().map(|(k, v)| (vlm_hf_name(&k), v)).collect();
    let mut produced = BTreeSet::new();
    for f in ["text.gguf", mmproj] {
        let bytes = read(&format!("gguf/{fixture}/{f}"));
        let file = GgufFile::parse(&bytes).unwrap_or_else(|e| panic!("{f}: {e}"));
        for t in file.hf_tensors().unwrap_or_else(|e| panic!("{fixture}/{f}: {e}")) {
            let t = t.unwrap_or_else(|e| panic!("{f}: {e}"));
            let name = t.name.replacen("model.text_model.", "model.language_model.", 1);
            let (shape, want) = hf.get(&name).unwrap_or_else(|| panic!("{name} ({}) is not in the HF checkpoint", t.gguf_name));
            assert_eq!(&t.shape, shape, "{name}");
            match (t.value, t.ggml_type) {
                (TensorValue::Dense(got), GgmlType::F32 | GgmlType::BF16) => assert_eq!(bits(&got), bits(want), "{name}"),
                (TensorValue::Dense(got), GgmlType::F16) => assert_eq!(bits(&got), bits(&f16_round(want)), "{name}"),
                (TensorValue::Quant(m), ty) => {
                    assert!(ty.is_block_quant(), "{name}");
                    let got = m.dequantize();
                    let amax = want.iter().fold(0f32, |a, v| a.max(v.abs()));
                    let err = got.iter().zip(want).fold(0f32, |a, (g, w)| a.max((g - w).abs()));
                    assert!(err <= 0.02 * amax, "{name} ({ty}): max error {err} vs max |w| {amax}");
                }
                (_, ty) => panic!("{name}: unexpected {ty}"),
            }
            assert!(produced.insert(name.clone()), "{name} produced twice");
        }
    }
    let missing: Vec<_> = hf.keys().filter(|k| !produced.contains(*k) && !unused.iter().any(|u| k.contains(u))).collect();
    assert!(missing.is_empty(), "{fixture}: HF tensors with no GGUF counterpart: {missing:?}");
    produced
}

#[test]
fn llava_legacy_mmproj_matches_hf() {
    // The legacy converter leaves out what LLaVA never runs: post_layernorm and the CLIP layers
    // after the feature layer (-2 of 3: layer 2).
    let produced = check_vlm_pair("llava-tiny", "mmproj.gguf", &["post_layernorm", "encoder.layers.2."]);
    assert!(produced.contains("model.vision_tower.embeddings.class_embedding"));
    // fc1 was written as `ffn_down` (legacy naming) and is read back as fc1.
    assert!(produced.contains("model.vision_tower.encoder.layers.1.mlp.fc1.weight"));
}

#[test]
fn qwen_vl_mmproj_restacks_qkv_and_patch_frames() {
    for fixture in ["qwen2-vl-tiny", "qwen2_5-vl-tiny"] {
        let produced = check_vlm_pair(fixture, "mmproj.gguf", &[]);
        assert!(produced.contains("model.visual.blocks.1.attn.qkv.weight"), "{fixture}");
        assert!(produced.contains("model.visual.patch_embed.proj.weight"), "{fixture}");
    }
    // Q8_0 q, k and v are stacked block for block: the quantised qkv is the three matrices'
    // dequantised rows, one after the other.
    let produced = check_vlm_pair("qwen2-vl-tiny", "mmproj-q8.gguf", &[]);
    assert!(produced.contains("model.visual.blocks.0.attn.qkv.bias"));
    let bytes = read("gguf/qwen2-vl-tiny/mmproj-q8.gguf");
    let file = GgufFile::parse(&bytes).unwrap();
    let qkv = file.hf_tensors().unwrap().map(Result::unwrap).find(|t| t.name == "model.visual.blocks.0.attn.qkv.weight").unwrap();
    assert_eq!(qkv.ggml_type, GgmlType::Q8_0);
    let TensorValue::Quant(m) = qkv.value else { panic!("qkv should stay quantised") };
    let parts: Vec<f32> = ["attn_q", "attn_k", "attn_v"]
        .iter()
        .flat_map(|p| file.decode(file.tensor(&format!("v.blk.0.{p}.weight")).unwrap()).unwrap().into_dense())
        .collect();
    assert_same(&m.dequantize(), &parts, "stacked Q8_0 qkv");
}

#[test]
fn vlm_configs_match_hf_config_json() {
    use crate::config::{Family, ModelConfig};
    for (fixture, family) in [("llava-tiny", Family::Llava), ("qwen2-vl-tiny", Family::Qwen2Vl), ("qwen2_5-vl-tiny", Family::Qwen25Vl)] {
        let (text, mmproj) = (read(&format!("gguf/{fixture}/text.gguf")), read(&format!("gguf/{fixture}/mmproj.gguf")));
        let (text, mmproj) = (GgufFile::parse(&text).unwrap(), GgufFile::parse(&mmproj).unwrap());
        let got = ModelConfig::from_json(&config_json(&text, Some(&mmproj)).unwrap().to_string()).unwrap();
        let want = ModelConfig::from_json(&String::from_utf8(read(&format!("{fixture}/model/config.json"))).unwrap()).unwrap();
        assert_eq!(got.family, family, "{fixture}");
        assert_eq!(got.image_token_id, want.image_token_id, "{fixture}: image token");
        assert_eq!(got.tie_word_embeddings, want.tie_word_embeddings, "{fixture}: tied");
        let (gt, wt) = (&got.text_config, &want.text_config);
        assert_eq!(
            (gt.vocab_size, gt.hidden_size, gt.intermediate_size, gt.num_hidden_layers, gt.num_attention_heads),
            (wt.vocab_size, wt.hidden_size, wt.intermediate_size, wt.num_hidden_layers, wt.num_attention_heads),
            "{fixture}: text sizes"
        );
        assert_eq!((gt.num_key_value_heads(), gt.head_dim(), gt.rotary_dim()), (wt.num_key_value_heads(), wt.head_dim(), wt.rotary_dim()));
        assert_eq!(gt.mrope_section(), wt.mrope_section(), "{fixture}: M-RoPE sections");
        assert_eq!(gt.rope_theta().unwrap(), wt.rope_theta().unwrap(), "{fixture}: rope theta");
        assert_eq!(gt.norm_eps(), wt.norm_eps(), "{fixture}: eps");
        let (gv, wv) = (format!("{:?}", got.vision_config), format!("{:?}", want.vision_config));
        if family == Family::Llava {
            // Two stored CLIP layers, the last one the feature layer, vs three and -2.
            assert_eq!(got.feature_layer().unwrap(), want.feature_layer().unwrap(), "{fixture}: layers run");
            assert_eq!(got.feature_select().unwrap(), want.feature_select().unwrap());
            assert_eq!(gv.replace("num_hidden_layers: 2", "num_hidden_layers: 3"), wv, "{fixture}: vision config");
        } else {
            assert_eq!(gv, wv, "{fixture}: vision config");
            for key in ["video_token_id", "vision_start_token_id", "vision_end_token_id"] {
                let raw = config_json(&text, Some(&mmproj)).unwrap();
                assert_eq!(raw[key], hf_json(fixture, "config.json")[key], "{fixture}: {key}");
            }
        }
        let pre = preprocessor_config_json(&mmproj).unwrap();
        let file = if family == Family::Llava { "processor_config.json" } else { "preprocessor_config.json" };
        let mut want = hf_json(fixture, file);
        if family == Family::Llava {
            want = want["image_processor"].clone();
        }
        // GGUF stores mean and std as f32: equal as f32 is all a file can be.
        let as_f32 = |v: &serde_json::Value| match v.as_array() {
            Some(items) => serde_json::json!(items.iter().map(|x| x.as_f64().map(|f| f as f32)).collect::<Vec<_>>()),
            None => v.clone(),
        };
        for (key, value) in want.as_object().unwrap() {
            assert_eq!(as_f32(&pre[key]), as_f32(value), "{fixture}: preprocessor {key}");
        }
    }
}

#[test]
fn qwen_vl_processor_defaults_without_pixel_keys() {
    let bytes = read("gguf/qwen2-vl-tiny/mmproj-q8.gguf");
    let pre = preprocessor_config_json(&GgufFile::parse(&bytes).unwrap()).unwrap();
    assert_eq!(pre["size"], serde_json::json!({"shortest_edge": 3136, "longest_edge": 1003520}));
    assert_eq!((pre["patch_size"].as_u64(), pre["merge_size"].as_u64()), (Some(4), Some(2)));
}

#[test]
fn vlm_pairs_refuse_foreign_decoders_and_missing_parts() {
    let qwen_text = read("gguf/qwen2-vl-tiny/text.gguf");
    let llava_mmproj = read("gguf/llava-tiny/mmproj.gguf");
    let llava_text = read("gguf/llava-tiny/text.gguf");
    let qwen_mmproj = read("gguf/qwen2-vl-tiny/mmproj.gguf");
    fn p(b: &[u8]) -> GgufFile<'_> {
        GgufFile::parse(b).unwrap()
    }
    for (text, mmproj) in [(&qwen_text, &llava_mmproj), (&llava_text, &qwen_mmproj)] {
        let e = config_json(&p(text), Some(&p(mmproj))).unwrap_err();
        assert!(matches!(e, GgufError::Mismatch { .. }) && e.to_string().contains("pairs with"), "{e}");
    }
    // A Qwen2-VL decoder alone is a Qwen2 text model.
    let alone = config_json(&p(&qwen_text), None).unwrap();
    assert_eq!(alone["model_type"], "qwen2");

    // Drop `v.blk.1.attn_k.weight` from the file: the stacked qkv is named as incomplete.
    let file = p(&qwen_mmproj);
    let idx = file.tensors().iter().position(|t| t.name == "v.blk.1.attn_k.weight").unwrap();
    let mut bytes = qwen_mmproj.clone();
    rename_tensor(&mut bytes, &file, idx, "v.blk.1.attn_k.weigh_");
    let e = GgufFile::parse(&bytes).unwrap().hf_tensors().err().unwrap();
    assert!(matches!(e, GgufError::UnknownTensor { .. }), "{e}");
    let renamed = GgufFile::parse(&bytes).unwrap();
    assert!(renamed.tensor("v.blk.1.attn_k.weigh_").is_some());
    let mut bytes = qwen_mmproj.clone();
    rename_tensor(&mut bytes, &file, idx, "v.blk.1.attn_q.weight");
    let e = GgufFile::parse(&bytes).err().or_else(|| GgufFile::parse(&bytes).unwrap().hf_tensors().err()).unwrap();
    assert!(matches!(e, GgufError::DuplicateTensor { .. } | GgufError::DuplicateHfName { .. }), "{e}");
    let mut bytes = qwen_mmproj.clone();
    rename_tensor(&mut bytes, &file, idx, "v.blk.9.attn_k.weight");
    let e = GgufFile::parse(&bytes).unwrap().hf_tensors().err().unwrap();
    assert!(
        matches!(&e, GgufError::IncompleteTensor { hf_name, missing, .. } if hf_name == "model.visual.blocks.1.attn.qkv.weight" && missing == "v.blk.1.attn_k.weight"),
        "{e}"
    );
}

/// Overwrite tensor `index`'s name in place (same length), so every offset stays valid.
fn rename_tensor(bytes: &mut [u8], file: &GgufFile, index: usize, new: &str) {
    let old = &file.tensors()[index].name;
    assert_eq!(old.len(), new.len());
    let header = &bytes[..file.data_start() as usize];
    let mut pattern = (old.len() as u64).to_le_bytes().to_vec();
    pattern.extend_from_slice(old.as_bytes());
    let at = header.windows(pattern.len()).rposition(|w| w == pattern).unwrap() + 8;
    bytes[at..at + new.len()].copy_from_slice(new.as_bytes());
}

#[test]
fn llava_next_and_unknown_projectors_are_named() {
    let bytes = read("gguf/broken/unsupported_projector.gguf");
    let e = GgufFile::parse(&bytes).unwrap().kind().unwrap_err();
    assert!(matches!(&e, GgufError::UnsupportedProjector { found, supported } if found == "ldp" && supported.contains("qwen2.5vl_merger")), "{e}");
}

#[test]
fn llava_without_image_token_takes_the_first_id_past_the_vocabulary() {
    let (text, mmproj) = (read("gguf/llava-tiny/text-no-image-token.gguf"), read("gguf/llava-tiny/mmproj.gguf"));
    let (text, mmproj) = (GgufFile::parse(&text).unwrap(), GgufFile::parse(&mmproj).unwrap());
    let config = config_json(&text, Some(&mmproj)).unwrap();
    assert_eq!((config["image_token_id"].as_u64(), config["text_config"]["vocab_size"].as_u64()), (Some(400), Some(400)));
    let mut tokenizer = tokenizer_json(&text).unwrap();
    add_image_token(&mut tokenizer, 400);
    add_image_token(&mut tokenizer, 400);
    let tok = tokenizers::Tokenizer::from_bytes(tokenizer.to_string().as_bytes()).unwrap();
    assert_eq!(tok.token_to_id("<image>"), Some(400));
    assert_eq!(tok.encode("a<image>b", false).unwrap().get_ids().iter().filter(|&&i| i == 400).count(), 1);
}

/// A SentencePiece BPE vocabulary (`tokenizer.ggml.model = llama`, byte fallback): the
/// tokenizer made from it gives the sentencepiece library's ids on every sample, llama.cpp's
/// split around control tokens, and decodes back to sentencepiece's text.
#[test]
fn sentencepiece_vocabulary_matches_sentencepiece() {
    let file = read("gguf/spm-vocab/vocab.gguf");
    let file = GgufFile::parse(&file).unwrap();
    let tok = tokenizers::Tokenizer::from_bytes(tokenizer_json(&file).unwrap().to_string().as_bytes()).unwrap();
    let expected: serde_json::Value = serde_json::from_slice(&read("gguf/spm-vocab/expected.json")).unwrap();
    let mut checked = 0;
    for group in ["sentencepiece", "with_control_tokens"] {
        for (text, ids) in expected[group].as_object().unwrap() {
            let want: Vec<u32> = serde_json::from_value(ids.clone()).unwrap();
            let got = tok.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            assert_eq!(got, want, "{group}: {text:?}");
            checked += 1;
        }
    }
    for (text, decoded) in expected["decoded"].as_object().unwrap() {
        let ids = tok.encode(text.as_str(), false).unwrap().get_ids().to_vec();
        assert_eq!(tok.decode(&ids, true).unwrap(), decoded.as_str().unwrap(), "decode {text:?}");
    }
    assert_eq!(checked, 11);
    // BOS is prepended as llama.cpp does with add_bos_token.
    assert_eq!(tok.encode("Hello", true).unwrap().get_ids()[0], 1);
    let config = tokenizer_config_json(&file).unwrap();
    assert_eq!((config["bos_token"].as_str(), config["eos_token"].as_str()), (Some("<s>"), Some("</s>")));
}

#[test]
fn other_tokenizer_models_are_named() {
    let mut bytes = read("gguf/spm-vocab/vocab.gguf");
    let key = b"tokenizer.ggml.model";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4 + 8;
    assert_eq!(&bytes[at..at + 5], b"llama");
    bytes[at..at + 5].copy_from_slice(b"bertx");
    let e = tokenizer_json(&GgufFile::parse(&bytes).unwrap()).unwrap_err();
    assert!(matches!(&e, GgufError::UnsupportedTokenizer { what, supported } if what.contains("bertx") && supported.contains("SentencePiece")), "{e}");
}

/// A Qwen-VL mmproj whose `attn_k` is really another matrix (`ffn_up`, 64 rows instead of 32):
/// the stacked qkv gets the wrong height and the loader names it; a pair missing a merger
/// matrix is named when the config is made.
#[test]
fn misshapen_or_missing_qwen_vl_tensors_are_named_at_load() {
    use crate::device::{Backend, create_device};
    let text = read("gguf/qwen2-vl-tiny/text.gguf");
    let original = read("gguf/qwen2-vl-tiny/mmproj.gguf");
    let file = GgufFile::parse(&original).unwrap();
    let index = |n: &str| file.tensors().iter().position(|t| t.name == n).unwrap();
    // Swap the names of attn_k and ffn_up (both positions found before either is written).
    let mut bytes = original.clone();
    let mut swapped = original.clone();
    rename_tensor(&mut bytes, &file, index("v.blk.0.attn_k.weight"), "v.blk.0.ffn_up.weight");
    rename_tensor(&mut swapped, &file, index("v.blk.0.ffn_up.weight"), "v.blk.0.attn_k.weight");
    for (i, (a, b)) in original.iter().zip(&swapped).enumerate() {
        if a != b {
            bytes[i] = *b;
        }
    }
    assert!(GgufFile::parse(&bytes).unwrap().hf_tensors().is_ok(), "names alone look right");
    let mut source = crate::MemorySource::new();
    source.insert("text.gguf", text.clone());
    source.insert("mmproj.gguf", bytes);
    let device = create_device(Backend::Cpu).unwrap();
    let e = crate::Vlm::load(&source, &device).err().expect("a misshapen qkv must not load");
    println!("{e}");
    assert!(e.to_string().contains("qkv") || e.to_string().contains("fc1"), "{e}");

    let mut bytes = original.clone();
    rename_tensor(&mut bytes, &file, index("mm.2.weight"), "mm.3.weight");
    let mut source = crate::MemorySource::new();
    source.insert("text.gguf", text);
    source.insert("mmproj.gguf", bytes);
    let e = crate::Vlm::load(&source, &device).err().expect("no merger output matrix");
    println!("{e}");
    assert!(e.to_string().contains("mm.2.weight"), "{e}");
}
