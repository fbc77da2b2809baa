{{ enables }}
// q4 matrix-matrix product for prefill and the vision tower (M > 1): y = x·Wᵀ.
// The tiling lives in common/matmul_tiled.wgsl; this file supplies `w4`.

// [N·Kb·4] words of eight nibbles.
@group(0) @binding(2) var<storage, read_write> qs: array<u32>;
// [N·Kb] pack2x16float(d, m).
@group(0) @binding(3) var<storage, read_write> qdm: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatmulParams;

// Weights 4·j .. 4·j+3 of block b of row n: half of qs word j / 2.
fn w4(n: u32, b: u32, j: u32) -> vec4<CT> {
    let block = n * params.kb + b;
    return q4_quad(qs[block * 4u + j / 2u], j & 1u, q4_dm(block));
}
