{{ enables }}
// Rows of a lookup table (the token embedding) by id, dequantised to f32: y[r, c] =
// table[ids[r], c]. The table stays on the device in its compact form (q8, q4, f16 or bf16
// words; common/table_*.wgsl read one value), so a 151 936 × 1 536 embedding costs its quantised
// or 16-bit size in GPU memory instead of 933 MB of f32, while a token still reads one row.
// A table larger than one binding is cut into row chunks, one launch each: a launch writes
// only the rows whose id falls in its chunk, and the last chunk zeroes rows of ids past the
// table (ids picked on the device are never past it; the zero keeps memory defined).

struct GatherParams {
    count: u32,     // ids: rows of y
    k: u32,         // values per row
    kb: u32,        // blocks of 32 per row (q8, q4)
    k2: u32,        // words per row (f16, bf16): ceil(k / 2)
    n_offset: u32,  // first table row this chunk holds
    n: u32,         // rows in this chunk
    last: u32,      // 1 for the chunk that ends the table
    _pad: u32,
}

// [count] token ids (burn's i32 index type; ids are < 2³¹).
@group(0) @binding(0) var<storage, read_write> ids: array<u32>;
// [count, k] f32 rows.
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
// The table's planes and `params`: common/table_{q8,q4,f16,bf16}.wgsl.

const WG: u32 = {{ wg }}u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wid.x + wid.y * nwg.x) * WG + li;
    if (i >= params.count * params.k) {
        return;
    }
    let r = i / params.k;
    let c = i - r * params.k;
    let id = ids[r];
    if (id >= params.n_offset && id - params.n_offset < params.n) {
        y[i] = table_value(id - params.n_offset, c);
    } else if (params.last == 1u && id >= params.n_offset + params.n) {
        y[i] = 0.0;
    }
}
