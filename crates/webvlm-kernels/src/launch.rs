//! Typed launchers, one per entry point. Each takes CubeCL tensors that already live on burn's
//! wgpu device, queues one dispatch on burn's own stream through
//! `burn_cubecl::template::SourceKernel`, and returns without waiting: the results stay on
//! the GPU until somebody reads them.

use burn::tensor::DType;
use burn_cubecl::cubecl::ir::attributes::BufferIOAttr;
use burn_cubecl::cubecl::server::{KernelArguments, MetadataBindingInfo};
use burn_cubecl::cubecl::{CubeCount, CubeDim};
use burn_cubecl::template::SourceKernel;
use burn_cubecl::tensor::CubeTensor;

use crate::error::{KernelError, Result};
use crate::params::{CopyParams, MatmulParams, MatvecParams, info_words};
use crate::quant::{BLOCK, QuantScheme};
use crate::shaders::Kernel;
use crate::variants::DeviceCaps;

/// A dispatch of `count` workgroups, folded into two dimensions when one is not enough.
/// The kernels recover the linear index as `x + y·num_workgroups.x` and bound-check it.
pub(crate) fn linear_count(count: u64, caps: &DeviceCaps, what: &'static str) -> Result<CubeCount> {
    let max = u64::from(caps.max_workgroups.max(1));
    let x = count.clamp(1, max);
    let y = count.div_ceil(x).max(1);
    if y > max {
        return Err(KernelError::TooManyWorkgroups { what, count, limit: caps.max_workgroups });
    }
    Ok(CubeCount::Static(x as u32, y as u32, 1))
}

fn check_feature(kernel: &Kernel, caps: &DeviceCaps) -> Result<()> {
    if kernel.needs_f16() && !caps.shader_f16 {
        return Err(KernelError::MissingFeature("shader-f16"));
    }
    Ok(())
}

pub(crate) fn launch(kernel: Kernel, client: &burn_cubecl::cubecl::client::Client, count: CubeCount, inputs: &[&CubeTensor], output: &CubeTensor, info: Vec<u64>) {
    let mut args = KernelArguments::new();
    // Order matters: the WGSL binds x (0), y (1), then the weight planes; the info uniform is
    // appended after the buffers by the runtime.
    let (x, planes) = inputs.split_first().map_or((None, &[][..]), |(x, p)| (Some(*x), p));
    if let Some(x) = x {
        args = args.with_buffer_io(x.handle.clone().binding(), BufferIOAttr::ReadOnly);
    }
    args = args.with_buffer_io(output.handle.clone().binding(), BufferIOAttr::WriteOnly);
    for p in planes {
        args = args.with_buffer_io(p.handle.clone().binding(), BufferIOAttr::ReadOnly);
    }
    args = args.with_info(MetadataBindingInfo::custom(info));
    let cube_dim = CubeDim::new_1d(kernel.workgroup_size());
    client.launch(Box::new(SourceKernel::new(kernel, cube_dim)), count, args);
}

/// How a kernel uses one of its buffers (CubeCL tracks failures by it: a read buffer must be
/// valid before the launch, a written one is spoiled if the launch fails).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Io {
    Read,
    Write,
    ReadWrite,
}

/// Queue `kernel` with `buffers` bound in order (0, 1, …), the info uniform after them.
pub(crate) fn launch_io(kernel: Kernel, client: &burn_cubecl::cubecl::client::Client, count: CubeCount, buffers: &[(&CubeTensor, Io)], info: Vec<u64>) {
    let mut args = KernelArguments::new();
    for (t, io) in buffers {
        let attr = match io {
            Io::Read => BufferIOAttr::ReadOnly,
            Io::Write => BufferIOAttr::WriteOnly,
            Io::ReadWrite => BufferIOAttr::ReadWrite,
        };
        args = args.with_buffer_io(t.handle.clone().binding(), attr);
    }
    args = args.with_info(MetadataBindingInfo::custom(info));
    client.launch(Box::new(SourceKernel::new(kernel, CubeDim::new_1d(kernel.workgroup_size()))), count, args);
}

/// Geometry shared by the two matrix launchers.
pub(crate) struct MatShape {
    /// Activation row length after zero-padding to whole blocks, in vec4s.
    pub k4: u32,
    pub k: usize,
    /// Total output columns (N of the whole matrix).
    pub ld_y: usize,
}

impl MatShape {
    fn kb(&self) -> u32 {
        self.k.div_ceil(BLOCK) as u32
    }
    fn k2(&self) -> u32 {
        self.k.div_ceil(2) as u32
    }
}

