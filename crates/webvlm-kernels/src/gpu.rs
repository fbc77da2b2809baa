//! What a device holds, and a wait for its queued work that also works in browsers (where
//! nothing may block): the benchmarks' view of the device.

use burn::tensor::Device;
use burn_cubecl::cubecl::MemoryScope;

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
