// Compute peak: each invocation runs 8 independent vec4 chains of `a = a·b + c` (4 fused
// multiply-adds per chain and step, 64 FLOPs a step), registers only, one f32 written at the end
// so none of it is dead code. The compute twin of copy.wgsl: the tiled matmul's GFLOP/s are
// reported as a fraction of this kernel's on the same device in the same run.
// |b| < 1 keeps every chain bounded (it converges to c / (1 - b)).

struct FmaParams {
    iters: u32,   // steps per invocation
    b: f32,
    c: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> params: FmaParams;

const WG: u32 = {{ wg }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    // Start values differ per invocation and chain, so no two chains can be merged.
    let s = f32(i % 1024u) * (1.0 / 1024.0);
    let lane = vec4<f32>(0.0, 0.125, 0.25, 0.375);
    var a0 = lane + s;
    var a1 = lane + (s + 0.0625);
    var a2 = lane + (s + 0.5);
    var a3 = lane + (s + 0.5625);
    var a4 = lane - s;
    var a5 = lane - (s + 0.0625);
    var a6 = lane - (s + 0.5);
    var a7 = lane - (s + 0.5625);
    let b = vec4<f32>(params.b);
    let c = vec4<f32>(params.c);
    for (var t = 0u; t < params.iters; t++) {
        a0 = fma(a0, b, c);
        a1 = fma(a1, b, c);
        a2 = fma(a2, b, c);
        a3 = fma(a3, b, c);
        a4 = fma(a4, b, c);
        a5 = fma(a5, b, c);
        a6 = fma(a6, b, c);
        a7 = fma(a7, b, c);
    }
    let sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    out[i] = (sum.x + sum.y) + (sum.z + sum.w);
}
