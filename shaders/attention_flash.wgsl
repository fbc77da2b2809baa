// Attention of many query rows at once (prefill, the vision towers) without a scores tensor:
// softmax(q·kᵀ·scale)·v computed tile by tile with the online softmax, so memory stays at two
// tiles of keys and values in workgroup memory whatever the sequence length (the materialised
// [heads, n, n] scores were 48 MiB per SmolVLM vision layer and past a phone's binding limit
// for long prompts).
//
// A workgroup takes WG·R query rows of one head, R rows per lane; a lane keeps its queries and
// accumulators in registers, so the softmax needs no reduction across lanes. R = 1 suits a
// GPU; a CPU adapter (lavapipe, SwiftShader) pays for every workgroup-memory load lane by
// lane, so there R = 4 rows share each key and value loaded. The lanes
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
}

@group(0) @binding(0) var<storage, read_write> q: array<f32>;
// [n, heads·hd]
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
// k and v: their own bindings, or (joined) read from q's buffer, a joined projection's output
// bound once: browsers refuse overlapping bindings of one buffer when one is writable, and
// CubeCL declares every binding writable.
{{ kv_bindings }}
// mode 2: [n, 2], row r sees keys ranges[2r] .. ranges[2r + 1]; rows in order, ranges
// non-decreasing (windows tiling the sequence). Otherwise one unread word.
@group(0) @binding({{ ranges_binding }}) var<storage, read_write> ranges: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: FlashParams;

const WG: u32 = {{ wg }}u;
const HD4: u32 = {{ hd4 }}u; // vec4s per head (zero-padded past hd)
const BC: u32 = {{ bc }}u;   // keys per tile
const TILE: u32 = {{ tile }}u; // BC · HD4
const R: u32 = {{ rows }}u;     // query rows per lane
const RQ: u32 = {{ rq }}u;     // R · HD4
const RS: u32 = {{ rs }}u;     // R · BC

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
            out[e] = {{ k_buf }}[base + d];
        }
    }
    return out;
}

fn load_v(base: u32, c: u32) -> vec4<f32> {
    var out = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
        let d = 4u * c + e;
        if (d < params.hd) {
            out[e] = {{ v_buf }}[base + d];
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
    let r0 = (idx % params.row_blocks) * WG * R;
    let kvh = head / params.rep;
    // Ranges are monotone in the row: the first row's start and the last row's end.
    if (li == 0u) {
        bounds = vec2<u32>(row_range(r0).x, row_range(min(r0 + WG * R, params.n) - 1u).y);
    }
    let wb = workgroupUniformLoad(&bounds);
    let t_lo = wb.x;
    let t_hi = wb.y;
    // Lane li takes rows r0 + li, r0 + li + WG, ...; a row past the last sees no key and
    // writes nothing.
    var mine: array<vec2<u32>, R>;
    var qv: array<vec4<f32>, RQ>;
    var acc: array<vec4<f32>, RQ>;
    var m: array<f32, R>;
    var l: array<f32, R>;
    let lowest = bitcast<f32>(0xff7fffffu); // -FLT_MAX (the literal does not round-trip in Tint)
    for (var i = 0u; i < R; i++) {
        let r = r0 + i * WG + li;
        m[i] = lowest;
        if (r < params.n) {
            mine[i] = row_range(r);
            let qb = params.q_off + head * params.q_hs + r * params.q_rs;
            for (var c = 0u; c < HD4; c++) {
                qv[i * HD4 + c] = load_q(qb, c);
            }
        }
    }
    var s: array<f32, RS>;
    for (var t0 = t_lo; t0 < t_hi; t0 += BC) {
        let count = min(BC, t_hi - t0);
        for (var e = li; e < TILE; e += WG) {
            let j = e / HD4;
            let c = e % HD4;
            var kk = vec4<f32>(0.0);
            var vv = vec4<f32>(0.0);
            if (j < count) {
                kk = load_k(params.k_off + kvh * params.k_hs + (t0 + j) * params.k_rs, c);
                vv = load_v(params.v_off + kvh * params.v_hs + (t0 + j) * params.v_rs, c);
            }
            k_s[e] = kk;
            v_s[e] = vv;
        }
        workgroupBarrier();
        // Every lane walks the whole tile (uniform loops: a CPU adapter runs the lanes as
        // SIMD and would turn per-lane bounds into gathers); keys a row does not see get no
        // weight. Each key and value loaded serves the lane's R rows.
        var m_new: array<f32, R>;
        for (var i = 0u; i < R; i++) {
            m_new[i] = m[i];
        }
        for (var j = 0u; j < count; j++) {
            // Zeroed by hand: WGSL zero-initialises a `var` each time its declaration runs, but
            // Chromium on SwiftShader kept the previous key's sums here (scores then summed
            // over keys, and every row past the first went wrong).
            var dot4: array<vec4<f32>, R>;
            for (var i = 0u; i < R; i++) {
                dot4[i] = vec4<f32>(0.0);
            }
            for (var c = 0u; c < HD4; c++) {
                let kv = k_s[j * HD4 + c];
                for (var i = 0u; i < R; i++) {
                    dot4[i] += qv[i * HD4 + c] * kv;
                }
            }
            let t = t0 + j;
            for (var i = 0u; i < R; i++) {
                let d = dot4[i];
                let sj = select(lowest, (d.x + d.y + d.z + d.w) * params.scale, t >= mine[i].x && t < mine[i].y);
                s[i * BC + j] = sj;
                m_new[i] = max(m_new[i], sj);
            }
        }
        for (var i = 0u; i < R; i++) {
            let alpha = exp(m[i] - m_new[i]);
            l[i] *= alpha;
            for (var c = 0u; c < HD4; c++) {
                acc[i * HD4 + c] *= alpha;
            }
        }
        for (var j = 0u; j < count; j++) {
            let t = t0 + j;
            var p: array<f32, R>;
            for (var i = 0u; i < R; i++) {
                p[i] = select(0.0, exp(s[i * BC + j] - m_new[i]), t >= mine[i].x && t < mine[i].y);
                l[i] += p[i];
            }
            for (var c = 0u; c < HD4; c++) {
                let vv = v_s[j * HD4 + c];
                for (var i = 0u; i < R; i++) {
                    acc[i * HD4 + c] += p[i] * vv;
                }
            }
        }
        for (var i = 0u; i < R; i++) {
            m[i] = m_new[i];
        }
        // The next tile overwrites k_s and v_s: every lane must be done reading them.
        workgroupBarrier();
    }
    for (var i = 0u; i < R; i++) {
        let r = r0 + i * WG + li;
        if (r < params.n) {
            var inv = 0.0;
            if (l[i] > 0.0) {
                inv = 1.0 / l[i];
            }
            let yb = r * params.heads * params.hd + head * params.hd;
            for (var c = 0u; c < HD4; c++) {
                let o = acc[i * HD4 + c] * inv;
                for (var e = 0u; e < 4u; e++) {
                    let d = 4u * c + e;
                    if (d < params.hd) {
                        y[yb + d] = o[e];
                    }
                }
            }
        }
    }
}
