//! CPU references for the kernels, and the small deterministic generator the tests and the
//! bench draw their data from (no `rand` dependency, so every run sees the same numbers).

use crate::error::{KernelError, Result};
use crate::quant::QuantMatrix;

fn check_x(x: &[f32], m: usize, w: &QuantMatrix) -> Result<()> {
    if x.len() == m * w.k() { Ok(()) } else { Err(KernelError::DataLength { n: m, k: w.k(), expected: m * w.k(), found: x.len() }) }
}

/// `y = x · Wᵀ` in f64 from the *dequantised* weight: the exact answer every kernel variant is
/// compared against, so the tolerance measures the kernel's f32 arithmetic, not quantisation.
///
/// # Shapes
/// `x: [m, k]`, `w: [n, k]` → `[m, n]`
pub fn matmul_ref(x: &[f32], m: usize, w: &QuantMatrix) -> Result<Vec<f32>> {
    check_x(x, m, w)?;
    let (n, k) = (w.n(), w.k());
    let wd = w.dequantize();
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        let xr = &x[i * k..(i + 1) * k];
        for j in 0..n {
            let wr = &wd[j * k..(j + 1) * k];
            y[i * n + j] = xr.iter().zip(wr).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum::<f64>() as f32;
        }
    }
    Ok(y)
}

/// For each output, `Σ |x|·|w|` in f64: the scale a float dot product's rounding error grows
/// with, used to state tolerances relative to the problem rather than to the answer (which can
/// be near zero by cancellation).
pub fn abs_matmul_ref(x: &[f32], m: usize, w: &QuantMatrix) -> Result<Vec<f32>> {
    check_x(x, m, w)?;
    let (n, k) = (w.n(), w.k());
    let wd = w.dequantize();
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        for j in 0..n {
            y[i * n + j] = (0..k).map(|c| f64::from(x[i * k + c].abs()) * f64::from(wd[j * k + c].abs())).sum::<f64>() as f32;
        }
    }
    Ok(y)
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants).
#[derive(Debug, Clone)]
pub struct Lcg(u64);

/// What `fma_peak.wgsl` writes for invocation `i` after `iters` steps of `a = a·b + c` on its
/// 8 chains of 4 (the same start values and the same summation order).
pub fn fma_peak_ref(i: u32, iters: u32, b: f32, c: f32) -> f32 {
    let s = (i % 1024) as f32 * (1.0 / 1024.0);
    let lane = [0.0f32, 0.125, 0.25, 0.375];
    let starts = [s, s + 0.0625, s + 0.5, s + 0.5625, -s, -(s + 0.0625), -(s + 0.5), -(s + 0.5625)];
    let mut a: Vec<[f32; 4]> = starts.iter().map(|&o| lane.map(|l| l + o)).collect();
    for _ in 0..iters {
        for chain in &mut a {
            for v in chain.iter_mut() {
                *v = v.mul_add(b, c);
            }
        }
    }
    let add = |x: [f32; 4], y: [f32; 4]| [x[0] + y[0], x[1] + y[1], x[2] + y[2], x[3] + y[3]];
    let sum = add(add(add(a[0], a[1]), add(a[2], a[3])), add(add(a[4], a[5]), add(a[6], a[7])));
    (sum[0] + sum[1]) + (sum[2] + sum[3])
}

impl Lcg {
    /// Seeded generator; different seeds give unrelated streams.
    pub fn new(seed: u64) -> Self {
        let mut g = Lcg(seed ^ 0x9E37_79B9_7F4A_7C15);
        g.next_u32();
        g
    }

    /// The high 32 bits of the next state (the low bits of an LCG are weak).
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }

    /// Approximately standard normal (sum of four uniforms, rescaled): enough spread for
    /// weights and activations, with no rejection loop.
    pub fn normal(&mut self) -> f32 {
        let s: f32 = (0..4).map(|_| self.uniform()).sum();
        (s - 2.0) * 3f32.sqrt()
    }

    /// `len` values of [`Lcg::normal`].
    pub fn normals(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.normal()).collect()
    }
}
