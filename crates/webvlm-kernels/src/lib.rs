//! webvlm's hand-written WGSL kernels: quantised (q8, q4) and f16-weight matrix products,
//! launched on burn's own wgpu device and queue, with no CPU round trip.
//!
//! ```text
//! QuantMatrix::quantize / from_*_planes        (CPU, quant.rs; layout in shaders/README.md)
//!        │ DeviceQuantMatrix::upload           (u32 burn tensors, split by rows to fit a binding)
//!        ▼
//! quant_matmul(x: [M, K], &w) -> [M, N]        M = 1: matvec_*.wgsl, M > 1: matmul_*.wgsl
//!                                              non-wgpu devices: dequantised weight, burn matmul
//! ```
//!
//! How it plugs into burn: the weight planes are ordinary burn `Tensor<1, Int>` (u32) on the
//! device; a launch unwraps them and the activation to the CubeCL tensors behind them
//! (`Tensor::try_into_primitive::<CubeBackend>`, burn's `extension` feature), queues the WGSL
//! through `burn_cubecl::template::SourceKernel` on the same client burn uses (its `template`
//! feature), and wraps the output back with `Tensor::from_primitive`. Nothing waits: the
//! result is a lazy burn tensor like any other.
//!
//! Run the tests (wgpu; lavapipe when there is no GPU) with
//! `cargo test --release -p webvlm-kernels`, the bench with [`bench::bench_kernels`].

pub mod bench;
pub mod counters;
pub mod device_matrix;
pub mod error;
pub mod gather;
pub mod ops;
pub mod gpu;
mod launch;
pub mod params;
pub mod quant;
pub mod reference;
pub mod sample;
pub mod shaders;
pub mod variants;

use burn::tensor::{DType, Tensor};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

pub use device_matrix::DeviceQuantMatrix;
pub use gather::{DeviceTable, TableFormat};
pub use error::{KernelError, Result};
pub use gpu::{GpuMemory, gpu_memory, release_free_memory};
pub use quant::{QuantMatrix, QuantScheme};
pub use shaders::{Act, Epilogue, Fuse, Kernel, Precision, Reduction, Tile};
pub use variants::{DeviceCaps, KernelOptions};

use device_matrix::Repr;
use launch::MatShape;

/// `y = x · Wᵀ` with a quantised `W`: the linear layer's matmul (bias not included).
///
/// Chooses the matvec kernel when `M == 1`, the tiled matmul otherwise, with the options
/// fixed at upload. On a non-wgpu device it multiplies by the dequantised weight instead.
///
/// # Shapes
/// `x: [M, K]` → `[M, N]` (f32; other float dtypes are cast to f32 first).
pub fn quant_matmul(x: Tensor<2>, w: &DeviceQuantMatrix) -> Result<Tensor<2>> {
    let options = match &w.repr {
        Repr::Wgpu { options, .. } => *options,
        Repr::Dense { .. } => KernelOptions::default(),
    };
    quant_matmul_with(x, w, &options)
}

/// [`quant_matmul`] with explicit options (forced variants for the bench and the tests).
/// `options.max_binding_bytes` is ignored here: the row chunks were fixed at upload.
pub fn quant_matmul_with(x: Tensor<2>, w: &DeviceQuantMatrix, options: &KernelOptions) -> Result<Tensor<2>> {
    matmul_with_epilogue(x, w, options, None)
}

/// The tensors of an epilogue, as bound: the bias `[N]`, the residual `[M, N]`.
struct EpilogueInputs {
    epilogue: Epilogue,
    bias: Option<Tensor<1>>,
    residual: Option<Tensor<2>>,
}

