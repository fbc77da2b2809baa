// SwiGLU's gate: y = silu(g) · u = g / (1 + exp(−g)) · u, elementwise (one dispatch instead of
// burn's sigmoid, product and product).

struct EltParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> g: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<f32>;
@group(0) @binding(3) var<uniform> params: EltParams;

const WG: u32 = {{ wg }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let idx = (wid.x + wid.y * nwg.x) * WG + li;
    if (idx >= params.len) {
        return;
    }
    let v = g[idx];
    y[idx] = v / (1.0 + exp(-v)) * u[idx];
}
