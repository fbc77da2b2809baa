// q4 block layout (shaders/README.md): `qs` holds eight unsigned nibbles per word, lowest
// first; `qdm` one pack2x16float(d, m) per block of 32. Value = d·q + m.

fn q4_dm(block: u32) -> vec2<CT> {
    return vec2<CT>(unpack2x16float(qdm[block]));
}

// Weights 4·h .. 4·h+3 of one qs word (h = 0: bits 0..15, h = 1: bits 16..31), dequantised.
fn q4_quad(w: u32, h: u32, dm: vec2<CT>) -> vec4<CT> {
    let q = (vec4<u32>(w >> (16u * h)) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0xFu);
    return vec4<CT>(q) * dm.x + dm.y;
}
