// Matvec entry point, subgroup variant: each subgroup takes one row at a time (its lanes
// stride over the row), reduces with subgroupAdd, and moves on to the next of the RPW rows
// of its workgroup. No shared memory and no barrier; correct for any subgroup size, which
// is only known at run time (4 on SwiftShader, 8 on lavapipe, 32 on NVIDIA, 64 on AMD).

const WG: u32 = {{ wg }}u;
const RPW: u32 = {{ rpw }}u;

@compute @workgroup_size(WG)
fn main(
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) lanes: u32,
    @builtin(subgroup_id) sg: u32,
    @builtin(num_subgroups) nsg: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    let first = (wid.x + wid.y * nwg.x) * RPW;
    for (var r = sg; r < RPW; r += nsg) {
        let row = first + r;
        var acc = 0.0;
        if (row < params.n) {
            acc = row_dot(row, lane, lanes);
        }
        let s = subgroupAdd(acc);
        if (lane == 0u && row < params.n) {
            y[params.n_offset + row] = s;
        }
    }
}
