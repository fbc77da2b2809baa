// RMSNorm or LayerNorm of each row, one workgroup per row, in f32 as transformers computes them.
// RMSNorm: y = x / sqrt(mean(x²) + eps) · w. LayerNorm (CENTER): y = (x − mean) / sqrt(var + eps)
// · w + b with the biased variance, the mean taken first (no E[x²] − E[x]² cancellation). One
// dispatch instead of burn's 7–10 element-wise operations (decode is bound by dispatch count on
// software devices and phones; a vision block normalises twice).

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
// LayerNorm's [cols] bias (RMSNorm has none).
{{ bias_binding }}
@group(0) @binding({{ params_binding }}) var<uniform> params: NormParams;

const WG: u32 = {{ wg }}u;
const CENTER: bool = {{ center }};

// What LayerNorm adds after the scale: b[c]; RMSNorm adds −0, which leaves every value as is.
fn shift(c: u32) -> f32 {
    {{ shift }}
}

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
    // Loop bounds are uniform (a lane-dependent bound or break would make the barriers below
    // non-uniform, which WGSL rejects): each lane takes columns li, li + WG, ...
    let iters = (params.cols + WG - 1u) / WG;
    var mean = 0.0;
    if (CENTER) {
        var s = 0.0;
        for (var it = 0u; it < iters; it++) {
            let c = it * WG + li;
            if (c < params.cols) {
                s += x[base + c];
            }
        }
        mean = reduce_sum(li, s) / f32(params.cols);
    }
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
            y[base + c] = (x[base + c] - mean) * inv * w[c] + shift(c);
        }
    }
}
