//! `webvlm convert`: files and a progress bar around `webvlm_model::weights::convert`.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use webvlm_model::weights::convert::convert as convert_model;
use webvlm_model::weights::{inspect, packed};
use webvlm_model::vlm::QuantScheme;
use webvlm_model::{DirSource, ModelError};

type AnyError = Box<dyn std::error::Error>;

/// Parse `64MiB`, `500KB`, `1GiB` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{text}` is not a size such as 64MiB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" | "k" => 1024,
        "mb" => 1000 * 1000,
        "mib" | "m" => 1024 * 1024,
        "gb" => 1000 * 1000 * 1000,
        "gib" | "g" => 1024 * 1024 * 1024,
        other => return Err(format!("unknown size unit `{other}` (B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    let size = n.checked_mul(mult).ok_or_else(|| format!("`{text}` is too large"))?;
    if size < packed::ALIGN {
        return Err(format!("shard size must be at least {} bytes", packed::ALIGN));
    }
    Ok(size)
}

pub fn parse_scheme(text: &str) -> Result<QuantScheme, String> {
    packed::scheme_from_name(text).ok_or_else(|| format!("unknown quantisation `{text}` (q4, q8, f16)"))
}

pub fn convert(model: &Path, scheme: Option<QuantScheme>, out: &Path, shard_size: u64, quiet: bool) -> Result<(), AnyError> {
    let source = DirSource::new(model)?;
    // GGUF inputs are not listed by `inspect`; their bar just counts.
    let count = inspect(&source).map(|t| t.len() as u64).unwrap_or(0);
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(count) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bar:40} {pos}/{len} tensors {elapsed} {wide_msg}")
            .map_err(|e| e.to_string())?,
    );
    let mut sink = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes).map_err(|e| ModelError::Io {
            file: out.join(name).display().to_string(),
            message: e.to_string(),
        })
    };
    let mut progress = |tensor: &str| {
        bar.set_message(tensor.to_string());
        bar.inc(1);
    };
    let summary = convert_model(&source, scheme, shard_size, &mut sink, &mut progress)?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "wrote {} tensors in {} shard(s), {:.1} MiB of weights, to {}",
            summary.tensors,
            summary.shards,
            summary.shard_bytes as f64 / (1024.0 * 1024.0),
            out.display()
        );
    }
    Ok(())
}
