// Matvec entry point, shared-memory variant (works everywhere): TPR lanes share a row and
// RPW = WG / TPR rows share a workgroup. The lanes' partial sums meet in shared memory
// behind one barrier; with TPR = 1 an invocation owns a whole row and there is no barrier.

const WG: u32 = {{ wg }}u;
const TPR: u32 = {{ tpr }}u;
const RPW: u32 = WG / TPR;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    // 2D dispatches lift the 65535-workgroups-per-dimension limit (large vocabularies).
    let row = (wid.x + wid.y * nwg.x) * RPW + li / TPR;
    let lane = li % TPR;
    var acc = 0.0;
    if (row < params.n) {
        acc = row_dot(row, lane, TPR);
    }
    if (TPR == 1u) {
        if (row < params.n) {
            y[params.n_offset + row] = acc;
        }
        return;
    }
    partial[li] = acc;
    workgroupBarrier();
    if (lane == 0u && row < params.n) {
        var s = 0.0;
        for (var i = 0u; i < TPR; i++) {
            s += partial[li + i];
        }
        y[params.n_offset + row] = s;
    }
}
