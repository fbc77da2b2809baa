// Matvec entry point, shared-memory variant (works everywhere). An invocation owns RPI rows
// and TPR invocations share them, striding over the rows' chunks: each chunk of activations
// is loaded once per invocation and used for RPI rows. RPW = (WG / TPR)·RPI rows per
// workgroup. The partial sums of the TPR lanes meet in shared memory behind one barrier;
// with TPR = 1 an invocation owns whole rows and there is no barrier at all.

const WG: u32 = {{ wg }}u;
const TPR: u32 = {{ tpr }}u;
const RPI: u32 = {{ rpi }}u;
const RPW: u32 = WG / TPR * RPI;

var<workgroup> partial: array<f32, WG * RPI>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    // 2D dispatches lift the 65535-workgroups-per-dimension limit (large vocabularies).
    let row0 = (wid.x + wid.y * nwg.x) * RPW + li / TPR * RPI;
    let lane = li % TPR;
    var acc: array<f32, RPI>;
    // Invocations past the last row recompute it instead of branching around the loop, so
    // that with TPR = 1 every invocation walks the same chunk indices in lockstep (lavapipe
    // then shares the activation loads across a SIMD batch), and don't store.
    for (var c = lane; c < chunks_per_row(); c += TPR) {
        let xv = x_chunk(c);
        for (var r = 0u; r < RPI; r++) {
            acc[r] += f32(chunk_dot(min(row0 + r, params.n - 1u), c, xv));
        }
    }
    if (TPR == 1u) {
        for (var r = 0u; r < RPI; r++) {
            if (row0 + r < params.n) {
                y[params.n_offset + row0 + r] = acc[r];
            }
        }
        return;
    }
    for (var r = 0u; r < RPI; r++) {
        partial[r * WG + li] = acc[r];
    }
    workgroupBarrier();
    if (lane == 0u) {
        for (var r = 0u; r < RPI; r++) {
            var s = 0.0;
            for (var i = 0u; i < TPR; i++) {
                s += partial[r * WG + li + i];
            }
            if (row0 + r < params.n) {
                y[params.n_offset + row0 + r] = s;
            }
        }
    }
}
