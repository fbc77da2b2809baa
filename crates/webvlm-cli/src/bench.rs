//! `webvlm bench --model DIR`: the browser benchmark page's measurements, natively, in the same
//! JSON schema (`webvlm_runtime::bench`), plus the roofline: weight bytes per decoded token and
//! the bandwidth they imply, against a copy kernel's on the same device.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use webvlm_model::device::{Backend, adapter_summary, create_device};
use webvlm_model::prompt::Message;
use webvlm_model::{DirSource, RgbImage, Vlm};
use webvlm_runtime::GenerationOptions;
use webvlm_runtime::bench::{
    BENCH_SCHEMA, BenchDevice, BenchLoad, BenchModel, BenchReport, BenchRun, BenchSettings, KernelBenchRow, measure_run, roofline,
    summarize,
};

use crate::{AnyError, convert, image_file};

#[derive(Args)]
pub struct ModelBenchArgs {
    /// Model directory (packed, Hugging Face or GGUF).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Image file; default: a synthetic test image of --image-size pixels.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Side of the synthetic test image.
    #[arg(long, default_value_t = 512)]
    image_size: u32,
    /// Text-only prompt (no image).
    #[arg(long)]
    no_image: bool,
    /// Override the model's image tiling (`false`: one tile).
    #[arg(long)]
    image_splitting: Option<bool>,
    #[arg(long, default_value = "Describe this image in detail.")]
    prompt: String,
    /// Tokens generated per run (end-of-sequence is ignored so every run decodes as many).
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// Measured runs (sustained mode: back to back).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Unreported runs first (pipeline compilation, allocator warm-up).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Skip the q4 matvec vs copy kernel micro-benchmark (the roofline then has no copy figure).
    #[arg(long)]
    no_kernels: bool,
    /// Quantise a Hugging Face checkpoint at load time: q4, q8 or f16.
    #[arg(long, value_parser = convert::parse_scheme)]
    quant: Option<webvlm_model::vlm::QuantScheme>,
    /// Write the JSON report here (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// A deterministic test picture: colour gradients with a grid, so resizing has edges to work on.
pub fn synthetic_image(side: u32) -> Result<RgbImage, AnyError> {
    let mut rgba = Vec::with_capacity((side * side * 4) as usize);
    for y in 0..side {
        for x in 0..side {
            let grid = if (x / 32 + y / 32) % 2 == 0 { 40 } else { 0 };
            rgba.extend_from_slice(&[(x * 255 / side.max(1)) as u8, (y * 255 / side.max(1)) as u8, (128 + grid) as u8, 255]);
        }
    }
    Ok(RgbImage::from_rgba(side, side, &rgba)?)
}

pub fn bench_model(args: ModelBenchArgs) -> Result<(), AnyError> {
    let model_dir = args.model.clone().ok_or("bench needs --model DIR (or a subcommand: `webvlm bench kernels`)")?;
    if args.runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let image = match (&args.image, args.no_image) {
        (_, true) => None,
        (Some(path), false) => Some(image_file::load(path)?),
        (None, false) => Some(synthetic_image(args.image_size)?),
    };
    let device = create_device(Backend::Wgpu)?;
    let adapter = adapter_summary().unwrap_or_default();
    eprintln!("device: {} ({}, {})", adapter.description, adapter.backend, adapter.architecture);

    let source = DirSource::new(&model_dir)?;
    let t = Instant::now();
    let vlm = Vlm::load_with(&source, &device, args.quant)?;
    let cold_ms = ms(t);
    drop(vlm);
    let t = Instant::now();
    let vlm = Vlm::load_with(&source, &device, args.quant)?;
    let warm_ms = ms(t);
    eprintln!("load: cold {cold_ms:.0} ms, warm {warm_ms:.0} ms");
    let image = image.filter(|_| vlm.model.has_vision());
    let splitting = args.image_splitting.or(vlm.image_processor.as_ref().map(|p| p.splits_images())).unwrap_or(false);

    let opts = GenerationOptions { max_new_tokens: args.max_new_tokens, ignore_eos: true, ..Default::default() };
    let origin = Instant::now();
    let now = move || origin.elapsed().as_secs_f64() * 1000.0;
    let mut runs: Vec<BenchRun> = Vec::new();
    for i in 0..args.warmup + args.runs {
        let t = Instant::now();
        let messages = [Message::user(&args.prompt, image.is_some())];
        let prompt = vlm.prepare_chat_with(&messages, image.as_ref(), Some(splitting))?;
        let prepare_ms = ms(t);
        let run = pollster::block_on(measure_run(&vlm, prompt, opts.clone(), prepare_ms, &now))?;
        let label = if i < args.warmup { "warm-up".to_string() } else { format!("run {}/{}", i - args.warmup + 1, args.runs) };
        eprintln!(
            "{label}: {} prompt tokens ({} image), encode {:.0} ms, prefill {:.1} tok/s, first token {:.0} ms, decode {:.2} tok/s ({} tokens)",
            run.prompt_tokens, run.image_tokens, run.encode_ms, run.prefill_tokens_per_s, run.ttft_ms, run.decode_tokens_per_s, run.generated_tokens
        );
        if i >= args.warmup {
            runs.push(run);
        }
    }

    let kernels: Vec<KernelBenchRow> = if args.no_kernels {
        Vec::new()
    } else {
        use webvlm_kernels::bench::{bench_kernels_with, browser_shapes};
        let clock = move || origin.elapsed().as_secs_f64();
        let rows = pollster::block_on(bench_kernels_with(&device, &browser_shapes(), 5, false, &clock))?;
        rows.iter().map(KernelBenchRow::from).collect()
    };
    let summary = summarize(&runs);
    let copy_gbps = kernels.iter().map(|k| k.copy_gbps).fold(0.0, f64::max);
    let decode_weight_bytes = vlm.model.decoder().decode_weight_bytes();
    let report = BenchReport {
        schema: BENCH_SCHEMA.into(),
        runtime: "native".into(),
        created: iso8601_now(),
        webvlm_version: env!("CARGO_PKG_VERSION").into(),
        user_agent: None,
        device: BenchDevice {
            backend: adapter.backend,
            vendor: adapter.vendor,
            architecture: adapter.architecture,
            description: adapter.description,
            features: adapter.features,
            limits: adapter.limits,
        },
        model: BenchModel {
            source: model_dir.display().to_string(),
            model_type: vlm.config().model_type.clone(),
            quant: model_quant(&model_dir, args.quant),
            file_bytes: dir_bytes(&model_dir),
            decode_weight_bytes,
            context_length: vlm.model.context_length(),
            image_seq_len: vlm.image_seq_len,
        },
        settings: BenchSettings {
            prompt: args.prompt.clone(),
            image_width: image.as_ref().map_or(0, |i| i.width),
            image_height: image.as_ref().map_or(0, |i| i.height),
            image_splitting: splitting,
            max_new_tokens: args.max_new_tokens,
            runs: args.runs,
            warmup_runs: args.warmup,
        },
        load: BenchLoad { cold_ms, warm_ms },
        roofline: roofline(decode_weight_bytes, summary.decode_tokens_per_s.median, copy_gbps),
        summary,
        runs,
        kernels,
    };
    print_summary(&report);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        if path == Path::new("-") {
            println!("{json}");
        } else {
            std::fs::write(path, json + "\n")?;
            eprintln!("report: {}", path.display());
        }
    }
    Ok(())
}

