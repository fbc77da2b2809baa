{{ enables }}
// q8 matrix-vector product for decode (M = 1): y[n] = Σ_k x[k]·W[n, k].
// Every weight is read exactly once, 16 bytes at a time. A chunk, the unit of one lane's
// work, is half a block: 16 weights in one vec4<u32>. The entry point and the reduction come
// from common/matvec_{workgroup,subgroup}.wgsl, the block layout from common/q8.wgsl.

// [N·Kb·2] half-blocks of 16 i8 weights.
@group(0) @binding(2) var<storage, read_write> qs: array<vec4<u32>>;
// [ceil(N·Kb / 2)] f16 scales, two per word.
@group(0) @binding(3) var<storage, read_write> qd: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatvecParams;

// The activations a chunk multiplies; loaded once and reused for every row an invocation owns.
alias XChunk = array<vec4<CT>, 4>;

fn chunks_per_row() -> u32 {
    return params.kb * 2u;
}

fn x_chunk(c: u32) -> XChunk {
    let j = c * 4u;
    return XChunk(x4(0u, j), x4(0u, j + 1u), x4(0u, j + 2u), x4(0u, j + 3u));
}

fn chunk_dot(row: u32, c: u32, xv: XChunk) -> CT {
    let q = qs[row * params.kb * 2u + c];
    let d = q8_scale(row * params.kb + c / 2u);
    return dot(xv[0], q8_word(q.x, d)) + dot(xv[1], q8_word(q.y, d))
         + dot(xv[2], q8_word(q.z, d)) + dot(xv[3], q8_word(q.w, d));
}
