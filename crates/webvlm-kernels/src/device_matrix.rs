//! A [`QuantMatrix`] resident on a device.
//!
//! On wgpu the planes become burn u32 tensors on burn's own device (so burn's allocator owns
//! the memory and the kernels bind the very buffers burn uses), cut by rows into chunks that
//! each fit one storage binding. On any other device the matrix is dequantised once and kept
//! as a dense burn tensor, so callers get the same API everywhere.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use burn::backend::DispatchDevice;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeBackend;

use crate::error::{KernelError, Result};
use crate::quant::{QuantMatrix, QuantScheme};
use crate::variants::{DeviceCaps, KernelOptions};

/// Rows `n_offset .. n_offset + n` of the matrix, planes in binding order.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub n_offset: usize,
    pub n: usize,
    pub planes: Vec<CubeTensor>,
}

#[derive(Debug, Clone)]
pub(crate) enum Repr {
    /// On a wgpu device: the planes, chunked, and the options fixed at upload.
    Wgpu { chunks: Vec<Chunk>, caps: DeviceCaps, options: KernelOptions },
    /// Elsewhere: the dequantised weight, transposed to `[k, n]` for `x.matmul(w_t)`.
    Dense { w_t: Tensor<2> },
}

/// A quantised weight on a device, ready for [`crate::quant_matmul`].
#[derive(Debug, Clone)]
pub struct DeviceQuantMatrix {
    scheme: QuantScheme,
    n: usize,
    k: usize,
    bytes: u64,
    pub(crate) repr: Repr,
}

