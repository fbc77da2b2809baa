// Matvec entry point, subgroup variant: each subgroup takes RPI rows at a time (a multiple
// of 4, see matvec_rows.wgsl; its lanes stride over the rows' chunks), reduces with
// subgroupAdd, and moves on to the next RPI of the RPW rows of its workgroup. No shared
// memory and no barrier; correct for any subgroup size, which is only known at run time
// (4 on SwiftShader, 8 on lavapipe, 32 on NVIDIA, 64 on AMD).

const WG: u32 = {{ wg }}u;
const RPW: u32 = {{ rpw }}u;
const RPI: u32 = {{ rpi }}u;
const G: u32 = RPI / 4u;

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
        var acc: array<vec4<f32>, G>;
        for (var c = lane; c < chunks_per_row(); c += lanes) {
            let xv = x_chunk(c);
            for (var g = 0u; g < G; g++) {
                acc[g] += rows4_dot(first + r0 + 4u * g, c, xv);
            }
        }
        for (var g = 0u; g < G; g++) {
            let s = subgroupAdd(acc[g]);
            for (var r = 0u; r < 4u; r++) {
                let row = first + r0 + 4u * g + r;
                if (lane == 0u && row < params.n) {
                    store_y(params.n_offset + row, s[r]);
                }
            }
        }
    }
}
