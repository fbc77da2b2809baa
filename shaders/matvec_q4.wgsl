{{ enables }}
// q4 matrix-vector product for decode (M = 1): y[n] = Σ_k x[k]·W[n, k].
// Every weight is read exactly once, one block (16 bytes) at a time; the entry point and the
// reduction come from common/matvec_{workgroup,subgroup}.wgsl, the layout from common/q4.wgsl.

// [N·Kb] blocks of 32 nibbles.
@group(0) @binding(2) var<storage, read_write> qs: array<vec4<u32>>;
// [N·Kb] pack2x16float(d, m).
@group(0) @binding(3) var<storage, read_write> qdm: array<u32>;
@group(0) @binding(4) var<uniform> params: MatvecParams;

// Lane `lane` of `lanes` sums its share of row `row`: blocks lane, lane + lanes, ...
fn row_dot(row: u32, lane: u32, lanes: u32) -> f32 {
    var acc = 0.0;
    for (var c = lane; c < params.kb; c += lanes) {
        let block = row * params.kb + c;
        let q = qs[block];
        let dm = q4_dm(block);
        let j = c * 8u;
        let s = dot(x4(0u, j), q4_quad(q.x, 0u, dm)) + dot(x4(0u, j + 1u), q4_quad(q.x, 1u, dm))
              + dot(x4(0u, j + 2u), q4_quad(q.y, 0u, dm)) + dot(x4(0u, j + 3u), q4_quad(q.y, 1u, dm))
              + dot(x4(0u, j + 4u), q4_quad(q.z, 0u, dm)) + dot(x4(0u, j + 5u), q4_quad(q.z, 1u, dm))
              + dot(x4(0u, j + 6u), q4_quad(q.w, 0u, dm)) + dot(x4(0u, j + 7u), q4_quad(q.w, 1u, dm));
        acc += f32(s);
    }
    return acc;
}
