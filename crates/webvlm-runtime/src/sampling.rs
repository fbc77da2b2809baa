//! Choosing the next token from logits, in the order transformers applies its processors:
//! repetition penalty, temperature, top-k, top-p, then a draw from a seeded RNG (greedy when the
//! temperature is 0).

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::error::GenerateError;
use crate::generate::GenerationOptions;

/// Stateful sampler (it owns the RNG so a seed reproduces a whole generation).
#[derive(Debug, Clone)]
pub struct Sampler {
    temperature: f32,
    top_k: usize,
    top_p: f32,
    repetition_penalty: f32,
    rng: StdRng,
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
        Ok(Self {
            temperature: opts.temperature,
            top_k: opts.top_k,
            top_p: opts.top_p,
            repetition_penalty: opts.repetition_penalty,
            rng: StdRng::seed_from_u64(opts.seed),
        })
    }

    /// Whether every pick is the plain argmax of the logits (temperature 0, no repetition
    /// penalty): then the device can pick and the host needs only the id.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 && self.repetition_penalty == 1.0
    }

    /// Pick a token from `logits` given the ids seen so far (prompt and generated).
    pub fn sample(&mut self, logits: &mut [f32], seen: &[u32]) -> u32 {
        if self.repetition_penalty != 1.0 {
            let mut seen: Vec<u32> = seen.to_vec();
            seen.sort_unstable();
            seen.dedup();
            for id in seen {
                if let Some(l) = logits.get_mut(id as usize) {
                    *l = if *l < 0.0 { *l * self.repetition_penalty } else { *l / self.repetition_penalty };
                }
            }
        }
        if self.temperature == 0.0 {
            return argmax(logits);
        }
        let mut order: Vec<usize> = (0..logits.len()).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        if self.top_k > 0 && self.top_k < order.len() {
            order.truncate(self.top_k);
        }
        let max = logits[order[0]] / self.temperature;
        let mut probs: Vec<f64> = order.iter().map(|&i| ((logits[i] / self.temperature - max) as f64).exp()).collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);
        if self.top_p < 1.0 {
            // Keep the smallest prefix whose mass reaches top_p (at least one token).
            let mut cum = 0.0;
            let mut keep = probs.len();
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= self.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            probs.truncate(keep);
            order.truncate(keep);
            let total: f64 = probs.iter().sum();
            probs.iter_mut().for_each(|p| *p /= total);
        }
        let mut r: f64 = self.rng.random::<f64>();
        for (i, p) in probs.iter().enumerate() {
            if r < *p {
                return order[i] as u32;
            }
            r -= p;
        }
        order[probs.len() - 1] as u32
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
        assert_eq!(s.sample(&mut [0.1, 3.0, 3.0, -1.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_follows_transformers_sign_rule() {
        let mut s = Sampler::new(&GenerationOptions { repetition_penalty: 2.0, ..opts() }).unwrap();
        let mut logits = [4.0, 3.0, -1.0];
        // 4.0 → 2.0 (seen, positive), so 3.0 wins; -1.0 → -2.0.
        assert_eq!(s.sample(&mut logits, &[0, 2, 0]), 1);
        assert_eq!(logits, [2.0, 3.0, -2.0]);
    }

    #[test]
    fn top_k_one_and_tiny_top_p_are_greedy() {
        let mut a = Sampler::new(&GenerationOptions { temperature: 1.0, top_k: 1, seed: 7, ..opts() }).unwrap();
        let mut b = Sampler::new(&GenerationOptions { temperature: 1.0, top_p: 1e-6, seed: 7, ..opts() }).unwrap();
        for _ in 0..20 {
            assert_eq!(a.sample(&mut [0.0, 1.0, 0.5], &[]), 1);
            assert_eq!(b.sample(&mut [0.0, 1.0, 0.5], &[]), 1);
        }
    }

    #[test]
    fn seeded_sampling_is_reproducible_and_follows_probabilities() {
        let o = GenerationOptions { temperature: 1.0, seed: 42, ..opts() };
        let draw = |o: &GenerationOptions| {
            let mut s = Sampler::new(o).unwrap();
            (0..4000).map(|_| s.sample(&mut [0.0, (3.0f32).ln(), f32::NEG_INFINITY], &[])).collect::<Vec<_>>()
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
