// Rotary position embedding ("default" type, rotate_half convention) fused with the head
// transpose: x is a projection's output [n, heads·hd], y is [heads, n, hd], the layout
// attention multiplies. y = x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁),
// cos/sin from the precomputed tables [positions, rot] at positions start .. start+n.
// Partial rotary (Phi): only the first `rot` of each head's hd values rotate (pairs i, i + rot/2);
// the rest pass through. One invocation per (head, position, i < hd − rot/2): i < rot/2 writes
// the pair y[i], y[i + rot/2], larger i copies y[i + rot/2].

struct RopeParams {
    n: u32,
    heads: u32,
    hd: u32,
    start: u32,
    total: u32,     // heads · n · (hd − rot/2)
    rot: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> cos_t: array<f32>;
@group(0) @binding(3) var<storage, read_write> sin_t: array<f32>;
@group(0) @binding(4) var<uniform> params: RopeParams;

const WG: u32 = {{ wg }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let idx = (wid.x + wid.y * nwg.x) * WG + li;
    if (idx >= params.total) {
        return;
    }
    let half = params.rot / 2u;
    let per = params.hd - half;
    let i = idx % per;
    let t = idx / per;
    let p = t % params.n;
    let h = t / params.n;
    let src = p * params.heads * params.hd + h * params.hd;
    let dst = (h * params.n + p) * params.hd;
    if (i >= half) {
        y[dst + i + half] = x[src + i + half];
        return;
    }
    let x1 = x[src + i];
    let x2 = x[src + i + half];
    let tab = (params.start + p) * params.rot;
    y[dst + i] = x1 * cos_t[tab + i] + (-x2) * sin_t[tab + i];
    y[dst + i + half] = x2 * cos_t[tab + i + half] + x1 * sin_t[tab + i + half];
}
