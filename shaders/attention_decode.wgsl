// One new token through attention (decode, M = 1), in one dispatch: RoPE on its query and key,
// the key and value written into the KV cache, scores q·kᵀ over every cached position, the
// softmax and the weighted sum of values; no transposed copy of the keys, no scores tensor.
// One workgroup per query head; grouped-query heads share KV head h / rep (transformers'
// repeat_kv pairing), and the first head of each group writes its KV head's new entry. The new
// position is read from workgroup memory by every head, never from the cache it is being
// written to. Positions go by in tiles of WG, one per lane, with the online softmax: a running
// maximum m and sum l, the accumulators rescaled by exp(m_old − m_new) when the maximum grows.
// RoPE is rope.wgsl's arithmetic (rotate_half, partial rotary: the first `rot` values turn).

struct DecodeAttentionParams {
    heads: u32,
    rep: u32,      // query heads per KV head
    hd: u32,       // head dimension (≤ MAX_HD)
    rot: u32,      // rotated values per head (even, ≤ hd)
    pos: u32,      // cache slot of the new token; positions 0 ..= pos are attended to
    rope_pos: u32, // row of the cos/sin tables (its RoPE position; M-RoPE lags behind pos)
    capacity: u32, // positions per KV head in the cache buffers
    scale: f32,
}

// [heads·hd | kv_heads·hd | kv_heads·hd]: the q, k and v projections of the token.
@group(0) @binding(0) var<storage, read_write> qkv: array<f32>;
// [heads·hd] the attention output, heads side by side (what the o-projection reads).
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
// [positions, rot]
@group(0) @binding(2) var<storage, read_write> cos_t: array<f32>;
// [positions, rot]
@group(0) @binding(3) var<storage, read_write> sin_t: array<f32>;
// [kv_heads, capacity, hd]
@group(0) @binding(4) var<storage, read_write> keys: array<f32>;
// [kv_heads, capacity, hd]
@group(0) @binding(5) var<storage, read_write> values: array<f32>;
@group(0) @binding(6) var<uniform> params: DecodeAttentionParams;

const WG: u32 = {{ wg }}u;
const MAX_HD: u32 = 256u;
const DIMS: u32 = MAX_HD / WG; // output dimensions per lane

var<workgroup> q_s: array<f32, MAX_HD>;
var<workgroup> k_s: array<f32, MAX_HD>;
var<workgroup> weights: array<f32, WG>;

// Value i of the head starting at qkv[base], rotated.
fn rotated(base: u32, i: u32) -> f32 {
    let half = params.rot / 2u;
    let tab = params.rope_pos * params.rot;
    if (i >= params.rot) {
        return qkv[base + i];
    }
    if (i < half) {
        let x1 = qkv[base + i];
        let x2 = qkv[base + i + half];
        return x1 * cos_t[tab + i] + (-x2) * sin_t[tab + i];
    }
    let x1 = qkv[base + i - half];
    let x2 = qkv[base + i];
    return x2 * cos_t[tab + i] + x1 * sin_t[tab + i];
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let head = wid.x + wid.y * nwg.x;
    // Uniform per workgroup: every lane leaves together, before any barrier.
    if (head >= params.heads) {
        return;
    }
    let hd = params.hd;
    let kvh = head / params.rep;
    let kv_heads = params.heads / params.rep;
    let q0 = head * hd;
    let k0 = (params.heads + kvh) * hd;
    let v0 = (params.heads + kv_heads + kvh) * hd;
    let cache0 = kvh * params.capacity * hd;
    let slot = cache0 + params.pos * hd;
    for (var i = li; i < hd; i += WG) {
        q_s[i] = rotated(q0, i);
        let k = rotated(k0, i);
        k_s[i] = k;
        if (head % params.rep == 0u) {
            keys[slot + i] = k;
            values[slot + i] = qkv[v0 + i];
        }
    }
    workgroupBarrier();

    var m = bitcast<f32>(0xff7fffffu); // -FLT_MAX (the literal does not round-trip in Tint)
    var l = 0.0;
    var acc: array<f32, DIMS>;
    let total = params.pos + 1u;
    let tiles = (total + WG - 1u) / WG;
    for (var tile = 0u; tile < tiles; tile++) {
        let t = tile * WG + li;
        var s = bitcast<f32>(0xff7fffffu);
        if (t < params.pos) {
            var dot = 0.0;
            let kt = cache0 + t * hd;
            for (var d = 0u; d < hd; d++) {
                dot += q_s[d] * keys[kt + d];
            }
            s = dot * params.scale;
        } else if (t == params.pos) {
            var dot = 0.0;
            for (var d = 0u; d < hd; d++) {
                dot += q_s[d] * k_s[d];
            }
            s = dot * params.scale;
        }
        let m_new = max(m, reduce_max(li, s));
        var p = 0.0;
        if (t < total) {
            p = exp(s - m_new);
        }
        weights[li] = p;
        let alpha = exp(m - m_new);
        // reduce_sum's barriers also make every lane's `weights` entry visible.
        l = l * alpha + reduce_sum(li, p);
        m = m_new;
        let in_tile = min(WG, total - tile * WG);
        for (var j = 0u; j < DIMS; j++) {
            let d = j * WG + li;
            if (d < hd) {
                var sum = acc[j] * alpha;
                let first = tile * WG;
                for (var i = 0u; i < in_tile; i++) {
                    let t_i = first + i;
                    var v = qkv[v0 + d];
                    if (t_i < params.pos) {
                        v = values[cache0 + t_i * hd + d];
                    }
                    sum += weights[i] * v;
                }
                acc[j] = sum;
            }
        }
        // The next tile overwrites `weights`: every lane must be done reading it.
        workgroupBarrier();
    }
    for (var j = 0u; j < DIMS; j++) {
        let d = j * WG + li;
        if (d < hd) {
            y[q0 + d] = acc[j] / l;
        }
    }
}
