// Attention of many query rows at once (prefill, the vision towers) without a scores tensor:
// softmax(q·kᵀ·scale)·v computed tile by tile with the online softmax, so memory stays at two
// tiles of keys and values in workgroup memory whatever the sequence length (the materialised
// [heads, n, n] scores were 48 MiB per SmolVLM vision layer and past a phone's binding limit
// for long prompts).
//
// A workgroup takes WG query rows of one head, one row per lane; a lane keeps its query and
// its accumulators in registers, so the softmax needs no reduction across lanes. The lanes
// load each tile of BC keys and values together (every lane then reads the same key, a
// broadcast), and skip tiles no row of theirs can see: a causal workgroup stops at its last
// row's position, a windowed one (Qwen2.5-VL) keeps to its rows' windows.
// Grouped-query heads read KV head h / rep (transformers' repeat_kv pairing). The output is
// written as [n, heads·hd], what the output projection reads, so no transpose follows.
// Views: q, k and v are read through an offset and strides (head, row), so a projection's
// [n, heads·hd] output, a joined q/k/v projection's [n, (heads + 2·kv_heads)·hd] or a KV cache
// [kv_heads, capacity, hd] serves without a copy.

struct FlashParams {
    heads: u32,
    rep: u32,        // query heads per KV head
    n: u32,          // query rows
    hd: u32,         // head dimension (≤ 4·HD4)
    total: u32,      // keys per KV head
    mode: u32,       // 0: every key; 1: causal; 2: per-row ranges
    start: u32,      // causal: row r sits at position start + r and sees keys 0 ..= start + r
    scale: f32,
    q_hs: u32,       // strides of q, k and v (elements): per head, per row
    q_rs: u32,
    k_hs: u32,
    k_rs: u32,
    v_hs: u32,
    v_rs: u32,
    row_blocks: u32, // workgroups per head: ceil(n / WG)
    q_off: u32,      // element offsets of q, k and v (a joined projection's output)
    k_off: u32,
    v_off: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
// [n, heads·hd]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
// mode 2: [n, 2], row r sees keys ranges[2r] .. ranges[2r + 1]; rows in order, ranges
// non-decreasing (windows tiling the sequence). Otherwise one unread word.
@group(0) @binding(4) var<storage, read_write> ranges: array<u32>;
@group(0) @binding(5) var<uniform> params: FlashParams;

const WG: u32 = {{ wg }}u;
const HD4: u32 = {{ hd4 }}u; // vec4s per head (zero-padded past hd)
const BC: u32 = {{ bc }}u;   // keys per tile
const TILE: u32 = {{ tile }}u; // BC · HD4

var<workgroup> k_s: array<vec4<f32>, TILE>;
var<workgroup> v_s: array<vec4<f32>, TILE>;
// The keys any row of the workgroup sees, [x, y): the loop bounds, uniform by construction
// (read from a storage buffer they would not be, to the uniformity analysis).
var<workgroup> bounds: vec2<u32>;

// Four values of a head's row from `base` (`c` counts vec4s), zero past hd.
fn load_q(base: u32, c: u32) -> vec4<f32> {
    var out = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = 4u * c + e;
        if (d < params.hd) {
            out[e] = q[base + d];
        }
    }
    return out;
}

fn load_k(base: u32, c: u32) -> vec4<f32> {
    var out = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = 4u * c + e;
        if (d < params.hd) {
            out[e] = k[base + d];
        }
    }
    return out;
}

fn load_v(base: u32, c: u32) -> vec4<f32> {
    var out = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = 4u * c + e;
        if (d < params.hd) {
            out[e] = v[base + d];
        }
    }
    return out;
}

// Keys row r sees: [lo, hi).
fn row_range(r: u32) -> vec2<u32> {
    if (params.mode == 1u) {
        return vec2<u32>(0u, min(params.total, params.start + r + 1u));
    }
    if (params.mode == 2u) {
        return vec2<u32>(ranges[2u * r], min(params.total, ranges[2u * r + 1u]));
    }
    return vec2<u32>(0u, params.total);
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let idx = wid.x + wid.y * nwg.x;
    let head = idx / params.row_blocks;
    // Uniform per workgroup: every lane leaves together, before any barrier.
    if (head >= params.heads) {
        return;
    }
    let r0 = (idx % params.row_blocks) * WG;
    let r = r0 + li;
    let live = r < params.n;
    let kvh = head / params.rep;
    // Ranges are monotone in the row: the first row's start and the last row's end.
    if (li == 0u) {
        bounds = vec2<u32>(row_range(r0).x, row_range(min(r0 + WG, params.n) - 1u).y);
    }
    let wb = workgroupUniformLoad(&bounds);
    let t_lo = wb.x;
    let t_hi = wb.y;
    var mine = vec2<u32>(0u, 0u);
    var qv: array<vec4<f32>, HD4>;
    var acc: array<vec4<f32>, HD4>;
    if (live) {
        mine = row_range(r);
        let qb = params.q_off + head * params.q_hs + r * params.q_rs;
        for (var c = 0u; c < HD4; c++) {
            qv[c] = load_q(qb, c);
            acc[c] = vec4<f32>(0.0);
        }
    }
    let lowest = bitcast<f32>(0xff7fffffu); // -FLT_MAX (the literal does not round-trip in Tint)
    var m = lowest;
    var l = 0.0;
    var s: array<f32, BC>;
    for (var t0 = t_lo; t0 < t_hi; t0 += BC) {
        let count = min(BC, t_hi - t0);
        for (var i = li; i < TILE; i += WG) {
            let j = i / HD4;
            let c = i % HD4;
            var kk = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            if (j < count) {
                kk = load_k(params.k_off + kvh * params.k_hs + (t0 + j) * params.k_rs, c);
                vv = load_v(params.v_off + kvh * params.v_hs + (t0 + j) * params.v_rs, c);
            }
            k_s[i] = kk;
            v_s[i] = vv;
        }
        workgroupBarrier();
        // Keys of this tile the row sees: [j_lo, j_hi).
        let j_lo = max(mine.x, t0) - t0;
        let j_hi = min(max(mine.y, t0), t0 + count) - t0;
        if (live && j_lo < j_hi) {
            var m_new = m;
            for (var j = j_lo; j < j_hi; j++) {
                var dot4 = vec4<f32>(0.0);
                for (var c = 0u; c < HD4; c++) {
                    dot4 += qv[c] * k_s[j * HD4 + c];
                }
                let sj = (dot4.x + dot4.y + dot4.z + dot4.w) * params.scale;
                s[j] = sj;
                m_new = max(m_new, sj);
            }
            let alpha = exp(m - m_new);
            l *= alpha;
            for (var c = 0u; c < HD4; c++) {
                acc[c] *= alpha;
            }
            for (var j = j_lo; j < j_hi; j++) {
                let p = exp(s[j] - m_new);
                l += p;
                for (var c = 0u; c < HD4; c++) {
                    acc[c] += p * v_s[j * HD4 + c];
                }
            }
            m = m_new;
        }
        // The next tile overwrites k_s and v_s: every lane must be done reading them.
        workgroupBarrier();
    }
    if (live) {
        var inv = 0.0;
        if (l > 0.0) {
            inv = 1.0 / l;
        }
        let yb = r * params.heads * params.hd + head * params.hd;
        for (var c = 0u; c < HD4; c++) {
            let o = acc[c] * inv;
            for (var e = 0u; e < 4u; e++) {
                let d = 4u * c + e;
                if (d < params.hd) {
                    y[yb + d] = o[e];
                }
            }
        }
    }
}
