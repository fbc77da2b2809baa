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

/// Kernel launches CubeCL records into one command buffer before it submits (its default is
/// 32). A decoded token must be one submission (each costs a driver round trip, and on a
/// phone several), so the whole token step fits; vision and prefill also submit less often.
/// Kept well below the thousands, so one command buffer never holds seconds of work that a
/// GPU watchdog could take for a hang.
pub const TASKS_PER_SUBMIT: usize = 512;

/// The number inside wgpu's opaque `SubmissionIndex` (it increases by one per
/// `Queue::submit`); read from its `Debug` form, the only public view of it.
#[cfg(not(target_family = "wasm"))]
fn submission_index(index: &impl std::fmt::Debug) -> Option<u64> {
    let text = format!("{index:?}");
    let digits: String = text.chars().skip_while(|c| !c.is_ascii_digit()).take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(not(target_family = "wasm"))]
static WGPU: std::sync::OnceLock<std::result::Result<(Device, AdapterSummary), String>> = std::sync::OnceLock::new();

#[cfg(not(target_family = "wasm"))]
fn init_wgpu() -> std::result::Result<(Device, AdapterSummary), String> {
    let (device, setup) = Device::wgpu_options().tasks_max(TASKS_PER_SUBMIT).init_with_setup().map_err(|e| e.to_string())?;
    webvlm_kernels::counters::install();
    let queue = setup.queue.clone();
    webvlm_kernels::counters::set_submission_probe(Box::new(move || submission_index(&queue.submit([]))));
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
    webvlm_kernels::counters::record_readback(data.bytes().len() as u64);
    data.try_into_vec::<f32>().map_err(|e| ModelError::Device(format!("{e:?}")))
}

/// Read a tensor back to the host without blocking (required in browsers).
pub async fn read_f32_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| ModelError::Device(format!("{e:?}")))?;
    webvlm_kernels::counters::record_readback(data.bytes().len() as u64);
    data.try_into_vec::<f32>().map_err(|e| ModelError::Device(format!("{e:?}")))
}

/// Read token ids (an integer tensor of u32 values) back without blocking.
pub async fn read_ids_async<const D: usize>(t: Tensor<D, burn::tensor::Int>) -> Result<Vec<u32>> {
    let data = t.into_data_async().await.map_err(|e| ModelError::Device(format!("{e:?}")))?;
    webvlm_kernels::counters::record_readback(data.bytes().len() as u64);
    data.try_into_vec_as::<u32>().map_err(|e| ModelError::Device(format!("{e:?}")))
}

type IdRead = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u32>>>>>;

thread_local! {
    /// Reads dropped before they completed (an aborted generation, a step discarded after a
    /// stop token). They stay alive until their copy has landed: CubeCL hands a read's staging
    /// buffer back to its pool when the read is dropped, and one still waiting for its map
    /// would then be reused mid-map — an invalid copy that poisons the device.
    static ORPHANS: std::cell::RefCell<Vec<IdRead>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Poll the orphaned reads once and let go of those that have finished.
fn reap_orphans() {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    ORPHANS.with(|o| o.borrow_mut().retain_mut(|read| read.as_mut().poll(&mut cx).is_pending()));
}

/// A read of token ids already on its way back: the copy is queued and submitted when the
/// read starts, so work recorded after it runs on the device while the host awaits the ids.
/// Dropping it unfinished is safe (it is kept until its copy has landed).
pub struct IdsInFlight {
    read: Option<IdRead>,
}

impl IdsInFlight {
    /// Start reading `t` now (on wgpu the copy is submitted before this returns; elsewhere
    /// the read runs when awaited).
    pub fn start(t: Tensor<1, burn::tensor::Int>) -> Self {
        reap_orphans();
        let read: IdRead = match webvlm_kernels::gpu::start_read_u32(&t) {
            Some(read) => Box::pin(async move { read.await.map_err(|e| ModelError::Device(e.to_string())) }),
            None => Box::pin(read_ids_async(t)),
        };
        Self { read: Some(read) }
    }

    /// The ids, once the device has produced and copied them.
    pub async fn wait(mut self) -> Result<Vec<u32>> {
        match self.read.take() {
            Some(read) => read.await,
            None => Err(ModelError::Device("an id read was awaited twice".into())),
        }
    }
}

impl Drop for IdsInFlight {
    fn drop(&mut self) {
        if let Some(read) = self.read.take() {
            ORPHANS.with(|o| o.borrow_mut().push(read));
            reap_orphans();
        }
    }
}

/// Resolves once the device has finished the work queued so far (at once off wgpu).
pub async fn wait(device: &burn::tensor::Device) -> Result<()> {
    webvlm_kernels::gpu::wait(device).await.map_err(|e| ModelError::Device(e.to_string()))
}
