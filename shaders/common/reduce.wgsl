// Workgroup-wide reductions for kernels that give one row to one workgroup (norm.wgsl,
// softmax.wgsl): every invocation passes its partial value, every invocation gets the result.
// The including file defines `WG` (a power of two); calls must be in uniform control flow.

var<workgroup> partial: array<f32, WG>;

// Tree reduction in shared memory: the maximum (`take_max`) or the sum of every lane's `v`.
fn reduce(li: u32, v: f32, take_max: bool) -> f32 {
    partial[li] = v;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (li < off) {
            let a = partial[li];
            let b = partial[li + off];
            partial[li] = select(a + b, max(a, b), take_max);
        }
        workgroupBarrier();
    }
    let r = partial[0];
    // The next reduction overwrites `partial`: every lane must have read the result first.
    workgroupBarrier();
    return r;
}

fn reduce_max(li: u32, v: f32) -> f32 {
    return reduce(li, v, true);
}

fn reduce_sum(li: u32, v: f32) -> f32 {
    return reduce(li, v, false);
}
