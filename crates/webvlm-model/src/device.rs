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

/// The environment variable that caps the wgpu device's `maxStorageBufferBindingSize` and
/// `maxBufferSize` (bytes, or with a `KiB`/`MiB`/`GiB` suffix): a device as small as a phone's,
/// on which wgpu itself refuses any larger buffer or binding. Read once, when the device is
/// created.
pub const BINDING_LIMIT_ENV: &str = "WEBVLM_MAX_BINDING_BYTES";

/// Parse a byte count such as `16777216`, `16MiB` or `1 GiB`.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale).filter(|&b| b > 0)
}

/// A wgpu device on the default adapter whose binding and buffer limits are at most `cap`
/// bytes (the adapter's own when smaller), handed to burn as its device.
#[cfg(not(target_family = "wasm"))]
fn limited_wgpu(cap: u64) -> std::result::Result<(Device, burn::tensor::wgpu::WgpuSetup), String> {
    use burn::tensor::wgpu::{WgpuSetup, wgpu};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .map_err(|e| e.to_string())?;
    let mut limits = adapter.limits();
    limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(cap);
    limits.max_buffer_size = limits.max_buffer_size.min(cap);
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("webvlm (binding limit)"),
        // What burn's own device request asks for.
        required_features: adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        required_limits: limits,
        memory_hints: wgpu::MemoryHints::MemoryUsage,
        trace: wgpu::Trace::Off,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
    }))
    .map_err(|e| e.to_string())?;
    let backend = adapter.get_info().backend;
    let setup = WgpuSetup { instance, adapter, device, queue, backend };
    let device = Device::wgpu_options().tasks_max(TASKS_PER_SUBMIT).setup(setup.clone()).init().map_err(|e| e.to_string())?;
    Ok((device, setup))
}

#[cfg(not(target_family = "wasm"))]
static BINDING_LIMIT: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);

/// Cap the wgpu device's binding and buffer limits at `bytes` (see [`BINDING_LIMIT_ENV`], which
/// this overrides). Only before the device exists: afterwards it is an error.
#[cfg(not(target_family = "wasm"))]
pub fn limit_bindings(bytes: u64) -> Result<()> {
    let mut slot = BINDING_LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    if WGPU.get().is_some() && *slot != Some(bytes) {
        return Err(ModelError::InvalidRequest("the wgpu device already exists: limit its bindings before creating it".into()));
    }
    *slot = Some(bytes);
    Ok(())
}

#[cfg(not(target_family = "wasm"))]
fn init_wgpu() -> std::result::Result<(Device, AdapterSummary), String> {
    let set = *BINDING_LIMIT.lock().unwrap_or_else(|e| e.into_inner());
    let cap = match (set, std::env::var(BINDING_LIMIT_ENV)) {
        (Some(cap), _) => Some(cap),
        (None, Ok(text)) => Some(parse_bytes(&text).ok_or_else(|| format!("{BINDING_LIMIT_ENV}={text:?} is not a byte count"))?),
        (None, Err(_)) => None,
    };
    let (device, setup) = match cap {
        Some(cap) => limited_wgpu(cap)?,
        None => Device::wgpu_options().tasks_max(TASKS_PER_SUBMIT).init_with_setup().map_err(|e| e.to_string())?,
    };
    webvlm_kernels::counters::install();
    let queue = setup.queue.clone();
    webvlm_kernels::counters::set_submission_probe(Box::new(move || submission_index(&queue.submit([]))));
    let info = setup.adapter.get_info();
    // The device's limits: the adapter's, or lower under a binding cap.
    let l = setup.device.limits();
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
