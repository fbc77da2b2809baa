// A q4 table row value (layout of common/q4.wgsl, read one value at a time): d·q + m.
@group(0) @binding(2) var<storage, read_write> qs: array<u32>;
@group(0) @binding(3) var<storage, read_write> qdm: array<u32>;
@group(0) @binding(4) var<uniform> params: GatherParams;

fn table_value(row: u32, c: u32) -> f32 {
    let block = row * params.kb + c / 32u;
    let j = c % 32u;
    let q = (qs[block * 4u + j / 8u] >> (4u * (j % 8u))) & 0xFu;
    let dm = unpack2x16float(qdm[block]);
    return dm.x * f32(q) + dm.y;
}