/// `act(x·Wᵀ + bias) + residual` for a quantised `W` and `M > 1` rows: one dispatch per row
/// chunk of the weight on wgpu (the tiled matmul's epilogue), the same operations one after
/// another elsewhere (the reference; also for `M = 1`, where [`quant_matmul_fused`] is the
/// one-dispatch path).
///
/// # Shapes
/// `x: [M, K]`, `bias: [N]`, `residual: [M, N]` → `[M, N]`
pub fn quant_matmul_epilogue(x: Tensor<2>, w: &DeviceQuantMatrix, bias: Option<&Tensor<1>>, act: Act, residual: Option<Tensor<2>>) -> Result<Tensor<2>> {
    let [m, _] = x.dims();
    let n = w.n();
    if bias.is_some_and(|b| b.dims() != [n]) || residual.as_ref().is_some_and(|r| r.dims() != [m, n]) {
        return Err(KernelError::Device(format!(
            "matmul epilogue: a bias {:?} and a residual {:?} for a [{m}, {n}] output",
            bias.map(|b| b.dims()),
            residual.as_ref().map(|r| r.dims())
        )));
    }
    let on_device = m > 1
        && matches!(w.repr, Repr::Wgpu { .. })
        && bias.is_none_or(|b| b.dtype() == DType::F32)
        && residual.as_ref().is_none_or(|r| r.dtype() == DType::F32);
    if !on_device {
        let addends: Vec<Tensor<1>> = bias.into_iter().cloned().collect();
        let y = ops::activate(quant_matmul_fused(x, w, false, &addends)?, act);
        return Ok(match residual {
            Some(r) => y + r,
            None => y,
        });
    }
    let options = match &w.repr {
        Repr::Wgpu { options, .. } => *options,
        Repr::Dense { .. } => unreachable!("checked above"),
    };
    let epilogue = Epilogue { bias: bias.is_some(), act, residual: residual.is_some() };
    matmul_with_epilogue(x, w, &options, Some(EpilogueInputs { epilogue, bias: bias.cloned(), residual }))
}