fn print_summary(r: &BenchReport) {
    let s = &r.summary;
    let line = |name: &str, st: &webvlm_runtime::bench::Stat, unit: &str| {
        eprintln!("{name:<14} median {:>9.2} {unit:<6} min {:>9.2}  max {:>9.2}  cv {:>5.1}%", st.median, st.min, st.max, st.cv * 100.0)
    };
    eprintln!("-- {} ({}), {} runs of {} tokens", r.model.source, r.model.quant, r.runs.len(), r.settings.max_new_tokens);
    line("decode", &s.decode_tokens_per_s, "tok/s");
    line("prefill", &s.prefill_tokens_per_s, "tok/s");
    line("first token", &s.ttft_ms, "ms");
    line("image encode", &s.encode_ms, "ms");
    eprintln!("decode drift   {:+.1}% (second half vs first half)", s.decode_drift * 100.0);
    eprintln!("peak GPU       {:.1} MiB reserved", s.peak_gpu_bytes as f64 / (1 << 20) as f64);
    let c = &s.gpu_counts_per_token;
    eprintln!(
        "per token      {} dispatches, {} submissions, {} bytes read back, {} syncs",
        c.dispatches, c.submissions, c.readback_bytes, c.syncs
    );
    if let Some(run) = r.runs.first() {
        let e = &run.gpu_counts.encode;
        if run.image_tokens > 0 {
            eprintln!(
                "encode         {} dispatches, {} submissions, {} bytes read back, {} syncs",
                e.dispatches, e.submissions, e.readback_bytes, e.syncs
            );
        }
        let p = &run.gpu_counts.prefill;
        eprintln!(
            "prefill        {} dispatches, {} submissions, {} bytes read back, {} syncs ({} prompt tokens)",
            p.dispatches, p.submissions, p.readback_bytes, p.syncs, run.prompt_tokens
        );
    }
    let rf = &r.roofline;
    eprintln!(
        "roofline       {:.1} MB of weights per token × {:.2} tok/s = {:.3} GB/s; copy kernel {:.2} GB/s ({:.1}%)",
        rf.weight_bytes_per_token as f64 / 1e6,
        s.decode_tokens_per_s.median,
        rf.implied_gbps,
        rf.copy_gbps,
        rf.fraction_of_copy * 100.0
    );
}

/// The packed manifest's scheme, else what the load did to the checkpoint.
fn model_quant(dir: &Path, quant: Option<webvlm_model::vlm::QuantScheme>) -> String {
    let from_manifest = std::fs::read_to_string(dir.join("manifest.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("quant")?.as_str().map(str::to_string));
    let gguf = || {
        std::fs::read_dir(dir).ok()?.flatten().any(|e| e.path().extension().is_some_and(|x| x == "gguf")).then(|| "gguf".to_string())
    };
    from_manifest.or(quant.map(|q| q.name().to_string())).or_else(gguf).unwrap_or_else(|| "as stored".into())
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// UTC now as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601_has_the_right_shape() {
        let s = super::iso8601_now();
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.starts_with("20") && s.ends_with('Z'), "{s}");
    }
}
