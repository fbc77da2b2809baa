{{ enables }}
// q8 matrix-matrix product for prefill and the vision tower (M > 1): y = x·Wᵀ.
// The tiling lives in common/matmul_tiled.wgsl; this file supplies `w4`, the dequantiser
// that fills the shared weight tile, so each weight is dequantised once per tile.

// [N·Kb·8] words of four i8 weights.
@group(0) @binding(2) var<storage, read_write> qs: array<u32>;
// [ceil(N·Kb / 2)] f16 scales, two per word.
@group(0) @binding(3) var<storage, read_write> qd: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatmulParams;

// Weights 4·j .. 4·j+3 of block b of row n.
fn w4(n: u32, b: u32, j: u32) -> vec4<CT> {
    let block = n * params.kb + b;
    return q8_word(qs[block * 8u + j], q8_scale(block));
}
