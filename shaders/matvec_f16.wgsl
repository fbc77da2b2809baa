{{ enables }}
// f16-weight matrix-vector product for decode (M = 1), the unquantised comparison point.
// Rows start at any word (k2 may be odd), so the weights are read as scalar words, four
// consecutive words (8 weights) per lane and step.

// [N·ceil(K / 2)] two f16 per word.
@group(0) @binding(2) var<storage, read_write> w: array<u32>;
@group(0) @binding(3) var<uniform> params: MatvecParams;

fn row_dot(row: u32, lane: u32, lanes: u32) -> f32 {
    let base = row * params.k2;
    let chunks = (params.k2 + 3u) / 4u;
    var acc = 0.0;
    for (var c = lane; c < chunks; c += lanes) {
        let i = c * 4u;
        let j = c * 2u;
        let s = dot(x4(0u, j), vec4<CT>(f16_pair(base, i), f16_pair(base, i + 1u)))
              + dot(x4(0u, j + 1u), vec4<CT>(f16_pair(base, i + 2u), f16_pair(base, i + 3u)));
        acc += f32(s);
    }
    return acc;
}
