// LayerNorm of each row, one workgroup per row: y = (x − mean) / sqrt(var + eps) · w + b with
// the biased variance, in f32 as torch computes it (the mean first, then the mean of squared
// deviations: no E[x²] − E[x]² cancellation). One dispatch instead of burn's ~10 (mean,
// variance, subtract, divide, sqrt, scale, shift), twice per vision block.

struct NormParams {
    rows: u32,
    cols: u32,
    eps: f32,
    _pad0: u32,
}

// [rows, cols]
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
// [rows, cols]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
// [cols]
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
// [cols]
@group(0) @binding(3) var<storage, read_write> b: array<f32>;
@group(0) @binding(4) var<uniform> params: NormParams;

const WG: u32 = {{ wg }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.x + wid.y * nwg.x;
    // The whole workgroup leaves together, so the barriers below stay uniform.
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    // Uniform loop bounds (see rms_norm.wgsl): lane li takes columns li, li + WG, ...
    let iters = (params.cols + WG - 1u) / WG;
    var s = 0.0;
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            s += x[base + c];
        }
    }
    let mean = reduce_sum(li, s) / f32(params.cols);
    var s2 = 0.0;
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            let d = x[base + c] - mean;
            s2 += d * d;
        }
    }
    let inv = 1.0 / sqrt(reduce_sum(li, s2) / f32(params.cols) + params.eps);
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            y[base + c] = (x[base + c] - mean) * inv * w[c] + b[c];
        }
    }
}