/// `y[0, n_offset .. n_offset + n] = x · W_chunkᵀ (+ addends)` for one row chunk (decode, M = 1).
///
/// # Shapes
/// `x: [1, 4·k4]` f32 (`[1, 8·k4]`, gate then up, with the SwiGLU prologue), planes per
/// [`QuantScheme`], addends `[ld_y]` f32, `y: [1, ld_y]` f32.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matvec(
    kernel: Kernel,
    caps: &DeviceCaps,
    x: &CubeTensor,
    planes: &[CubeTensor],
    addends: &[CubeTensor],
    y: &CubeTensor,
    shape: &MatShape,
    n_offset: usize,
    n: usize,
) -> Result<()> {
    check_feature(&kernel, caps)?;
    let Kernel::Matvec { reduction, .. } = kernel else { return Err(KernelError::InvalidVariant(kernel.label())) };
    if !reduction.is_valid() {
        return Err(KernelError::InvalidVariant(kernel.label()));
    }
    let params = MatvecParams { n: n as u32, k4: shape.k4, kb: shape.kb(), k2: shape.k2(), n_offset: n_offset as u32, _pad: [0; 3] };
    let groups = (n as u64).div_ceil(u64::from(reduction.rows_per_workgroup()));
    let count = linear_count(groups, caps, "matvec")?;
    // Bound after the planes, as the kernel's epilogue declares them.
    let inputs: Vec<&CubeTensor> = std::iter::once(x).chain(planes).chain(addends).collect();
    launch(kernel, &x.client, count, &inputs, y, info_words(&params));
    Ok(())
}

/// `y[.., n_offset .. n_offset + n] = x · W_chunkᵀ` for one row chunk (prefill, M > 1).
///
/// # Shapes
/// `x: [m, 4·k4]` f32, planes per [`QuantScheme`] then the epilogue's bias `[ld_y]` and
/// residual `[m, ld_y]` where it has them, `y: [m, ld_y]` f32.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(kernel: Kernel, caps: &DeviceCaps, x: &CubeTensor, planes: &[CubeTensor], y: &CubeTensor, shape: &MatShape, m: usize, n_offset: usize, n: usize) -> Result<()> {
    check_feature(&kernel, caps)?;
    let Kernel::Matmul { tile, .. } = kernel else { return Err(KernelError::InvalidVariant(kernel.label())) };
    if !tile.is_valid() {
        return Err(KernelError::InvalidVariant(kernel.label()));
    }
    let params = MatmulParams {
        m: m as u32,
        n: n as u32,
        k4: shape.k4,
        kb: shape.kb(),
        k2: shape.k2(),
        n_offset: n_offset as u32,
        ld_y: shape.ld_y as u32,
        _pad: 0,
    };
    let (gx, gy) = ((n as u64).div_ceil(u64::from(tile.tn)), (m as u64).div_ceil(u64::from(tile.tm)));
    for g in [gx, gy] {
        if g > u64::from(caps.max_workgroups) {
            return Err(KernelError::TooManyWorkgroups { what: "matmul", count: g, limit: caps.max_workgroups });
        }
    }
    let inputs: Vec<&CubeTensor> = std::iter::once(x).chain(planes).collect();
    launch(kernel, &x.client, CubeCount::Static(gx as u32, gy as u32, 1), &inputs, y, info_words(&params));
    Ok(())
}

/// `dst = src` over `len` vec4<u32>: the bandwidth reference.
#[cfg_attr(target_family = "wasm", allow(dead_code))]
pub(crate) fn copy(kernel: Kernel, caps: &DeviceCaps, src: &CubeTensor, dst: &CubeTensor, len: usize) -> Result<()> {
    let Kernel::Copy { wg, items } = kernel else { return Err(KernelError::InvalidVariant(kernel.label())) };
    let params = CopyParams { len: len as u32, _pad: [0; 3] };
    let count = linear_count((len as u64).div_ceil(u64::from(wg * items)), caps, "copy")?;
    launch(kernel, &src.client, count, &[src], dst, info_words(&params));
    Ok(())
}

/// Refuse an activation or output of `elements` f32 larger than one binding: row chunks
/// cannot help there (the caller must split M).
pub(crate) fn check_binding(elements: usize, what: &'static str, limit: u64) -> Result<()> {
    let bytes = elements as u64 * DType::F32.size() as u64;
    if bytes > limit { Err(KernelError::BindingTooLarge { what, bytes, limit }) } else { Ok(()) }
}

/// The planes a scheme binds, for sanity checks in debug builds.
pub(crate) fn plane_count(scheme: QuantScheme) -> usize {
    if scheme == QuantScheme::F16 { 1 } else { 2 }
}
