// Greedy sampling on the device: the index of the largest logit of a row, so a decoded token
// reads back 4 bytes instead of the whole [vocab] row. Ties go to the first index, as the CPU
// sampler's `argmax` (and torch.argmax) decide. A row that holds a NaN or +∞, or nothing above
// −∞, has no meaningful pick: the answer is then NON_FINITE (i32::MAX, burn's index type),
// which the host reports as a numerical fault instead of a token. One workgroup: lanes stride over the row, then a tree
// reduction over (value, index) pairs.

struct ArgmaxParams {
    cols: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// [cols] logits.
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
// [1] the chosen index.
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@group(0) @binding(2) var<uniform> params: ArgmaxParams;

const WG: u32 = {{ wg }}u;
// No candidate yet (an empty stride, or only NaNs).
const NONE: u32 = 0xffffffffu;
// The answer for a row with no meaningful pick (webvlm_kernels::sample::NON_FINITE).
const NON_FINITE: u32 = 0x7fffffffu;

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;
// Set by any lane that saw a NaN or +∞.
var<workgroup> non_finite: atomic<u32>;

// NaN tested on the bits: compilers may fold `v != v` away under fast-math (llvmpipe does).
fn is_nan(v: f32) -> bool {
    let b = bitcast<u32>(v);
    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

// Whether (v, i) is a better pick than (w, j).
fn beats(v: f32, i: u32, w: f32, j: u32) -> bool {
    if (i == NONE) {
        return false;
    }
    if (j == NONE) {
        return true;
    }
    return v > w || (v == w && i < j);
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    // Workgroup memory is not zeroed for us (the runtime turns WGSL's zero-init off).
    if (li == 0u) {
        atomicStore(&non_finite, 0u);
    }
    workgroupBarrier();
    var bv = 0.0;
    var bi = NONE;
    var bad = false;
    for (var c = li; c < params.cols; c += WG) {
        let v = x[c];
        bad = bad || is_nan(v) || bitcast<u32>(v) == 0x7f800000u;
        if (!is_nan(v) && beats(v, c, bv, bi)) {
            bv = v;
            bi = c;
        }
    }
    if (bad) {
        atomicOr(&non_finite, 1u);
    }
    best_v[li] = bv;
    best_i[li] = bi;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (li < off && beats(best_v[li + off], best_i[li + off], best_v[li], best_i[li])) {
            best_v[li] = best_v[li + off];
            best_i[li] = best_i[li + off];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        var pick = best_i[0];
        // Only −∞ (or nothing): no token is more likely than another.
        if (atomicLoad(&non_finite) != 0u || pick == NONE || bitcast<u32>(best_v[0]) == 0xff800000u) {
            pick = NON_FINITE;
        }
        y[0] = pick;
    }
}
