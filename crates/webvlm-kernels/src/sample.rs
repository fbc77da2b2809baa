//! Choosing a token from a logits row: the rule `shaders/sample.wgsl` follows on the device and
//! [`sample_ref`] on the host (the reference the kernel is tested against, and what the runtime
//! runs where there is no wgpu device).
//!
//! transformers' processors in its order: repetition penalty, temperature, top-k, top-p. The set
//! they keep is defined on the tokens ordered by logit, largest first, ties by lower index (the
//! order is total: `f32::total_cmp` after a NaN logit became −∞, so a NaN is never picked). The
//! draw then walks the kept tokens *in index order*: `u · mass` against the running sum of their
//! weights `exp(l/T − max/T)`. Any order draws from the same distribution; index order is what a
//! GPU can walk without sorting the vocabulary.
//!
//! The uniform `u` comes from a counter-based generator, Philox4x32-10 (Salmon et al., SC'11),
//! keyed by the seed and counted by the draw: draw `n` of a seeded generation is the same number
//! on the host and on any GPU, with no state to carry between tokens.

/// What the sampling processors do (the generation options that matter here).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleSettings {
    /// 0 = the first most likely token (after the penalty); else logits are divided by it.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest most-likely-first prefix whose probability reaches `top_p` (1 = off).
    pub top_p: f32,
    /// transformers' sign rule on seen ids: `l < 0 ? l·p : l/p` (1 = off).
    pub repetition_penalty: f32,
}

const PHILOX_M: [u32; 2] = [0xD251_1F53, 0xCD9E_8D57];
const PHILOX_W: [u32; 2] = [0x9E37_79B9, 0xBB67_AE85];

/// Philox4x32 with 10 rounds: four 32-bit outputs of a 128-bit counter under a 64-bit key.
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let (mut c, mut k) = (ctr, key);
    for round in 0..10 {
        if round > 0 {
            k = [k[0].wrapping_add(PHILOX_W[0]), k[1].wrapping_add(PHILOX_W[1])];
        }
        let p0 = u64::from(PHILOX_M[0]) * u64::from(c[0]);
        let p1 = u64::from(PHILOX_M[1]) * u64::from(c[2]);
        c = [(p1 >> 32) as u32 ^ c[1] ^ k[0], p1 as u32, (p0 >> 32) as u32 ^ c[3] ^ k[1], p0 as u32];
    }
    c
}

