// A bf16 table row value: two bf16 per word, the lower index in the low half, rows of k2
// words. A bf16 is the top half of an f32, so widening it is a shift and is exact (the
// checkpoints' own embeddings are bf16 more often than not).
@group(0) @binding(2) var<storage, read_write> w: array<u32>;
@group(0) @binding(3) var<uniform> params: GatherParams;

fn table_value(row: u32, c: u32) -> f32 {
    let word = w[row * params.k2 + c / 2u];
    return bitcast<f32>(select(word << 16u, word & 0xFFFF0000u, (c & 1u) == 1u));
}
