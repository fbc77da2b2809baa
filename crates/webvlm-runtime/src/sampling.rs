//! Choosing the next token from logits, in the order transformers applies its processors:
//! repetition penalty, temperature, top-k, top-p, then a seeded draw (greedy when the
//! temperature is 0). The rule and its host implementation are `webvlm_kernels::sample`'s, the
//! reference of the device sampler (`shaders/sample.wgsl`): draw `n` of a generation uses the
//! Philox uniform of (seed, n) wherever it is picked, so a seeded run picks the same tokens on
//! the host and on the GPU.

use webvlm_kernels::sample::{SampleSettings, sample_ref, uniform};

use crate::error::GenerateError;
use crate::generate::GenerationOptions;

/// Stateful sampler: the settings, the seed and how many draws were made.
#[derive(Debug, Clone)]
pub struct Sampler {
    settings: SampleSettings,
    seed: u64,
    draws: u64,
}

impl Sampler {
    pub fn new(opts: &GenerationOptions) -> Result<Self, GenerateError> {
        let bad = |m: String| Err(GenerateError::InvalidOption(m));
        if !(opts.temperature >= 0.0 && opts.temperature.is_finite()) {
            return bad(format!("temperature must be >= 0, got {}", opts.temperature));
        }
        if !(opts.top_p > 0.0 && opts.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], got {}", opts.top_p));
        }
        if !(opts.repetition_penalty > 0.0 && opts.repetition_penalty.is_finite()) {
            return bad(format!("repetition_penalty must be > 0, got {}", opts.repetition_penalty));
        }
        let settings = SampleSettings {
            temperature: opts.temperature,
            top_k: opts.top_k,
            top_p: opts.top_p,
            repetition_penalty: opts.repetition_penalty,
        };
        Ok(Self { settings, seed: opts.seed, draws: 0 })
    }

    /// Whether every pick is the plain argmax of the logits (temperature 0, no repetition
    /// penalty): then the device's argmax kernel picks.
    pub fn is_greedy(&self) -> bool {
        self.settings.temperature == 0.0 && self.settings.repetition_penalty == 1.0
    }

    pub fn settings(&self) -> &SampleSettings {
        &self.settings
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The number of the next draw, counted as taken (for a pick made on the device).
    pub fn take_draw(&mut self) -> u64 {
        self.draws += 1;
        self.draws - 1
    }

    /// Pick a token from `logits` given the ids seen so far (prompt and generated).
    pub fn sample(&mut self, logits: &[f32], seen: &[u32]) -> u32 {
        if self.is_greedy() {
            return argmax(logits);
        }
        let draw = self.take_draw();
        sample_ref(logits, seen, &self.settings, uniform(self.seed, draw)).id
    }
}

/// First index of the maximum, like `torch.argmax`.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> GenerationOptions {
        GenerationOptions::default()
    }

    #[test]
    fn greedy_takes_first_maximum() {
        let mut s = Sampler::new(&opts()).unwrap();
        assert_eq!(s.sample(&[0.1, 3.0, 3.0, -1.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_follows_transformers_sign_rule() {
        let mut s = Sampler::new(&GenerationOptions { repetition_penalty: 2.0, ..opts() }).unwrap();
        // 4.0 → 2.0 (seen, positive), so 3.0 wins; -1.0 → -2.0.
        assert_eq!(s.sample(&[4.0, 3.0, -1.0], &[0, 2, 0]), 1);
        let mut s = Sampler::new(&GenerationOptions { repetition_penalty: 2.0, ..opts() }).unwrap();
        assert_eq!(s.sample(&[-1.0, -1.5], &[0]), 1);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let mut a = Sampler::new(&GenerationOptions { temperature: 1.0, top_k: 1, seed: 7, ..opts() }).unwrap();
        let mut b = Sampler::new(&GenerationOptions { temperature: 1.0, top_p: 1e-6, seed: 7, ..opts() }).unwrap();
        for _ in 0..20 {
            assert_eq!(a.sample(&[0.0, 1.0, 0.5], &[]), 1);
            assert_eq!(b.sample(&[0.0, 1.0, 0.5], &[]), 1);
        }
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_follows_probabilities() {
        let o = GenerationOptions { temperature: 1.0, seed: 42, ..opts() };
        let draw = |o: &GenerationOptions| {
            let mut s = Sampler::new(o).unwrap();
            (0..4000).map(|_| s.sample(&[0.0, (3.0f32).ln(), f32::NEG_INFINITY], &[])).collect::<Vec<_>>()
        };
        let a = draw(&o);
        assert_eq!(a, draw(&o));
        assert_ne!(a, draw(&GenerationOptions { seed: 43, ..o.clone() }));
        let ones = a.iter().filter(|&&t| t == 1).count() as f64 / a.len() as f64;
        assert!((ones - 0.75).abs() < 0.03, "P(token 1) = {ones}, expected 0.75");
        assert!(!a.contains(&2));
    }

    #[test]
    fn invalid_options_are_named() {
        let e = Sampler::new(&GenerationOptions { top_p: 0.0, ..opts() }).unwrap_err();
        assert!(e.to_string().contains("top_p"));
        let e = Sampler::new(&GenerationOptions { temperature: -1.0, ..opts() }).unwrap_err();
        assert!(e.to_string().contains("temperature"));
    }
}
