// Shared by both matvec entry points: the dot products of one chunk of activations with the
// same chunk of four consecutive rows. The activations are loaded once for the four rows; on
// a CPU implementation (lavapipe) an activation load costs as much as a weight load, and
// sharing them across rows made the matvec 2.5–4× faster there. Rows past the last are
// clamped to it (recomputed, never stored), so no invocation branches around the loop.

fn rows4_dot(row: u32, c: u32, xv: XChunk) -> vec4<f32> {
    let last = params.n - 1u;
    return vec4<f32>(
        f32(chunk_dot(min(row, last), c, xv)),
        f32(chunk_dot(min(row + 1u, last), c, xv)),
        f32(chunk_dot(min(row + 2u, last), c, xv)),
        f32(chunk_dot(min(row + 3u, last), c, xv)),
    );
}
