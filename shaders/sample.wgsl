// Sampling on the device: repetition penalty, temperature, top-k, top-p and a seeded draw, so a
// sampled token reads back 4 bytes instead of the [vocab] logits row. The rule is
// crates/webvlm-kernels/src/sample.rs's (`sample_ref`, the reference it is tested against):
// tokens ordered by logit, largest first, ties by lower index; the kept set is a prefix of that
// order, found here without sorting by bisecting on the logits' order keys (a count or a mass of
// the keys ≥ a threshold, one pass over the row per step) and then cutting the ties at the
// threshold in index order; the draw walks the kept tokens in index order.
//
// One workgroup. Lane l owns the contiguous slice l·per .. (l+1)·per of the row, so sums over
// lanes taken in lane order are sums in index order: a draw finds its lane by a serial scan of
// the lanes' partial sums, then its token inside the lane's slice.
//
// The chosen id also sets its bit in `seen` (the ids the repetition penalty applies to), so the
// next token's penalty needs nothing from the host. A row that holds a NaN or +∞, or nothing
// above −∞, has no meaningful pick: the answer is then NON_FINITE (i32::MAX), `seen` is left as it
// was, and the host reports a numerical fault instead of a token.

struct SampleParams {
    cols: u32,
    top_k: u32,        // 0 = off
    top_p: f32,        // 1 = off
    temperature: f32,  // 0 = the first most likely token
    penalty: f32,      // 1 = off
    key0: u32,         // Philox key: the seed
    key1: u32,
    draw0: u32,        // Philox counter: the draw's number
    draw1: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// [cols] logits.
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
// [1] the chosen id.
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
// [ceil(cols / 32)] bit i set: id i seen.
@group(0) @binding(2) var<storage, read_write> seen: array<u32>;
// [2·cols] the penalised logits, then the kept tokens' weights (0 for the others).
@group(0) @binding(3) var<storage, read_write> work: array<f32>;
@group(0) @binding(4) var<uniform> params: SampleParams;

const WG: u32 = {{ wg }}u;
const NONE: u32 = 0xffffffffu;
// The answer for a row with no meaningful pick (webvlm_kernels::sample::NON_FINITE).
const NON_FINITE: u32 = 0x7fffffffu;

var<workgroup> red_u: array<u32, WG>;
// Lane-0 decisions every lane reads after a barrier.
var<workgroup> found_lane: u32;
var<workgroup> found_before: f32;
var<workgroup> found_count: u32;
var<workgroup> found_id: u32;
var<workgroup> found_target: f32;

fn is_nan(v: f32) -> bool {
    let b = bitcast<u32>(v);
    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x007fffffu) != 0u;
}