/// The uniform of draw `draw` under `seed`: a multiple of 2⁻²⁴ in [0, 1), exact in f32.
pub fn uniform(seed: u64, draw: u64) -> f32 {
    let out = philox4x32_10([draw as u32, (draw >> 32) as u32, 0, 0], [seed as u32, (seed >> 32) as u32]);
    (out[0] >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// The rank of a (non-NaN) float as an unsigned integer: `a.total_cmp(b)` is `key(a).cmp(key(b))`.
pub fn order_key(v: f32) -> u32 {
    let b = v.to_bits();
    if b >> 31 == 1 { !b } else { b ^ 0x8000_0000 }
}

/// A token pick and how close it came to going another way: the smallest distance, relative to
/// the mass drawn from, between the draw (or the top-p target) and a boundary it was compared
/// with. f32 arithmetic on the device may decide differently only inside that distance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub id: u32,
    pub margin: f64,
}

/// What the device's pickers (argmax and `sample.wgsl`) answer for a row that is not
/// [`finite_row`]: no token, a numerical fault for the caller to report. `i32::MAX`, so that it
/// survives burn's i32 index tensors and is past any vocabulary.
pub const NON_FINITE: u32 = i32::MAX as u32;

/// Whether a logits row can be sampled at all: no NaN, no +∞, and some value above −∞ (−∞
/// entries are masked tokens). A model that produces anything else has a numerical fault (an
/// f16 overflow, a corrupt weight), and any token picked from it would be noise.
pub fn finite_row(logits: &[f32]) -> bool {
    !logits.iter().any(|v| v.is_nan() || *v == f32::INFINITY) && logits.iter().any(|v| *v > f32::NEG_INFINITY)
}

/// The host reference: the token `settings` pick from `logits` for the uniform `u`, with the
/// ids in `seen` penalised.
pub fn sample_ref(logits: &[f32], seen: &[u32], s: &SampleSettings, u: f32) -> Pick {
    let mut v: Vec<f32> = logits.iter().map(|&l| if l.is_nan() { f32::NEG_INFINITY } else { l }).collect();
    if s.repetition_penalty != 1.0 {
        let mut seen = seen.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            if let Some(l) = v.get_mut(id as usize) {
                *l = if *l < 0.0 { *l * s.repetition_penalty } else { *l / s.repetition_penalty };
            }
        }
    }
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| order_key(v[b]).cmp(&order_key(v[a])).then(a.cmp(&b)));
    let first = Pick { id: order[0] as u32, margin: f64::INFINITY };
    if s.temperature == 0.0 {
        return first;
    }
    if s.top_k > 0 && s.top_k < order.len() {
        order.truncate(s.top_k);
    }
    let t = s.temperature;
    let max = v[order[0]] / t;
    let weight = |i: usize| f64::from(v[i] / t - max).exp();
    let mass: f64 = order.iter().map(|&i| weight(i)).sum();
    if !(mass > 0.0 && mass.is_finite()) {
        return first;
    }
    let mut margin = f64::INFINITY;
    if s.top_p < 1.0 {
        let target = f64::from(s.top_p) * mass;
        let mut cum = 0.0;
        let mut keep = order.len();
        for (n, &i) in order.iter().enumerate() {
            let before = cum;
            cum += weight(i);
            if cum >= target {
                margin = margin.min((cum - target) / mass).min((target - before) / mass);
                keep = n + 1;
                break;
            }
        }
        order.truncate(keep);
    }
    order.sort_unstable();
    let kept: f64 = order.iter().map(|&i| weight(i)).sum();
    let target = f64::from(u) * kept;
    let mut cum = 0.0;
    for &i in &order {
        let before = cum;
        cum += weight(i);
        if cum > target {
            margin = margin.min((cum - target) / kept).min((target - before) / kept);
            return Pick { id: i as u32, margin };
        }
    }
    Pick { id: *order.last().unwrap_or(&0) as u32, margin: 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random123's published known-answer vectors (its tests/kat_vectors).
    #[test]
    fn philox_matches_the_known_answers() {
        assert_eq!(philox4x32_10([0; 4], [0; 2]), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]);
        assert_eq!(philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]);
        assert_eq!(
            philox4x32_10([0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344], [0xa409_3822, 0x299f_31d0]),
            [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]
        );
    }

    #[test]
    fn uniforms_are_in_range_and_spread() {
        let us: Vec<f32> = (0..20_000).map(|d| uniform(42, d)).collect();
        assert!(us.iter().all(|&u| (0.0..1.0).contains(&u)));
        let mean = us.iter().map(|&u| f64::from(u)).sum::<f64>() / us.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        assert_ne!(uniform(42, 0), uniform(43, 0));
        assert_ne!(uniform(42, 0), uniform(42, 1 << 32));
    }

    #[test]
    fn order_key_is_total_cmp() {
        let vals = [f32::NEG_INFINITY, -3.5, -0.0, 0.0, 1e-30, 2.0, f32::MAX, f32::INFINITY];
        for a in vals {
            for b in vals {
                assert_eq!(order_key(a).cmp(&order_key(b)), a.total_cmp(&b), "{a} vs {b}");
            }
        }
    }

    fn s(temperature: f32, top_k: usize, top_p: f32, repetition_penalty: f32) -> SampleSettings {
        SampleSettings { temperature, top_k, top_p, repetition_penalty }
    }

    #[test]
    fn greedy_penalty_and_ties() {
        // Penalty 2 on id 0: 4 → 2, so the tie 3.0/3.0 at ids 1 and 3 goes to the lower index.
        assert_eq!(sample_ref(&[4.0, 3.0, -1.0, 3.0], &[0, 0], &s(0.0, 0, 1.0, 2.0), 0.5).id, 1);
        // Negative logits are multiplied: −1 → −2 loses to −1.5.
        assert_eq!(sample_ref(&[-1.0, -1.5], &[0], &s(0.0, 0, 1.0, 2.0), 0.0).id, 1);
        // A NaN is never picked, even first.
        assert_eq!(sample_ref(&[f32::NAN, -9.0, f32::NAN], &[], &s(0.0, 0, 1.0, 1.0), 0.0).id, 1);
        assert_eq!(sample_ref(&[f32::NAN, -9.0, 2.0], &[], &s(1.0, 0, 1.0, 1.0), 0.999).id, 2);
    }

    #[test]
    fn draws_walk_the_kept_tokens_in_index_order() {
        // Weights ∝ 1, 3 (T = 1, logits 0 and ln 3): ids 0 for u < 0.25, 1 above.
        let l = [0.0, 3f32.ln(), f32::NEG_INFINITY];
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 1.0, 1.0), 0.2).id, 0);
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 1.0, 1.0), 0.3).id, 1);
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 1.0, 1.0), 0.999_999).id, 1);
        // top-k 1 and a tiny top-p keep only the most likely.
        assert_eq!(sample_ref(&l, &[], &s(1.0, 1, 1.0, 1.0), 0.0).id, 1);
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 1e-6, 1.0), 0.0).id, 1);
        // top-p 0.8 needs both (0.75 < 0.8); top-p 0.7 only id 1.
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 0.8, 1.0), 0.1).id, 0);
        assert_eq!(sample_ref(&l, &[], &s(1.0, 0, 0.7, 1.0), 0.1).id, 1);
        // Ties at the top-k boundary keep the lower index: [2, 2, 2] with k = 2 keeps 0 and 1.
        let picks: Vec<u32> = (0..64).map(|d| sample_ref(&[2.0, 2.0, 2.0], &[], &s(1.0, 2, 1.0, 1.0), uniform(1, d)).id).collect();
        assert!(picks.contains(&0) && picks.contains(&1) && !picks.contains(&2));
        // All −∞: no mass to draw from, the first token is the answer.
        assert_eq!(sample_ref(&[f32::NEG_INFINITY; 3], &[], &s(1.0, 0, 0.9, 1.0), 0.5).id, 0);
    }
}
