// Greedy sampling on the device: the index of the largest logit of a row, so a decoded token
// reads back 4 bytes instead of the whole [vocab] row. Ties go to the first index and a NaN
// never wins, as the CPU sampler's `argmax` (and torch.argmax) decide, except that a NaN at
// index 0 makes the answer 0 there too (the CPU loop never moves past it). One workgroup:
// lanes stride over the row, then a tree reduction over (value, index) pairs.

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

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

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
    var bv = 0.0;
    var bi = NONE;
    for (var c = li; c < params.cols; c += WG) {
        let v = x[c];
        if (!is_nan(v) && beats(v, c, bv, bi)) {
            bv = v;
            bi = c;
        }
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
        if (pick == NONE || is_nan(x[0])) {
            pick = 0u;
        }
        y[0] = pick;
    }
}
