// q8 block layout (shaders/README.md): `qs` holds four little-endian i8 weights per word,
// `qd` one f16 scale per block of 32, two per word.

fn q8_scale(block: u32) -> CT {
    return CT(unpack2x16float(qd[block / 2u])[block & 1u]);
}

// The four weights of one qs word, times the block scale.
fn q8_word(w: u32, d: CT) -> vec4<CT> {
    // Move each byte to the top, then shift right arithmetically: sign extension of all
    // four lanes at once, no branches.
    let q = (vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
    return vec4<CT>(q) * d;
}
