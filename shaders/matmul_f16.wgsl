{{ enables }}
// f16-weight matrix-matrix product (M > 1), the unquantised comparison point.
// The tiling lives in common/matmul_tiled.wgsl; this file supplies `w4`.

// [N·ceil(K / 2)] two f16 per word.
@group(0) @binding(2) var<storage, read_write> w: array<u32>;
@group(0) @binding({{ params_binding }}) var<uniform> params: MatmulParams;

// Weights 32·b + 4·j .. +3 of row n (the f16 layout has no blocks; the tiling steps by 32).
fn w4(n: u32, b: u32, j: u32) -> vec4<CT> {
    let i = b * 16u + j * 2u;
    let base = n * params.k2;
    return vec4<CT>(f16_pair(base, i), f16_pair(base, i + 1u));
}
