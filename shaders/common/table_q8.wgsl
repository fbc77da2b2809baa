// A q8 table row value (layout of common/q8.wgsl, read one value at a time): d·q.
@group(0) @binding(2) var<storage, read_write> qs: array<u32>;
@group(0) @binding(3) var<storage, read_write> qd: array<u32>;
@group(0) @binding(4) var<uniform> params: GatherParams;

fn table_value(row: u32, c: u32) -> f32 {
    let block = row * params.kb + c / 32u;
    let j = c % 32u;
    // The byte to the top, then an arithmetic shift down: its sign extended.
    let q = (bitcast<i32>(qs[block * 8u + j / 4u]) << (24u - 8u * (j % 4u))) >> 24u;
    let d = unpack2x16float(qd[block / 2u])[block & 1u];
    return d * f32(q);
}