fn matmul_with_epilogue(x: Tensor<2>, w: &DeviceQuantMatrix, options: &KernelOptions, epilogue: Option<EpilogueInputs>) -> Result<Tensor<2>> {
    let [m, k] = x.dims();
    if k != w.k() {
        return Err(KernelError::ShapeMismatch { k: w.k(), found: k });
    }
    let (chunks, caps) = match &w.repr {
        Repr::Dense { w_t } => return Ok(x.cast(DType::F32).matmul(w_t.clone())),
        Repr::Wgpu { chunks, caps, .. } => (chunks, caps),
    };
    let device = x.device();
    if m == 0 {
        return Ok(Tensor::zeros([0, w.n()], &device));
    }
    let mut x = x.cast(DType::F32);
    // The kernels read x in whole blocks of 32 with no bounds test (a test per load cost 40%
    // on lavapipe); a K that is not a multiple of 32 gets zero columns. Real models' widths
    // are multiples of 64, so this copy only happens in tests.
    let kp = quant::blocks_per_row(k) * quant::BLOCK;
    if kp != k {
        x = Tensor::cat(vec![x, Tensor::zeros([m, kp - k], &device)], 1);
    }
    let k4 = kp / 4;
    let x = into_contiguous(x.try_into_primitive::<CubeBackend>().map_err(|e| KernelError::NotWgpu(format!("{e:?}")))?);
    if chunks.first().is_some_and(|c| c.planes.first().is_some_and(|p| p.device != x.device)) {
        return Err(KernelError::DeviceMismatch);
    }
    // Checked before allocating: burn cannot allocate a buffer past the limit either.
    launch::check_binding(m * kp, "the activation", caps.max_binding_bytes)?;
    launch::check_binding(m * w.n(), "the output", caps.max_binding_bytes)?;
    let y = empty_f32(&x, [m, w.n()]);
    let shape = MatShape { k4: k4 as u32, k, ld_y: w.n() };
    let mut kernel = if m == 1 { options.matvec_kernel(w.scheme(), k, caps) } else { options.matmul_kernel(w.scheme(), m, caps) };
    let mut extra = Vec::new();
    if let Some(e) = epilogue {
        let not_wgpu = |e| KernelError::NotWgpu(format!("{e:?}"));
        if let Some(b) = e.bias {
            extra.push(into_contiguous(b.try_into_primitive::<CubeBackend>().map_err(not_wgpu)?));
        }
        if let Some(r) = e.residual {
            extra.push(into_contiguous(r.try_into_primitive::<CubeBackend>().map_err(not_wgpu)?));
        }
        if let Kernel::Matmul { epilogue, .. } = &mut kernel {
            *epilogue = e.epilogue;
        }
    }
    for c in chunks {
        debug_assert_eq!(c.planes.len(), launch::plane_count(w.scheme()));
        if m == 1 {
            launch::matvec(kernel, caps, &x, &c.planes, &[], &y, &shape, c.n_offset, c.n)?;
        } else {
            let inputs: Vec<CubeTensor> = c.planes.iter().cloned().chain(extra.iter().cloned()).collect();
            launch::matmul(kernel, caps, &x, &inputs, &y, &shape, m, c.n_offset, c.n)?;
        }
    }
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// [`quant_matmul`] with a prologue and an epilogue, in one dispatch where it can be (one
/// activation row on wgpu, K a whole number of blocks of 32): `swiglu` takes `x` as a
/// `[gate | up]` row of `2·K` values and multiplies `silu(gate)·up`; `addends` (a bias, a
/// residual; at most [`Fuse::MAX_ADDENDS`]) are added to the output in order. Elsewhere the
/// same arithmetic runs as separate operations (the reference).
///
/// # Shapes
/// `x: [M, K]` (`[M, 2·K]` with `swiglu`), `addends: [N]` each → `[M, N]`
pub fn quant_matmul_fused(x: Tensor<2>, w: &DeviceQuantMatrix, swiglu: bool, addends: &[Tensor<1>]) -> Result<Tensor<2>> {
    let [m, cols] = x.dims();
    let k = w.k();
    if cols != if swiglu { 2 * k } else { k } {
        return Err(KernelError::ShapeMismatch { k: if swiglu { 2 * k } else { k }, found: cols });
    }
    if addends.len() > usize::from(Fuse::MAX_ADDENDS) || addends.iter().any(|a| a.dims() != [w.n()]) {
        return Err(KernelError::Device(format!("{} addends for a {}-row matrix (at most {} of [{}])", addends.len(), w.n(), Fuse::MAX_ADDENDS, w.n())));
    }
    let fusable = m == 1
        && k % quant::BLOCK == 0
        && x.dtype() == DType::F32
        && addends.iter().all(|a| a.dtype() == DType::F32)
        && matches!(w.repr, Repr::Wgpu { .. });
    if !fusable {
        let x = if swiglu { ops::swiglu_joined(x, k)? } else { x };
        let mut y = quant_matmul(x, w)?;
        for a in addends {
            y = y + a.clone().unsqueeze::<2>();
        }
        return Ok(y);
    }
    let Repr::Wgpu { chunks, caps, options } = &w.repr else { unreachable!("checked above") };
    let prim = |t: Tensor<1>| t.try_into_primitive::<CubeBackend>().map(into_contiguous).map_err(|e| KernelError::NotWgpu(format!("{e:?}")));
    let x = into_contiguous(x.try_into_primitive::<CubeBackend>().map_err(|e| KernelError::NotWgpu(format!("{e:?}")))?);
    let adds = addends.iter().cloned().map(prim).collect::<Result<Vec<_>>>()?;
    if chunks.first().is_some_and(|c| c.planes.first().is_some_and(|p| p.device != x.device)) {
        return Err(KernelError::DeviceMismatch);
    }
    launch::check_binding(cols, "the activation", caps.max_binding_bytes)?;
    let y = empty_f32(&x, [1, w.n()]);
    let shape = MatShape { k4: (k / 4) as u32, k, ld_y: w.n() };
    let Kernel::Matvec { scheme, precision, reduction, .. } = options.matvec_kernel(w.scheme(), k, caps) else {
        return Err(KernelError::InvalidVariant("matvec".into()));
    };
    let kernel = Kernel::Matvec { scheme, precision, reduction, fuse: Fuse { swiglu, addends: adds.len() as u8 } };
    for c in chunks {
        launch::matvec(kernel, caps, &x, &c.planes, &adds, &y, &shape, c.n_offset, c.n)?;
    }
    Ok(Tensor::from_primitive::<CubeBackend>(y))
}

/// An uninitialised contiguous f32 tensor on `like`'s device; every element is written by
/// the launches that follow.
pub(crate) fn empty_f32<const D: usize>(like: &CubeTensor, shape: [usize; D]) -> CubeTensor {
    // At least one element: the allocator rejects empty buffers.
    let handle = like.client.empty(shape.iter().product::<usize>().max(1) * DType::F32.size());
    CubeTensor::new_contiguous(like.client.clone(), like.device.clone(), shape.into(), handle, DType::F32)
}
