// Matmul entry point: a workgroup computes a TM×TN tile of y, each invocation RM×RN of it.
// Its epilogue (`store_mn`) may add a bias per column, apply an activation (common/act.wgsl)
// and add a residual per element, bound after the weight planes: a vision block's projections
// then need no separate bias, activation or residual kernels.
// Per step of 32 along K, the workgroup stages one block of x (TM rows) and one block of W
// (TN rows, dequantised by the family's `w4`) in shared memory, so every weight is read
// and dequantised once per tile instead of once per output row.

const TM: u32 = {{ tm }}u;
const TN: u32 = {{ tn }}u;
const RM: u32 = {{ rm }}u;
const RN: u32 = {{ rn }}u;
const TX: u32 = TN / RN;
const WG: u32 = (TM / RM) * (TN / RN);

// 32 columns = 8 vec4s per row.
var<workgroup> xs: array<vec4<CT>, TM * 8u>;
var<workgroup> ws: array<vec4<CT>, TN * 8u>;

{{ epilogue_bindings }}
// Output (row m, column c of the whole matrix) = v, through the epilogue.
fn store_mn(m: u32, c: u32, v: f32) {
    let i = m * params.ld_y + c;
    {{ epilogue }}
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let tx = li % TX;
    let ty = li / TX;
    let n0 = wid.x * TN;
    let m0 = wid.y * TM;
    {{ acc_decl }}
    for (var b = 0u; b < params.kb; b++) {
        for (var i = li; i < TM * 8u; i += WG) {
            let m = m0 + i / 8u;
            var v = vec4<CT>(0.0);
            if (m < params.m) {
                v = x4(m * params.k4, b * 8u + i % 8u);
            }
            xs[i] = v;
        }
        for (var i = li; i < TN * 8u; i += WG) {
            let n = n0 + i / 8u;
            var v = vec4<CT>(0.0);
            if (n < params.n) {
                v = w4(n, b, i % 8u);
            }
            ws[i] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 8u; kk++) {
            // Written out for every (i, j) by the template (`acc_i_j`, `a_i`, `w_j`): a loop
            // over a private array indexes memory lane by lane on a CPU adapter, where
            // separate variables stay in SIMD registers (3× on lavapipe). Columns tx, tx + TX,
            // ...: neighbouring invocations read neighbouring rows of the weight tile and
            // write neighbouring outputs.
            {{ inner }}
        }
        workgroupBarrier();
    }
    {{ store_all }}
}
