// Matvec entry point, subgroup variant: each subgroup takes RPI rows at a time (its lanes
// stride over the rows' chunks, each chunk of activations loaded once for the RPI rows),
// reduces with subgroupAdd, and moves on to the next RPI of the RPW rows of its workgroup.
// No shared memory and no barrier; correct for any subgroup size, which is only known at
// run time (4 on SwiftShader, 8 on lavapipe, 32 on NVIDIA, 64 on AMD).

const WG: u32 = {{ wg }}u;
const RPW: u32 = {{ rpw }}u;
const RPI: u32 = {{ rpi }}u;

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
    for (var r0 = sg * RPI; r0 < RPW; r0 += nsg * RPI) {
        var acc: array<f32, RPI>;
        for (var c = lane; c < chunks_per_row(); c += lanes) {
            let xv = x_chunk(c);
            for (var r = 0u; r < RPI; r++) {
                acc[r] += f32(chunk_dot(min(first + r0 + r, params.n - 1u), c, xv));
            }
        }
        for (var r = 0u; r < RPI; r++) {
            let s = subgroupAdd(acc[r]);
            let row = first + r0 + r;
            if (lane == 0u && row < params.n) {
                y[params.n_offset + row] = s;
            }
        }
    }
}
