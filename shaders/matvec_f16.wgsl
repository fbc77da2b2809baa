{{ enables }}
// f16-weight matrix-vector product for decode (M = 1), the unquantised comparison point.
// Rows start at any word (ceil(K / 2) may be odd), so a chunk, the unit of one lane's work,
// is 8 weights read as four scalar words.

// [N·ceil(K / 2)] two f16 per word.
@group(0) @binding(2) var<storage, read_write> w: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatvecParams;

// The activations a chunk multiplies; loaded once and reused for every row an invocation owns.
alias XChunk = array<vec4<CT>, 2>;

fn chunks_per_row() -> u32 {
    return (params.k2 + 3u) / 4u;
}

fn x_chunk(c: u32) -> XChunk {
    return XChunk(x4(0u, c * 2u), x4(0u, c * 2u + 1u));
}

fn chunk_dot(row: u32, c: u32, xv: XChunk) -> CT {
    let base = row * params.k2;
    let i = c * 4u;
    return dot(xv[0], vec4<CT>(f16_pair(base, i), f16_pair(base, i + 1u)))
         + dot(xv[1], vec4<CT>(f16_pair(base, i + 2u), f16_pair(base, i + 3u)));
}
