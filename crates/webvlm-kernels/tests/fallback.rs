//! On a device the WGSL kernels cannot run on (burn's ndarray CPU backend), `quant_matmul`
//! multiplies by the dequantised weight with burn's own matmul: same API, same answer.
#![cfg(feature = "ndarray")]
#![allow(deprecated)] // burn marks ndarray deprecated in favour of flex; the workspace uses it.

use burn::tensor::{Device, Tensor, TensorData};
use webvlm_kernels::reference::{Lcg, abs_matmul_ref, matmul_ref};
use webvlm_kernels::{DeviceQuantMatrix, QuantMatrix, QuantScheme, quant_matmul};

#[test]
fn ndarray_falls_back_to_dequantised_matmul() {
    let device = Device::ndarray();
    for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
        for &(m, n, k) in &[(1, 37, 45), (5, 33, 64)] {
            let mut rng = Lcg::new(m as u64 * 7 + n as u64);
            let qm = QuantMatrix::quantize(&rng.normals(n * k), n, k, scheme).unwrap();
            let x = rng.normals(m * k);
            let w = DeviceQuantMatrix::upload(&qm, &device).unwrap();
            assert_eq!(w.chunk_count(), 0, "held dense, not as planes");
            let y = quant_matmul(Tensor::from_data(TensorData::new(x.clone(), [m, k]), &device), &w).unwrap();
            let got = y.into_data().try_into_vec::<f32>().unwrap();
            let (want, scale) = (matmul_ref(&x, m, &qm).unwrap(), abs_matmul_ref(&x, m, &qm).unwrap());
            for i in 0..want.len() {
                assert!((got[i] - want[i]).abs() <= 1e-5 * scale[i] + 1e-6, "{scheme:?} y[{i}]: {} vs {}", got[i], want[i]);
            }
        }
    }
}
