// Shared by the matvec and matmul families: the compute type, the activation and output
// bindings, and the uniform structs (mirrored by `MatvecParams` / `MatmulParams` in
// crates/webvlm-kernels/src/params.rs). Only the struct a family binds as `params` is used.

// f32 by default; f16 where the adapter offers shader-f16 and the caller asked for it.
alias CT = {{ ct }};

struct MatvecParams {
    n: u32,         // weight rows in this chunk
    k4: u32,        // activation row length in vec4s: 8·kb (x is zero-padded to whole blocks)
    kb: u32,        // blocks of 32 per weight row
    k2: u32,        // words per f16 weight row: ceil(K / 2)
    n_offset: u32,  // first output column this chunk writes
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

struct MatmulParams {
    m: u32,         // activation rows
    n: u32,         // weight rows in this chunk
    k4: u32,
    kb: u32,
    k2: u32,
    n_offset: u32,
    ld_y: u32,      // output row stride: N of the whole matrix
    _pad0: u32,
}

// [M, k4] activations.
@group(0) @binding(0) var<storage, read_write> x: array<vec4<f32>>;
// [M, N] outputs.
@group(0) @binding(1) var<storage, read_write> y: array<f32>;

// Activations 4·j .. 4·j+3 of the row starting at vec4 `base`. The launcher zero-pads x to
// whole blocks (k4 = 8·Kb), so no read needs a bounds test: the padding columns of a q4
// block dequantise to m, not 0, and meet a zero activation there. (A per-load test cost 40%
// of the matvec time on lavapipe.)
//
// A matvec may transform its activations as it loads them (the prologue): SwiGLU reads the
// gate at j and the up projection k4 vec4s later, `silu(g)·u` (swiglu.wgsl's arithmetic), so
// the down projection consumes the [gate | up] row of a joined gate/up product directly.
fn x4(base: u32, j: u32) -> vec4<CT> {
    {{ x_load }}
}

// Where a matvec's output goes (the epilogue): y[i] = v, plus the addends' i-th values in
// order (a bias, a residual), bound after the weight planes.
{{ addend_bindings }}
fn store_y(i: u32, v: f32) {
    {{ store }}
}
