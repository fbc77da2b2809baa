//! The `webvlm` binary on the committed fixtures: it must print transformers' greedy text.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn goldens(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("goldens.json")).unwrap()).unwrap()
}

fn webvlm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_webvlm")).args(args).output().expect("webvlm runs")
}

fn run_fixture(name: &str, device: &str, extra: &[&str]) -> Output {
    let g = goldens(name);
    let model = fixture(name).join("model");
    let image = fixture(name).join("image.png");
    let mut args = vec![
        "run",
        "--model",
        model.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--prompt",
        g["prompt"].as_str().unwrap(),
        "--max-new-tokens",
        "10",
        "--ignore-eos",
        "--device",
        device,
    ];
    args.extend_from_slice(extra);
    webvlm(&args)
}

#[test]
fn run_streams_the_golden_greedy_text_on_wgpu() {
    let name = "smolvlm-tiny-split";
    let out = run_fixture(name, "wgpu", &[]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let want = format!("{}\n", goldens(name)["greedy_text"].as_str().unwrap());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

#[test]
fn run_json_reports_the_golden_token_ids_on_cpu() {
    let name = "smolvlm-tiny-single";
    let out = run_fixture(name, "cpu", &["--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let g = goldens(name);
    assert_eq!(report["token_ids"], g["greedy_tokens"]);
    assert_eq!(report["text"], g["greedy_text"]);
    assert_eq!(report["finish_reason"], "length");
    assert_eq!(report["prompt_tokens"].as_u64().unwrap() as usize, g["input_ids"].as_array().unwrap().len());
    for key in ["load_ms", "prefill_ms", "decode_ms", "decode_tokens_per_s"] {
        assert!(report["timings"][key].as_f64().unwrap() > 0.0, "timings.{key}");
    }
}

#[test]
fn info_names_the_architecture_and_counts_parameters() {
    let out = webvlm(&["info", "--model", fixture("smolvlm-tiny-single").join("model").to_str().unwrap()]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Idefics3ForConditionalGeneration"), "{text}");
    assert!(text.contains("BF16"), "{text}");
    assert!(text.contains("tied embeddings: true"), "{text}");
    assert!(text.contains("parameters:"), "{text}");
}

#[test]
fn unreadable_image_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("webvlm-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("not-an-image.png");
    std::fs::write(&bad, b"this is text, not a PNG").unwrap();
    let model = fixture("smolvlm-tiny-single").join("model");
    let out = webvlm(&[
        "run", "--model", model.to_str().unwrap(), "--image", bad.to_str().unwrap(), "--prompt", "hi",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read image") && err.contains("not-an-image.png"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn missing_model_directory_is_a_clear_error() {
    let out = webvlm(&["run", "--model", "/nonexistent/model", "--prompt", "hi", "--device", "cpu"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/model") && err.contains("not a directory"), "{err}");
}
