//! Shared test fixtures: one wgpu device per test process, read-back helpers.
#![allow(dead_code)]

use std::sync::OnceLock;

use burn::tensor::{Device, Tensor, TensorData};

/// The wgpu device (lavapipe here) and whether its adapter offers subgroups and shader-f16.
pub struct Gpu {
    pub device: Device,
    pub subgroups: bool,
    pub shader_f16: bool,
}

/// burn's wgpu runtime can be initialised once per process; every test shares this one.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let (device, setup) = Device::wgpu_options().init_with_setup().expect("a wgpu adapter (lavapipe is enough)");
        let f = setup.device.features();
        Gpu {
            device,
            subgroups: f.contains(burn::backend::wgpu::wgpu::Features::SUBGROUP),
            shader_f16: f.contains(burn::backend::wgpu::wgpu::Features::SHADER_F16),
        }
    })
}

pub fn tensor(data: Vec<f32>, m: usize, k: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, [m, k]), device)
}

pub fn read(t: Tensor<2>) -> Vec<f32> {
    t.try_into_data().expect("readback").try_into_vec::<f32>().expect("f32 data")
}
