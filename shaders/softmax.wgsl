// Attention weights: softmax(scores · scale) over each row, with the causal mask applied in
// place of an uploaded mask tensor (a prefill of 1000 tokens would otherwise upload a
// rep·n × total mask per layer). One workgroup per row. Rows are [batch, rep·n]: row r is
// query i = r mod n (rep query heads share a KV head and are stacked), which may see keys
// 0 ..= start + i; with causal = 0 every key is visible.

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    scale: f32,
    n: u32,
    start: u32,
    causal: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> params: SoftmaxParams;

const WG: u32 = {{ wg }}u;
@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= params.rows) {
        return;
    }
    let base = row * params.cols;
    var visible = params.cols;
    if (params.causal != 0u) {
        visible = min(params.cols, params.start + row % params.n + 1u);
    }
    // Uniform loop bounds (see norm.wgsl): the reductions' barriers need them.
    let iters = (params.cols + WG - 1u) / WG;
    var m = bitcast<f32>(0xff7fffffu); // -FLT_MAX (the literal does not round-trip in Tint)
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < visible) {
            m = max(m, x[base + c] * params.scale);
        }
    }
    m = reduce_max(li, m);
    var s = 0.0;
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < visible) {
            s += exp(x[base + c] * params.scale - m);
        }
    }
    s = reduce_sum(li, s);
    for (var it = 0u; it < iters; it++) {
        let c = it * WG + li;
        if (c < params.cols) {
            var v = 0.0;
            if (c < visible) {
                v = exp(x[base + c] * params.scale - m) / s;
            }
            y[base + c] = v;
        }
    }
}
