// f16 layout (shaders/README.md): two f16 per word, rows of k2 = ceil(K / 2) words.

// Weights 2·i, 2·i+1 of the row starting at word `row_base`; zero past the row's end (the
// next row's words, or past the buffer for the last row).
fn f16_pair(row_base: u32, i: u32) -> vec2<CT> {
    if (i < params.k2) {
        return vec2<CT>(unpack2x16float(w[row_base + i]));
    }
    return vec2<CT>(0.0);
}
