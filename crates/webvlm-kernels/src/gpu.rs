//! What a device holds, and a wait for its queued work that also works in browsers (where
//! nothing may block): the benchmarks' view of the device.

use burn::tensor::{Device, Int, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::cubecl::MemoryScope;
use burn_cubecl::cubecl::server::CopyDescriptor;
use burn_cubecl::kernel::into_contiguous;

use crate::device_matrix::wgpu_device;
use crate::error::{KernelError, Result};

/// GPU memory of the runtime's allocator, every pool and stream together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GpuMemory {
    /// Bytes of live buffers.
    pub in_use: u64,
    /// Bytes the allocator holds from the device (pages, padding and free space included):
    /// what the device cannot give to anyone else.
    pub reserved: u64,
}

/// The allocator's current usage; `None` off wgpu.
pub fn gpu_memory(device: &Device) -> Option<GpuMemory> {
    let usage = wgpu_device(device)?.client().memory_report(MemoryScope::Device).usage();
    Some(GpuMemory { in_use: usage.bytes_in_use, reserved: usage.bytes_reserved })
}

/// Give the device back the allocator's free pages (a dropped model's buffers stay reserved
/// for reuse until this runs), so `reserved` falls back to what live buffers need. A no-op off
/// wgpu.
pub fn release_free_memory(device: &Device) {
    if let Some(cube) = wgpu_device(device) {
        // Refused only while a stream records a graph; the next call releases those pages.
        let _ = cube.client().memory_cleanup();
    }
}

/// Whether `device` is a wgpu device (where the WGSL kernels run).
pub fn is_wgpu(device: &Device) -> bool {
    wgpu_device(device).is_some()
}

/// Resolves once every queued kernel has finished (immediately off wgpu). Timings taken
/// around it measure the GPU work, not just its submission.
pub async fn wait(device: &Device) -> Result<()> {
    match wgpu_device(device) {
        Some(cube) => {
            crate::counters::record_sync();
            cube.client().sync().await.map_err(|e| KernelError::Device(format!("{e:?}")))
        }
        None => Ok(()),
    }
}

/// A read on its way back from the device.
pub type ReadInFlight<T> = std::pin::Pin<Box<dyn Future<Output = Result<T>>>>;

/// Start reading a small u32/i32 tensor (token ids) back *now*: the copy is recorded after
/// the work queued so far and submitted before this returns; the future resolves when the
/// bytes arrive, and work queued meanwhile runs on the device while the host awaits. (burn's
/// `into_data_async` cannot do this natively: it reads lazily, blocking on first access.)
/// `None` off wgpu or for another element size.
pub fn start_read_u32(t: &Tensor<1, Int>) -> Option<ReadInFlight<Vec<u32>>> {
    let c = into_contiguous(t.clone().try_into_primitive::<CubeBackend>().ok()?);
    if c.dtype.size() != 4 {
        return None;
    }
    let desc = CopyDescriptor::new(c.handle.clone().binding(), c.meta.shape().clone(), c.meta.strides().clone(), 4);
    let client = c.client.clone();
    // Counted when the copy is recorded, as the browser's counters count it at the API.
    crate::counters::record_readback(4 * c.meta.shape().iter().product::<usize>() as u64);
    let mut read: ReadInFlight<Vec<u32>> = Box::pin(async move {
        let bytes = client.read_one_tensor_async(desc).await.map_err(|e| KernelError::Device(format!("{e:?}")))?;
        Ok(bytes.chunks_exact(4).map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]])).collect())
    });
    // The first poll runs the block up to its wait: cubecl's `read` records the copy and
    // submits the queue there.
    match read.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(done) => Some(Box::pin(std::future::ready(done))),
        std::task::Poll::Pending => Some(read),
    }
}