/// The cubecl client of a wgpu device, or `None` for every other device.
pub(crate) fn wgpu_device(device: &Device) -> Option<burn_cubecl::CubeDevice> {
    match device.as_dispatch() {
        DispatchDevice::Cube(d @ burn_cubecl::CubeDevice::Wgpu(_)) => Some(d.clone()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

impl DeviceQuantMatrix {
    /// Upload with default options (the device's own binding limit, f32 compute).
    pub fn upload(w: &QuantMatrix, device: &Device) -> Result<Self> {
        Self::upload_with(w, device, KernelOptions::default())
    }

    /// Upload with explicit options; `options.max_binding_bytes` decides the row chunks.
    pub fn upload_with(w: &QuantMatrix, device: &Device, options: KernelOptions) -> Result<Self> {
        let (scheme, n, k, bytes) = (w.scheme(), w.n(), w.k(), w.byte_size());
        let Some(cube) = wgpu_device(device) else {
            let data = TensorData::new(w.dequantize(), [n, k]);
            let w_t = Tensor::<2>::from_data(data, device).transpose();
            return Ok(Self { scheme, n, k, bytes, repr: Repr::Dense { w_t } });
        };
        let caps = DeviceCaps::of(&cube.client());
        let limit = options.binding_limit(&caps);
        let ranges = row_chunks(n, scheme.row_bytes(k), limit, scheme)?;
        let mut chunks = Vec::with_capacity(ranges.len());
        for &(start, end) in &ranges {
            let part = if start == 0 && end == n { None } else { Some(w.rows(start, end)?) };
            let planes = part.as_ref().unwrap_or(w).plane_slices().into_iter().map(|p| upload_words(p, device)).collect::<Result<_>>()?;
            chunks.push(Chunk { n_offset: start, n: end - start, planes });
        }
        log::debug!("uploaded {scheme:?} {n}x{k} in {} chunk(s) of ≤ {} rows (binding limit {limit} B)", chunks.len(), ranges[0].1);
        Ok(Self { scheme, n, k, bytes, repr: Repr::Wgpu { chunks, caps, options } })
    }

    /// The storage scheme.
    pub fn scheme(&self) -> QuantScheme {
        self.scheme
    }

    /// Rows (`out` features).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Columns (`in` features).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes of the quantised planes (what a matvec reads), whatever the device holds.
    pub fn byte_size(&self) -> u64 {
        self.bytes
    }

    /// The device the weight lives on.
    pub fn device(&self) -> Device {
        match &self.repr {
            Repr::Wgpu { chunks, .. } => Tensor::<1, Int>::from_primitive::<CubeBackend>(chunks[0].planes[0].clone()).device(),
            Repr::Dense { w_t } => w_t.device(),
        }
    }

    /// Row chunks the weight was split into (1 unless it exceeds the binding limit; 0 when
    /// the device is not wgpu and the weight is held dense).
    pub fn chunk_count(&self) -> usize {
        match &self.repr {
            Repr::Wgpu { chunks, .. } => chunks.len(),
            Repr::Dense { .. } => 0,
        }
    }

    /// Change the options used by later launches (variant choice, f16). The row chunks were
    /// fixed at upload and keep their size.
    pub fn set_options(&mut self, new: KernelOptions) {
        if let Repr::Wgpu { options, .. } = &mut self.repr {
            *options = KernelOptions { max_binding_bytes: options.max_binding_bytes, ..new };
        }
    }
}

impl DeviceQuantMatrix {
    /// The rows of `parts` stacked into one matrix (`[Σ n, k]`), on the device: q, k and v
    /// (or gate and up) become one weight, so a token makes one dispatch instead of three.
    /// `None` when they cannot share one binding of whole planes: different schemes, widths or
    /// options, a part cut into row chunks, a q8 scale plane whose last word is half-used
    /// (odd `n·Kb`), or a total over the binding limit. The caller keeps the parts then.
    pub fn concat_rows(parts: &[&DeviceQuantMatrix]) -> Option<DeviceQuantMatrix> {
        let first = parts.first()?;
        let (scheme, k) = (first.scheme, first.k);
        if parts.iter().any(|p| p.scheme != scheme || p.k != k) {
            return None;
        }
        let n: usize = parts.iter().map(|p| p.n).sum();
        let bytes = parts.iter().map(|p| p.bytes).sum();
        match &first.repr {
            Repr::Dense { .. } => {
                let mut ts = Vec::with_capacity(parts.len());
                for p in parts {
                    let Repr::Dense { w_t } = &p.repr else { return None };
                    ts.push(w_t.clone());
                }
                Some(Self { scheme, n, k, bytes, repr: Repr::Dense { w_t: Tensor::cat(ts, 1) } })
            }
            Repr::Wgpu { caps, options, .. } => {
                if scheme.row_bytes(k) * n as u64 > options.binding_limit(caps) {
                    return None;
                }
                let kb = crate::quant::blocks_per_row(k);
                let mut planes: Vec<Vec<Tensor<1, Int>>> = Vec::new();
                for p in parts {
                    let Repr::Wgpu { chunks, options: o, .. } = &p.repr else { return None };
                    if chunks.len() != 1 || o != options || (scheme == QuantScheme::Q8 && p.n * kb % 2 == 1) {
                        return None;
                    }
                    for (i, plane) in chunks[0].planes.iter().enumerate() {
                        if planes.len() <= i {
                            planes.push(Vec::new());
                        }
                        planes[i].push(Tensor::<1, Int>::from_primitive::<CubeBackend>(plane.clone()));
                    }
                }
                let planes = planes.into_iter().map(|ts| Tensor::cat(ts, 0).try_into_primitive::<CubeBackend>().ok()).collect::<Option<Vec<_>>>()?;
                let chunks = vec![Chunk { n_offset: 0, n, planes }];
                Some(Self { scheme, n, k, bytes, repr: Repr::Wgpu { chunks, caps: *caps, options: *options } })
            }
        }
    }
}

/// The row ranges `start..end` that cut an `n`-row matrix into chunks of whole rows of
/// `row_bytes` each within `limit` bytes (one binding); `RowTooLarge`, named by `scheme`, when a
/// single row does not fit.
pub(crate) fn row_chunks(n: usize, row_bytes: u64, limit: u64, scheme: QuantScheme) -> Result<Vec<(usize, usize)>> {
    let rows_per_chunk = usize::try_from(limit / row_bytes).unwrap_or(usize::MAX).min(n);
    if rows_per_chunk == 0 {
        return Err(KernelError::RowTooLarge { scheme, bytes: row_bytes, limit });
    }
    Ok((0..n).step_by(rows_per_chunk).map(|start| (start, (start + rows_per_chunk).min(n))).collect())
}

/// One plane as a u32 burn tensor on `device`, unwrapped to the CubeCL tensor behind it.
pub(crate) fn upload_words(words: &[u32], device: &Device) -> Result<CubeTensor> {
    let data = TensorData::new(words.to_vec(), [words.len()]);
    let t = Tensor::<1, Int>::from_data(data, (device, DType::U32));
    t.try_into_primitive::<CubeBackend>().map_err(|e| KernelError::NotWgpu(format!("{e:?}")))
}
