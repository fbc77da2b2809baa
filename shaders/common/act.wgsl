// The activations a matmul's epilogue may apply, as transformers' ACT2FN computes them in f32.

// gelu (erf form): x·Φ(x). WGSL has no erf: Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7),
// odd-extended.
fn act_gelu_erf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678118654752;
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf_z = 1.0 - poly * exp(-z * z);
    return 0.5 * x * (1.0 + select(erf_z, -erf_z, x < 0.0));
}

// gelu_pytorch_tanh / gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). tanh through exp
// of a negative argument only, so large |u| neither overflows nor turns NaN on any backend.
fn act_gelu_tanh(x: f32) -> f32 {
    let u = 0.79788456080286536 * (x + 0.044715 * x * x * x);
    let e = exp(-2.0 * abs(u));
    let th = (1.0 - e) / (1.0 + e);
    return 0.5 * x * (1.0 + select(th, -th, u < 0.0));
}

// quick_gelu: x·σ(1.702·x).
fn act_quick_gelu(x: f32) -> f32 {
    return x / (1.0 + exp(-1.702 * x));
}

// silu: x·σ(x).
fn act_silu(x: f32) -> f32 {
    return x / (1.0 + exp(-x));
}
