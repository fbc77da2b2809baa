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
    assert!(text.contains("family: SmolVLM / Idefics3"), "{text}");
}

#[test]
fn info_names_every_family() {
    for (name, family, arch) in [
        ("llava-tiny", "family: LLaVA", "LlavaForConditionalGeneration"),
        ("llava-tiny-legacy", "family: LLaVA", "strategy full"),
        ("llama-tiny", "family: Llama", "LlamaForCausalLM"),
        ("qwen2-tiny", "family: Qwen2", "Qwen2ForCausalLM"),
        ("phi-tiny", "family: Phi", "rotary 8"),
    ] {
        let out = webvlm(&["info", "--model", fixture(name).join("model").to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(family) && text.contains(arch), "{name}: {text}");
    }
}

#[test]
fn text_only_families_run_without_an_image() {
    let out = webvlm(&["run", "--model", fixture("phi-tiny").join("model").to_str().unwrap(), "--prompt", "What is a vision-language model?", "--max-new-tokens", "10", "--ignore-eos", "--json"]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["token_ids"], goldens("phi-tiny")["greedy_tokens"]);
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

/// `webvlm bench --model` on the committed packed fixture: every metric present, positive where
/// it must be, and consistent with the runs it summarises (the browser page's test checks the
/// same schema on the same model).
#[test]
fn bench_model_reports_consistent_metrics_in_the_shared_schema() {
    let dir = std::env::temp_dir().join(format!("webvlm-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let model = fixture("packed/smolvlm-tiny");
    let out = webvlm(&[
        "bench", "--model", model.to_str().unwrap(), "--runs", "3", "--warmup", "1", "--max-new-tokens", "4", "--image-size", "96",
        "--json", json.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {err}");
    assert!(err.contains("roofline") && err.contains("decode"), "{err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::copy(&json, PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-native-fixture.json")).ok();
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!(r["schema"], "webvlm.bench/1");
    assert_eq!(r["runtime"], "native");
    assert_eq!(r["model"]["quant"], "f16");
    assert!(f(&r["load"]["cold_ms"]) > 0.0 && f(&r["load"]["warm_ms"]) > 0.0);
    assert!(f(&r["model"]["decode_weight_bytes"]) > 0.0 && f(&r["model"]["file_bytes"]) > f(&r["model"]["decode_weight_bytes"]) / 2.0);
    assert!(!r["device"]["description"].as_str().unwrap().is_empty());
    let runs = r["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3);
    for run in runs {
        assert_eq!(run["generated_tokens"], 4, "ignore-eos runs decode every requested token");
        assert!(f(&run["prompt_tokens"]) > f(&run["image_tokens"]) && f(&run["image_tokens"]) > 0.0);
        for key in ["image_ms", "encode_ms", "prefill_ms", "prefill_tokens_per_s", "ttft_ms", "decode_ms", "decode_tokens_per_s", "peak_gpu_bytes"] {
            assert!(f(&run[key]) > 0.0, "runs[].{key} = {}", run[key]);
        }
        assert!(f(&run["ttft_ms"]) >= f(&run["encode_ms"]) + f(&run["prefill_ms"]));
        assert!((f(&run["decode_tokens_per_s"]) - 3.0 * 1000.0 / f(&run["decode_ms"])).abs() < 1e-6);
        assert!(run["long_tasks"].is_null(), "no main thread natively");
    }
    let decode: Vec<f64> = runs.iter().map(|x| f(&x["decode_tokens_per_s"])).collect();
    let s = &r["summary"]["decode_tokens_per_s"];
    let (min, max) = decode.iter().fold((f64::MAX, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let mut sorted = decode.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!((f(&s["min"]), f(&s["max"]), f(&s["median"])), (min, max, sorted[1]));
    let kernels = r["kernels"].as_array().unwrap();
    assert!(!kernels.is_empty());
    assert!(kernels.iter().all(|k| f(&k["ratio"]) > 0.0 && f(&k["copy_gbps"]) > 0.0 && k["scheme"] == "q4"));
    let rf = &r["roofline"];
    assert!((f(&rf["implied_gbps"]) - f(&rf["weight_bytes_per_token"]) * f(&s["median"]) / 1e9).abs() < 1e-9);
    assert!(f(&rf["copy_gbps"]) > 0.0 && f(&rf["fraction_of_copy"]) > 0.0);
}

#[test]
fn bench_runs_every_family() {
    for (name, with_image) in [("llava-tiny", true), ("qwen2-vl-tiny", true), ("qwen2_5-vl-tiny", true), ("phi-tiny", false)] {
        let model = fixture(name).join("model");
        let out = webvlm(&["bench", "--model", model.to_str().unwrap(), "--runs", "1", "--warmup", "0", "--max-new-tokens", "2", "--no-kernels", "--json", "-"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let run = &r["runs"][0];
        assert_eq!(run["generated_tokens"], 2, "{name}");
        assert_eq!(run["image_tokens"].as_u64().unwrap() > 0, with_image, "{name}: {run}");
        assert!(run["decode_tokens_per_s"].as_f64().unwrap() > 0.0, "{name}");
    }
}

#[test]
fn bench_without_a_model_or_subcommand_is_a_clear_error() {
    let out = webvlm(&["bench"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--model"), "{err}");
}

/// A llama.cpp-style LLaVA / Qwen-VL directory (text GGUF + mmproj GGUF, nothing else): `info`
/// names the family from the GGUF metadata, `convert` packs it keeping the GGUF's own formats,
/// and `run` on the packed model prints transformers' greedy tokens.
#[test]
fn gguf_vlm_pairs_show_convert_and_run() {
    for (name, family) in [("llava-tiny", "family: LLaVA"), ("qwen2-vl-tiny", "family: Qwen2-VL"), ("qwen2_5-vl-tiny", "family: Qwen2.5-VL")] {
        let dir = std::env::temp_dir().join(format!("webvlm-cli-gguf-{name}-{}", std::process::id()));
        let packed = dir.join("packed");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["text.gguf", "mmproj.gguf"] {
            std::fs::copy(fixture("gguf").join(name).join(file), dir.join(file)).unwrap();
        }
        let out = webvlm(&["info", "--model", dir.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains(family) && (text.contains("F16") || text.contains("F32")), "{name}: {text}");

        let out = webvlm(&["convert", "--model", dir.to_str().unwrap(), "--out", packed.to_str().unwrap(), "--quiet"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let g = goldens(name);
        let image = fixture(name).join("image.png");
        let out = webvlm(&[
            "run", "--model", packed.to_str().unwrap(), "--image", image.to_str().unwrap(), "--prompt",
            g["prompt"].as_str().unwrap(), "--max-new-tokens", "10", "--ignore-eos", "--json", "--device", "cpu",
        ]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["token_ids"], g["greedy_tokens"], "{name}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// What a decoded token costs the host, counted (not estimated) on SmolLM2-135M-Instruct, the
/// real default text model (Q4_1 GGUF, 30 layers; `scripts/fetch-smollm2.sh` caches it): compute
/// dispatches, queue submissions, bytes read back and host waits per token and for the prefill.
/// Counts are deterministic, so they are pinned exactly: a change that adds a dispatch to the
/// token step, a submission or a readback fails here and must update the README's figures.
#[test]
fn bench_pins_the_gpu_commands_of_a_smollm2_token() {
    let cache = std::env::var_os("WEBVLM_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/webvlm"));
    let model = cache.join("smollm2-135m-instruct-gguf");
    assert!(model.is_dir(), "run scripts/fetch-smollm2.sh first ({} missing)", model.display());
    let json = std::env::temp_dir().join(format!("webvlm-counts-{}.json", std::process::id()));
    let out = webvlm(&[
        "bench", "--model", model.to_str().unwrap(), "--no-image", "--prompt", "What is the capital of France?", "--runs", "2",
        "--warmup", "1", "--max-new-tokens", "5", "--no-kernels", "--json", json.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stderr: {err}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let counts = |v: &serde_json::Value| {
        ["dispatches", "submissions", "readback_bytes", "syncs"].map(|k| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")))
    };
    // The token step: 30 layers × 7 (RMSNorm, q/k/v matvec, attention with RoPE and the cache
    // write, o-projection + residual, RMSNorm, gate/up matvec, SwiGLU + down + residual) and the
    // embedding lookup, final norm, lm_head and argmax. Submissions: one for the step, two more
    // inside CubeCL's readback of the 4-byte id.
    let per_token = counts(&r["summary"]["gpu_counts_per_token"]);
    eprintln!("per token: {per_token:?}; prefill: {:?}", counts(&r["runs"][0]["gpu_counts"]["prefill"]));
    assert_eq!(per_token, PER_TOKEN, "dispatches, submissions, bytes read back, syncs per decoded token");
    for run in r["runs"].as_array().unwrap() {
        assert_eq!(counts(&run["gpu_counts"]["per_token"]), PER_TOKEN);
        assert_eq!(counts(&run["gpu_counts"]["prefill"]), PREFILL, "prefill of {} tokens", run["prompt_tokens"]);
    }
}

/// The image encode of the packed SmolVLM fixture (3 SigLIP layers), counted like the token
/// step. A block is LayerNorm, the joined q/k/v matmul (bias in its epilogue), flash attention
/// reading q/k/v in place, the output projection (bias + residual), LayerNorm, fc1 (bias + GELU),
/// fc2 (bias + residual): 7 dispatches where the widths are whole blocks of 32, plus a zero
/// padding of the activations for each of the fixture's 48- and 80-wide inputs. Nothing is
/// read back: the features stay on the GPU for the prefill.
#[test]
fn bench_pins_the_gpu_commands_of_a_vision_encode() {
    let json = std::env::temp_dir().join(format!("webvlm-encode-counts-{}.json", std::process::id()));
    let model = fixture("packed/smolvlm-tiny");
    let out = webvlm(&[
        "bench", "--model", model.to_str().unwrap(), "--image-size", "64", "--runs", "1", "--warmup", "0", "--max-new-tokens", "2",
        "--no-kernels", "--json", json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let e = &r["runs"][0]["gpu_counts"]["encode"];
    let got = ["dispatches", "submissions", "readback_bytes", "syncs"].map(|k| e[k].as_u64().unwrap_or_else(|| panic!("{k} in {e}")));
    assert_eq!(got, ENCODE, "dispatches, submissions, bytes read back, syncs of the image encode");
}

const ENCODE: [u64; 4] = [68, 3, 0, 1];

/// SmolLM2-135M, greedy, one decoded token: dispatches, submissions, bytes read back, syncs.
const PER_TOKEN: [u64; 4] = [214, 3, 4, 1];
/// The same for the prefill of the chat-templated prompt (37 tokens): 30 layers × 16 + 4, the
/// residual adds inside the o- and down-projections' matmul epilogues (544 with them apart).
const PREFILL: [u64; 4] = [484, 5, 4, 1];
