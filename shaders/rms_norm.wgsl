// RMSNorm of each row, one workgroup per row: y = x / sqrt(mean(x²) + eps) · w, in f32 as
// transformers computes it. One dispatch instead of burn's square, mean, add, sqrt, recip and
// two products (decode is bound by dispatch count on software devices and phones).

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
@group(0) @binding(3) var<uniform> params: NormParams;

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
    // Loop bounds are uniform (a lane-dependent bound or break would make the barriers below
    // non-uniform, which WGSL rejects): each lane takes columns li, li + WG, ...
    let iters = (params.cols + WG - 1u) / WG;
    var s = 0.0;
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            let v = x[base + c];
            s += v * v;
        }
    }
    let total = reduce_sum(li, s);
    let inv = 1.0 / sqrt(total / f32(params.cols) + params.eps);
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            y[base + c] = x[base + c] * inv * w[c];
        }
    }
}
