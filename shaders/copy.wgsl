// Plain vec4<u32> copy: the bandwidth reference the matvec kernels are measured against.
// A workgroup moves WG·ITEMS consecutive vec4s; invocation `li` takes every WG-th of them,
// so neighbouring invocations touch neighbouring addresses (coalesced on GPUs) and a CPU
// implementation (lavapipe) amortises the cost of a workgroup over ITEMS loads.

struct CopyParams {
    len: u32,      // vec4 elements to copy
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> params: CopyParams;

const WG: u32 = {{ wg }}u;
const ITEMS: u32 = {{ items }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    // 2D dispatches lift the 65535-workgroups-per-dimension limit for large buffers.
    let base = (wid.x + wid.y * nwg.x) * WG * ITEMS + li;
    for (var i = 0u; i < ITEMS; i++) {
        let idx = base + i * WG;
        if (idx < params.len) {
            dst[idx] = src[idx];
        }
    }
}
