//! Shared helpers for the parity tests: fixture paths, goldens, devices, tolerances.

use std::path::PathBuf;

use safetensors::{Dtype, SafeTensors};
use serde::Deserialize;
use webvlm_model::burn::tensor::Device;
use webvlm_model::device::{Backend, create_device};

/// The committed fixtures (see tests/generator/make_fixtures.py), or `WEBVLM_FIXTURES` when set
/// (to try freshly generated fixtures before committing them).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("WEBVLM_FIXTURES").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// The fixture's `image.png` (written by PIL), decoded with the crate the CLI uses.
pub fn fixture_image(name: &str) -> webvlm_model::RgbImage {
    let img = image::open(fixture(name).join("image.png")).expect("image.png").to_rgb8();
    webvlm_model::RgbImage::from_rgb(img.width(), img.height(), img.into_raw()).expect("rgb image")
}

/// `goldens.json` of a fixture.
#[derive(Debug, Deserialize)]
pub struct Goldens {
    pub prompt: String,
    pub rendered_prompt: String,
    pub input_ids: Vec<u32>,
    pub rows: usize,
    pub cols: usize,
    pub image_seq_len: usize,
    pub greedy_tokens: Vec<u32>,
    pub greedy_text: String,
    pub greedy_min_top2_gap: f64,
    pub max_new_tokens: usize,
}

pub fn goldens(name: &str) -> Goldens {
    let text = std::fs::read_to_string(fixture(name).join("goldens.json")).expect("goldens.json");
    serde_json::from_str(&text).expect("goldens.json parses")
}

/// A golden tensor: shape and values widened to f32.
pub struct GoldenTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

pub fn golden_tensor(name: &str, tensor: &str) -> GoldenTensor {
    let bytes = std::fs::read(fixture(name).join("goldens.safetensors")).expect("goldens.safetensors");
    let st = SafeTensors::deserialize(&bytes).expect("goldens parse");
    let view = st.tensor(tensor).unwrap_or_else(|_| panic!("golden `{tensor}` missing"));
    let values = match view.dtype() {
        Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::U8 => view.data().iter().map(|&b| b as f32).collect(),
        other => panic!("unexpected golden dtype {other:?}"),
    };
    GoldenTensor { shape: view.shape().to_vec(), values }
}

/// The devices every stage is checked on: burn's ndarray (CPU reference) and wgpu (lavapipe in
/// CI). A machine without a Vulkan driver fails the wgpu tests rather than skipping them.
pub fn device(backend: Backend) -> Device {
    create_device(backend).unwrap_or_else(|e| panic!("cannot create {backend:?} device: {e}"))
}

/// Elementwise `|a - b| <= atol + rtol·|b|`; returns the largest absolute difference and panics
/// with the worst index when the tolerance is broken.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) -> f32 {
    assert_eq!(got.len(), want.len(), "{what}: {} values, expected {}", got.len(), want.len());
    let mut worst = (0usize, 0f32);
    let mut max_diff = 0f32;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g - w).abs();
        assert!(g.is_finite(), "{what}[{i}] is {g}");
        max_diff = max_diff.max(d);
        let excess = d - (atol + rtol * w.abs());
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    assert!(
        worst.1 <= 0.0,
        "{what}: index {} got {} want {} (max |diff| {max_diff:e}, atol {atol:e}, rtol {rtol:e})",
        worst.0,
        got[worst.0],
        want[worst.0]
    );
    max_diff
}
