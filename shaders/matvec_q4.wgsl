{{ enables }}
// q4 matrix-vector product for decode (M = 1): y[n] = Σ_k x[k]·W[n, k].
// Every weight is read exactly once, 16 bytes at a time. A chunk, the unit of one lane's
// work, is one block: 32 weights in one vec4<u32>. The entry point and the reduction come
// from common/matvec_{workgroup,subgroup}.wgsl, the block layout from common/q4.wgsl.

// [N·Kb] blocks of 32 nibbles.
@group(0) @binding(2) var<storage, read_write> qs: array<vec4<u32>>;
// [N·Kb] pack2x16float(d, m).
@group(0) @binding(3) var<storage, read_write> qdm: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatvecParams;

// The activations a chunk multiplies; loaded once and reused for every row an invocation owns.
alias XChunk = array<vec4<CT>, 8>;

fn chunks_per_row() -> u32 {
    return params.kb;
}

fn x_chunk(c: u32) -> XChunk {
    let j = c * 8u;
    return XChunk(x4(0u, j), x4(0u, j + 1u), x4(0u, j + 2u), x4(0u, j + 3u),
                  x4(0u, j + 4u), x4(0u, j + 5u), x4(0u, j + 6u), x4(0u, j + 7u));
}

fn chunk_dot(row: u32, c: u32, xv: XChunk) -> CT {
    let block = row * params.kb + c;
    let q = qs[block];
    let dm = q4_dm(block);
    return dot(xv[0], q4_quad(q.x, 0u, dm)) + dot(xv[1], q4_quad(q.x, 1u, dm))
         + dot(xv[2], q4_quad(q.y, 0u, dm)) + dot(xv[3], q4_quad(q.y, 1u, dm))
         + dot(xv[4], q4_quad(q.z, 0u, dm)) + dot(xv[5], q4_quad(q.z, 1u, dm))
         + dot(xv[6], q4_quad(q.w, 0u, dm)) + dot(xv[7], q4_quad(q.w, 1u, dm));
}
