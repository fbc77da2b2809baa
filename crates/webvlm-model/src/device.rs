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

/// What the adapter is, in WebGPU's terms where there are some (feature names such as
/// `shader-f16`), for benchmark reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdapterSummary {
    /// `vulkan`, `metal`, `dx12`, `gl`, `webgpu` or `cpu`.
    pub backend: String,
    pub vendor: String,
    pub architecture: String,
    pub description: String,
    pub features: Vec<String>,
    pub limits: std::collections::BTreeMap<String, f64>,
}

#[cfg(not(target_family = "wasm"))]
static WGPU: std::sync::OnceLock<std::result::Result<(Device, AdapterSummary), String>> = std::sync::OnceLock::new();

#[cfg(not(target_family = "wasm"))]
fn init_wgpu() -> std::result::Result<(Device, AdapterSummary), String> {
    let (device, setup) = Device::wgpu_options().init_with_setup().map_err(|e| e.to_string())?;
    let info = setup.adapter.get_info();
    let l = setup.adapter.limits();
    let limits = [
        ("maxBufferSize", l.max_buffer_size as f64),
        ("maxStorageBufferBindingSize", l.max_storage_buffer_binding_size as f64),
        ("maxStorageBuffersPerShaderStage", l.max_storage_buffers_per_shader_stage as f64),
        ("maxComputeWorkgroupStorageSize", l.max_compute_workgroup_storage_size as f64),
        ("maxComputeInvocationsPerWorkgroup", l.max_compute_invocations_per_workgroup as f64),
        ("maxComputeWorkgroupSizeX", l.max_compute_workgroup_size_x as f64),
        ("maxComputeWorkgroupsPerDimension", l.max_compute_workgroups_per_dimension as f64),
    ];
    let summary = AdapterSummary {
        backend: format!("{:?}", info.backend).to_lowercase(),
        vendor: format!("0x{:04x}", info.vendor),
        architecture: format!("{:?}", info.device_type).to_lowercase(),
        description: [info.name.as_str(), info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" / "),
        // WebGPU's own names only (`wgpu-…` are native extensions), as a browser reports them.
        features: setup.adapter.features().iter().filter_map(|f| f.as_str()).filter(|f| !f.starts_with("wgpu-")).map(str::to_string).collect(),
        limits: limits.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    };
    Ok((device, summary))
}

/// The wgpu adapter the process runs on (initialising it if needed); `None` without one.
#[cfg(not(target_family = "wasm"))]
pub fn adapter_summary() -> Option<AdapterSummary> {
    WGPU.get_or_init(init_wgpu).as_ref().ok().map(|(_, s)| s.clone())
}

/// Create the device natively. The wgpu runtime is initialised once per process; later calls
/// reuse it. Autotune is compiled out (see the workspace Cargo.toml).
#[cfg(not(target_family = "wasm"))]
pub fn create_device(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Wgpu => WGPU
            .get_or_init(init_wgpu)
            .clone()
            .map(|(d, _)| d)
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

/// Resolves once the device has finished the work queued so far (at once off wgpu).
pub async fn wait(device: &burn::tensor::Device) -> Result<()> {
    webvlm_kernels::gpu::wait(device).await.map_err(|e| ModelError::Device(e.to_string()))
}
