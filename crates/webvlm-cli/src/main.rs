//! `webvlm`: run a vision-language model natively on wgpu (Vulkan/Metal/DX12) or the CPU.
//!
//! ```text
//! webvlm run --model DIR --image photo.jpg --prompt "What is in this image?"
//! webvlm info --model DIR
//! webvlm bench --model DIR --runs 5 --json report.json
//! ```

mod bench;
mod convert;
mod image_file;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use webvlm_model::device::{Backend, create_device};
use webvlm_model::weights::inspect;
use webvlm_model::{DirSource, Family, ModelConfig, ModelSource, Vlm};
use webvlm_runtime::{FinishReason, GenerationOptions, Generator};

#[derive(Parser)]
#[command(name = "webvlm", version, about = "Vision-language models on wgpu, natively and in the browser")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer a question about an image (or a text-only prompt), streaming tokens to stdout.
    Run(RunArgs),
    /// Convert a Hugging Face checkpoint or a GGUF model to webvlm's packed, quantised format.
    Convert {
        /// Model directory: Hugging Face layout, or GGUF file(s) (a text GGUF, plus an mmproj).
        #[arg(long)]
        model: PathBuf,
        /// Scheme for linear weights of a Hugging Face checkpoint: q4, q8 or f16 (a GGUF model
        /// keeps its own block formats).
        #[arg(long, value_parser = convert::parse_scheme)]
        quant: Option<webvlm_model::vlm::QuantScheme>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Largest shard, e.g. 64MiB.
        #[arg(long, default_value = "64MiB", value_parser = convert::parse_size)]
        shard_size: u64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Benchmarks (programs, not tests): `webvlm bench --model DIR` measures load, image
    /// encode, prefill, first token, decode (sustained runs: median, min, max, CV, drift), peak
    /// GPU memory and the decode roofline, in the browser page's JSON schema;
    /// `webvlm bench kernels` compares every kernel variant with a copy kernel.
    #[command(args_conflicts_with_subcommands = true)]
    Bench {
        #[command(subcommand)]
        what: Option<BenchCommand>,
        #[command(flatten)]
        model: bench::ModelBenchArgs,
    },
    /// Print the architecture, parameter count and dtypes of a model.
    Info {
        /// Model directory: Hugging Face, packed, or GGUF (a text GGUF, plus an mmproj).
        #[arg(long)]
        model: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Quantised matvec/matmul kernels vs a plain copy kernel, same device, same run: time per
    /// call (median), effective GB/s, copy GB/s and the ratio, for every kernel variant
    /// (`*` marks the one the model uses).
    Kernels {
        /// Timed samples per shape (the median is reported).
        #[arg(long, default_value_t = 7)]
        repeats: usize,
        /// Only shapes whose name contains this text (e.g. `smolvlm`).
        #[arg(long)]
        filter: Option<String>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Model directory: Hugging Face (config.json, *.safetensors, tokenizer.json, ...), packed (manifest.json), or GGUF (a text GGUF, plus an mmproj).
    #[arg(long)]
    model: PathBuf,
    /// Image file (PNG or JPEG). Without it the prompt is text-only.
    #[arg(long)]
    image: Option<PathBuf>,
    /// The question.
    #[arg(long)]
    prompt: String,
    /// Maximum number of generated tokens.
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling mass (1 = off).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Repetition penalty (1 = off).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// RNG seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Do not stop at end-of-utterance / EOS.
    #[arg(long)]
    ignore_eos: bool,
    /// Print one JSON object at the end (token_ids, text, timings) instead of streaming.
    #[arg(long)]
    json: bool,
    /// Compute device: wgpu or cpu.
    #[arg(long, default_value = "wgpu")]
    device: Backend,
    /// Quantise a Hugging Face checkpoint's linear weights at load time: q4, q8 or f16.
    #[arg(long, value_parser = convert::parse_scheme)]
    quant: Option<webvlm_model::vlm::QuantScheme>,
}

#[derive(Serialize)]
struct RunReport {
    token_ids: Vec<u32>,
    text: String,
    finish_reason: Option<FinishReason>,
    prompt_tokens: usize,
    timings: Timings,
}

#[derive(Serialize)]
struct Timings {
    load_ms: f64,
    /// Image preprocessing, tokenisation.
    prepare_ms: f64,
    /// Vision encoder + decoder over the prompt, to the first token's logits.
    prefill_ms: f64,
    decode_ms: f64,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(args),
        Command::Info { model } => info(model),
        Command::Bench { what: Some(BenchCommand::Kernels { repeats, filter }), .. } => bench_kernels(repeats, filter),
        Command::Bench { what: None, model } => bench::bench_model(model),
        Command::Convert { model, quant, out, shard_size, quiet } => convert::convert(&model, quant, &out, shard_size, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn run(args: RunArgs) -> Result<(), AnyError> {
    // Decode the image first: a bad file should fail before a long model load.
    let image = args.image.as_deref().map(image_file::load).transpose()?;
    let t0 = Instant::now();
    let device = create_device(args.device)?;
    let source = DirSource::new(&args.model)?;
    let vlm = Vlm::load_with(&source, &device, args.quant)?;
    let load_ms = ms(t0);

    let t1 = Instant::now();
    let prompt = vlm.prepare(&args.prompt, image.as_ref())?;
    let prepare_ms = ms(t1);
    let prompt_tokens = prompt.input_ids.len();
    let opts = GenerationOptions {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        repetition_penalty: args.repetition_penalty,
        seed: args.seed,
        ignore_eos: args.ignore_eos,
    };
    let mut generator = Generator::new(&vlm, prompt, opts)?;
    let t2 = Instant::now();
    pollster::block_on(generator.prefill())?;
    let prefill_ms = ms(t2);

    let t3 = Instant::now();
    let mut stdout = std::io::stdout().lock();
    while let Some(step) = pollster::block_on(generator.step())? {
        if !args.json && !step.text.is_empty() {
            stdout.write_all(step.text.as_bytes())?;
            stdout.flush()?;
        }
    }
    let decode_ms = ms(t3);
    let generated = generator.generated().len();
    if args.json {
        let report = RunReport {
            token_ids: generator.generated().to_vec(),
            text: generator.text().to_string(),
            finish_reason: generator.finish_reason(),
            prompt_tokens,
            timings: Timings {
                load_ms,
                prepare_ms,
                prefill_ms,
                decode_ms,
                prefill_tokens_per_s: prompt_tokens as f64 / (prefill_ms / 1000.0),
                // The first token comes from the prefill logits; the rest each cost a step.
                decode_tokens_per_s: generated.saturating_sub(1) as f64 / (decode_ms / 1000.0).max(1e-9),
            },
        };
        writeln!(stdout, "{}", serde_json::to_string(&report)?)?;
    } else {
        writeln!(stdout)?;
    }
    Ok(())
}

fn bench_kernels(repeats: usize, filter: Option<String>) -> Result<(), AnyError> {
    use webvlm_kernels::bench::{bench_kernels, default_shapes, format_table};
    let device = create_device(Backend::Wgpu)?;
    let shapes: Vec<_> = default_shapes()
        .into_iter()
        .filter(|s| filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    eprintln!("device: {:?}", device.as_dispatch().identity());
    let rows = bench_kernels(&device, &shapes, repeats.max(1))?;
    print!("{}", format_table(&rows));
    Ok(())
}

fn info(model: PathBuf) -> Result<(), AnyError> {
    let dir = DirSource::new(&model)?;
    // A GGUF directory's config.json is made from the GGUF metadata.
    let source = webvlm_model::source::GgufMetadataSource::new(&dir)?;
    let text = source
        .read_string("config.json")?
        .ok_or_else(|| format!("{} has no config.json (nor GGUF files)", model.display()))?;
    let config = ModelConfig::from_json(&text)?;
    let tensors = inspect(&source)?;
    let params: usize = tensors.iter().map(|t| t.shape.iter().product::<usize>()).sum();
    let mut dtypes = std::collections::BTreeMap::<String, (usize, usize)>::new();
    for t in &tensors {
        let e = dtypes.entry(t.dtype.clone()).or_default();
        e.0 += 1;
        e.1 += t.shape.iter().product::<usize>();
    }
    let (v, t) = (&config.vision_config, &config.text_config);
    println!("family: {}", config.family.name());
    println!("architecture: {} (model_type {})", config.architectures.join(", "), config.model_type);
    match config.family {
        Family::Idefics3 => println!(
            "vision: SigLIP, {} layers, hidden {}, {} heads, image {} px, patch {} px, {} image tokens per tile (scale_factor {})",
            v.num_hidden_layers, v.hidden_size, v.num_attention_heads, v.image_size, v.patch_size, config.image_seq_len(), config.scale_factor
        ),
        Family::Llava => println!(
            "vision: CLIP, {} layers, hidden {}, {} heads, image {} px, patch {} px, {} image tokens (feature layer {}, strategy {}), projector {}",
            v.num_hidden_layers,
            v.hidden_size,
            v.num_attention_heads,
            v.image_size,
            v.patch_size,
            config.image_seq_len(),
            config.vision_feature_layer,
            config.vision_feature_select_strategy,
            config.projector_hidden_act
        ),
        Family::Qwen2Vl | Family::Qwen25Vl => println!(
            "vision: {} ViT, {} layers, hidden {}, {} heads, patch {} px, {}×{} merge into {} (dynamic resolution){}; M-RoPE sections {:?}",
            config.family.name(),
            v.num_hidden_layers,
            v.hidden_size,
            v.num_attention_heads,
            v.patch_size,
            v.spatial_merge_size,
            v.spatial_merge_size,
            v.out_hidden_size,
            if v.window_size > 0 { format!(", {} px windows, full attention in blocks {:?}", v.window_size, v.fullatt_block_indexes) } else { String::new() },
            t.mrope_section().unwrap_or_default()
        ),
        _ => println!("vision: none (text-only)"),
    }
    println!(
        "text: {} ({:?} layout), {} layers, hidden {}, {} heads / {} kv heads, head_dim {} (rotary {}), ffn {}, vocab {}, context {}, rope_theta {}, tied embeddings: {}",
        t.model_type,
        t.decoder,
        t.num_hidden_layers,
        t.hidden_size,
        t.num_attention_heads,
        t.num_key_value_heads(),
        t.head_dim(),
        t.rotary_dim(),
        t.intermediate_size,
        t.vocab_size,
        t.max_position_embeddings,
        t.rope_theta()?,
        config.tied_embeddings()
    );
    println!("parameters: {params} ({:.1} M) in {} tensors", params as f64 / 1e6, tensors.len());
    for (dtype, (count, n)) in dtypes {
        println!("  {dtype}: {count} tensors, {n} parameters");
    }
    Ok(())
}
