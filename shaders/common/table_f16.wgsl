// An f16 table row value: two f16 per word, rows of k2 words (common/f16.wgsl's layout).
@group(0) @binding(2) var<storage, read_write> w: array<u32>;
@group(0) @binding(3) var<uniform> params: GatherParams;

fn table_value(row: u32, c: u32) -> f32 {
    return unpack2x16float(w[row * params.k2 + c / 2u])[c & 1u];
}
