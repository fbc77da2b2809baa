{{ enables }}
// q8 matrix-vector product for decode (M = 1): y[n] = Σ_k x[k]·W[n, k].
// Every weight is read exactly once, 16 bytes at a time; the entry point and the reduction
// come from common/matvec_{workgroup,subgroup}.wgsl, the block layout from common/q8.wgsl.

// [N·Kb·2] half-blocks of 16 i8 weights.
@group(0) @binding(2) var<storage, read_write> qs: array<vec4<u32>>;
// [ceil(N·Kb / 2)] f16 scales, two per word.
@group(0) @binding(3) var<storage, read_write> qd: array<u32>;
@group(0) @binding(4) var<uniform> params: MatvecParams;

// Lane `lane` of `lanes` sums its share of row `row`: half-blocks lane, lane + lanes, ...
fn row_dot(row: u32, lane: u32, lanes: u32) -> f32 {
    let chunks = params.kb * 2u;
    var acc = 0.0;
    for (var c = lane; c < chunks; c += lanes) {
        let q = qs[row * chunks + c];
        let d = q8_scale(row * params.kb + c / 2u);
        let j = c * 4u;
        let s = dot(x4(0u, j), q8_word(q.x, d)) + dot(x4(0u, j + 1u), q8_word(q.y, d))
              + dot(x4(0u, j + 2u), q8_word(q.z, d)) + dot(x4(0u, j + 3u), q8_word(q.w, d));
        acc += f32(s);
    }
    return acc;
}