// Monotone in the value: a.total_cmp(b) is key(a) vs key(b).
fn order_key(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    return select(b ^ 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn key_value(k: u32) -> f32 {
    return bitcast<f32>(select(~k, k ^ 0x80000000u, k >= 0x80000000u));
}

// Token i of key k lies in the prefix that ends at the last token of key `kt` with index ≤ `ct`.
fn in_prefix(k: u32, i: u32, kt: u32, ct: u32) -> bool {
    return k > kt || (k == kt && i <= ct);
}

// The u32 twin of common/reduce.wgsl's `reduce` (counts, keys): every lane gets the result.
fn reduce_u(li: u32, v: u32, take_max: bool) -> u32 {
    red_u[li] = v;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (li < off) {
            let a = red_u[li];
            let b = red_u[li + off];
            red_u[li] = select(a + b, max(a, b), take_max);
        }
        workgroupBarrier();
    }
    let r = red_u[0];
    workgroupBarrier();
    return r;
}

fn sum_u(li: u32, v: u32) -> u32 {
    return reduce_u(li, v, false);
}

fn max_u(li: u32, v: u32) -> u32 {
    return reduce_u(li, v, true);
}

fn min_u(li: u32, v: u32) -> u32 {
    return ~max_u(li, ~v);
}

// Every lane's partial sum, into `partial` (common/reduce.wgsl's) for a serial scan by lane 0.
fn share_f(li: u32, v: f32) {
    partial[li] = v;
    workgroupBarrier();
}

// 32 × 32 → 64-bit product as (high, low) words, from 16-bit halves (WGSL has no u64).
fn mul_hi_lo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xffffu;
    let a1 = a >> 16u;
    let b0 = b & 0xffffu;
    let b1 = b >> 16u;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let mid = ((a0 * b0) >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
    let hi = a1 * b1 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(ctr: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = ctr;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
        }
        let p0 = mul_hi_lo(0xD2511F53u, c.x);
        let p1 = mul_hi_lo(0xCD9E8D57u, c.z);
        c = vec4<u32>(p1.x ^ c.y ^ k.x, p1.y, p0.x ^ c.w ^ k.y, p0.y);
    }
    return c;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    let cols = params.cols;
    let per = (cols + WG - 1u) / WG;
    let lo = min(li * per, cols);
    let hi = min(lo + per, cols);

    // The penalised logits (NaN → −∞) and the most likely token, ties to the lower index.
    var lane_max = 0u;
    var lane_bad = 0u;
    for (var i = lo; i < hi; i++) {
        var v = x[i];
        if (is_nan(v) || bitcast<u32>(v) == 0x7f800000u) {
            lane_bad = 1u;
        }
        if (is_nan(v)) {
            // −∞, from a runtime value: Tint rejects an infinite constant expression.
            v = bitcast<f32>(0xff800000u | (cols & 0u));
        }
        if (params.penalty != 1.0 && ((seen[i >> 5u] >> (i & 31u)) & 1u) == 1u) {
            v = select(v / params.penalty, v * params.penalty, v < 0.0);
        }
        work[i] = v;
        lane_max = max(lane_max, order_key(v));
    }
    let kmax = max_u(li, lane_max);
    // A NaN or +∞ anywhere, or every logit −∞ (whose order key is 0x007fffff).
    let non_finite = max_u(li, lane_bad) != 0u || kmax == 0x007fffffu;
    var lane_first = NONE;
    for (var i = lo; i < hi; i++) {
        if (order_key(work[i]) == kmax) {
            lane_first = i;
            break;
        }
    }
    let first = min_u(li, lane_first);
    var pick = first;

    if (params.temperature > 0.0) {
        // Top-k: the largest key K with count(key ≥ K) ≥ k, then the ties at K in index order.
        var k1 = 0u;
        var c1 = cols;
        if (params.top_k > 0u && params.top_k < cols) {
            var a = 0u;
            var b = kmax;
            for (var it = 0u; it < 32u; it++) {
                let mid = a + (b - a + 1u) / 2u;
                var n = 0u;
                for (var i = lo; i < hi; i++) {
                    n += u32(order_key(work[i]) >= mid);
                }
                let total = sum_u(li, n);
                a = select(a, mid, total >= params.top_k);
                b = select(mid - 1u, b, total >= params.top_k);
            }
            k1 = a;
            var above = 0u;
            var ties = 0u;
            for (var i = lo; i < hi; i++) {
                let k = order_key(work[i]);
                above += u32(k > k1);
                ties += u32(k == k1);
            }
            let need = params.top_k - sum_u(li, above);
            red_u[li] = ties;
            workgroupBarrier();
            if (li == 0u) {
                var before = 0u;
                var lane = 0u;
                for (; lane < WG - 1u; lane++) {
                    if (before + red_u[lane] >= need) {
                        break;
                    }
                    before += red_u[lane];
                }
                found_lane = lane;
                found_count = need - before;
            }
            workgroupBarrier();
            if (li == found_lane) {
                var left = found_count;
                var cut = hi - 1u;
                for (var i = lo; i < hi; i++) {
                    if (order_key(work[i]) == k1) {
                        left -= 1u;
                        if (left == 0u) {
                            cut = i;
                            break;
                        }
                    }
                }
                found_id = cut;
            }
            workgroupBarrier();
            c1 = found_id;
            workgroupBarrier();
        }

        // The kept tokens' weights exp(l/T − max/T), as sample_ref computes them.
        let vmax = key_value(kmax) / params.temperature;
        var lane_mass = 0.0;
        for (var i = lo; i < hi; i++) {
            let v = work[i];
            var w = 0.0;
            if (in_prefix(order_key(v), i, k1, c1)) {
                w = exp(v / params.temperature - vmax);
            }
            work[cols + i] = w;
            lane_mass += w;
        }
        let mass = reduce_sum(li, lane_mass);

        // Top-p: the largest key K whose prefix holds top_p of the mass, then its ties.
        var k2 = k1;
        var c2 = c1;
        if (params.top_p < 1.0) {
            let goal = params.top_p * mass;
            var a = k1;
            var b = kmax;
            for (var it = 0u; it < 32u; it++) {
                let mid = a + (b - a + 1u) / 2u;
                var m = 0.0;
                for (var i = lo; i < hi; i++) {
                    m += select(0.0, work[cols + i], order_key(work[i]) >= mid);
                }
                let total = reduce_sum(li, m);
                a = select(a, mid, total >= goal);
                b = select(mid - 1u, b, total >= goal);
            }
            k2 = a;
            var above = 0.0;
            var ties = 0.0;
            for (var i = lo; i < hi; i++) {
                let k = order_key(work[i]);
                above += select(0.0, work[cols + i], k > k2);
                ties += select(0.0, work[cols + i], k == k2);
            }
            let need = goal - reduce_sum(li, above);
            share_f(li, ties);
            if (li == 0u) {
                var before = 0.0;
                var lane = 0u;
                for (; lane < WG - 1u; lane++) {
                    if (before + partial[lane] >= need) {
                        break;
                    }
                    before += partial[lane];
                }
                found_lane = lane;
                found_before = before;
            }
            workgroupBarrier();
            if (li == found_lane) {
                var cum = found_before;
                var cut = NONE;
                for (var i = lo; i < hi; i++) {
                    if (order_key(work[i]) == k2 && in_prefix(k2, i, k1, c1)) {
                        cum += work[cols + i];
                        if (cum >= need) {
                            cut = i;
                            break;
                        }
                    }
                }
                // Rounding may leave the goal unreached: then every kept tie stays.
                found_id = select(cut, select(cols, c1, k2 == k1), cut == NONE);
            }
            workgroupBarrier();
            c2 = found_id;
            workgroupBarrier();
        }

        // The draw: u · (kept mass) against the kept weights' running sum, in index order.
        var lane_kept = 0.0;
        var lane_last = 0u;
        for (var i = lo; i < hi; i++) {
            if (in_prefix(order_key(work[i]), i, k2, c2)) {
                lane_kept += work[cols + i];
                lane_last = i + 1u;
            }
        }
        // The last kept token: the answer when rounding leaves the draw past every sum.
        let last_kept = max_u(li, lane_last);
        share_f(li, lane_kept);
        if (li == 0u) {
            var kept = 0.0;
            for (var l = 0u; l < WG; l++) {
                kept += partial[l];
            }
            let r = philox4x32_10(vec4<u32>(params.draw0, params.draw1, 0u, 0u), vec2<u32>(params.key0, params.key1));
            let goal = f32(r.x >> 8u) * (1.0 / 16777216.0) * kept;
            var before = 0.0;
            var lane = NONE;
            for (var l = 0u; l < WG; l++) {
                if (before + partial[l] > goal) {
                    lane = l;
                    break;
                }
                before += partial[l];
            }
            found_lane = lane;
            found_before = before;
            found_target = goal;
            found_id = last_kept - 1u;
        }
        workgroupBarrier();
        if (li == found_lane) {
            var cum = found_before;
            var cut = NONE;
            var last = NONE;
            for (var i = lo; i < hi; i++) {
                if (in_prefix(order_key(work[i]), i, k2, c2)) {
                    last = i;
                    cum += work[cols + i];
                    if (cum > found_target) {
                        cut = i;
                        break;
                    }
                }
            }
            found_id = select(cut, last, cut == NONE);
        }
        workgroupBarrier();
        // No mass to draw from (every kept logit −∞, or an infinite one): the most likely token.
        pick = select(first, found_id, mass > 0.0 && mass <= 3.4e38);
    }

    if (li == 0u && non_finite) {
        y[0] = NON_FINITE;
    } else if (li == 0u) {
        y[0] = pick;
        if (params.penalty != 1.0) {
            seen[pick >> 5u] |= 1u << (pick & 31u);
        }
    }
}
