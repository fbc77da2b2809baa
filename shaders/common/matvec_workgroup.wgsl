// Matvec entry point, shared-memory variant (works everywhere). An invocation owns RPI rows
// (a multiple of 4, see matvec_rows.wgsl) and TPR invocations share them, striding over the
// rows' chunks; RPW = (WG / TPR)·RPI rows per workgroup. The partial sums of the TPR lanes
// meet in shared memory behind one barrier; with TPR = 1 an invocation owns whole rows and
// there is no barrier at all.

const WG: u32 = {{ wg }}u;
const TPR: u32 = {{ tpr }}u;
const RPI: u32 = {{ rpi }}u;
const G: u32 = RPI / 4u;
const RPW: u32 = WG / TPR * RPI;

var<workgroup> partial: array<vec4<f32>, WG * G>;

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    // 2D dispatches lift the 65535-workgroups-per-dimension limit (large vocabularies).
    let row0 = (wid.x + wid.y * nwg.x) * RPW + li / TPR * RPI;
    let lane = li % TPR;
    var acc: array<vec4<f32>, G>;
    for (var c = lane; c < chunks_per_row(); c += TPR) {
        let xv = x_chunk(c);
        for (var g = 0u; g < G; g++) {
            acc[g] += rows4_dot(row0 + 4u * g, c, xv);
        }
    }
    if (TPR > 1u) {
        for (var g = 0u; g < G; g++) {
            partial[g * WG + li] = acc[g];
        }
        workgroupBarrier();
        if (lane != 0u) {
            return;
        }
        for (var g = 0u; g < G; g++) {
            var s = vec4<f32>(0.0);
            for (var i = 0u; i < TPR; i++) {
                s += partial[g * WG + li + i];
            }
            acc[g] = s;
        }
    }
    for (var g = 0u; g < G; g++) {
        for (var r = 0u; r < 4u; r++) {
            let row = row0 + 4u * g + r;
            if (row < params.n) {
                store_y(params.n_offset + row, acc[g][r]);
            }
        }
    }
}
