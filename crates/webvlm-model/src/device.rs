//! Choosing and creating the compute device.

#[cfg(not(target_family = "wasm"))]
use burn::tensor::Device;
use burn::tensor::Tensor;

use crate::error::{ModelError, Result};

/// Which backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// wgpu: Vulkan / Metal / DX12 natively, WebGPU in browsers.
    Wgpu,
    /// burn's ndarray CPU backend (reference; slow).
    #[cfg(feature = "ndarray")]
    Cpu,
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "wgpu" | "gpu" => Ok(Backend::Wgpu),
            #[cfg(feature = "ndarray")]
            "cpu" | "ndarray" => Ok(Backend::Cpu),
            other => Err(format!("unknown device `{other}` (wgpu, cpu)")),
        }
    }
}

/// Create the device natively. The wgpu runtime is initialised once per process; later calls
/// reuse it. Autotune is compiled out (see the workspace Cargo.toml).
#[cfg(not(target_family = "wasm"))]
pub fn create_device(backend: Backend) -> Result<Device> {
    use std::sync::OnceLock;
    static WGPU: OnceLock<std::result::Result<Device, String>> = OnceLock::new();
    match backend {
        Backend::Wgpu => WGPU
            .get_or_init(|| Device::wgpu_options().init().map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| ModelError::Device(format!("no usable wgpu adapter: {e}"))),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        Backend::Cpu => Ok(Device::ndarray()),
    }
}

/// Read a tensor back to the host. Native code may block; the browser must use
/// [`read_f32_async`].
#[cfg(not(target_family = "wasm"))]
pub fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.try_into_data().map_err(|e| ModelError::Device(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| ModelError::Device(format!("{e:?}")))
}

/// Read a tensor back to the host without blocking (required in browsers).
pub async fn read_f32_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| ModelError::Device(format!("{e:?}")))?;
    data.try_into_vec::<f32>().map_err(|e| ModelError::Device(format!("{e:?}")))
}
