//! Lookup tables kept compact on the device: a token embedding is read one row per token, so
//! holding it as f32 (113 MB for SmolLM2-135M, 933 MB for Qwen2.5-1.5B) buys nothing. A
//! [`DeviceTable`] keeps the table in the form it came in — GGUF's q8/q4 blocks (the very
//! buffers of a tied lm_head), or 16-bit words where every value is a bf16 or f16 — and
//! `gather.wgsl` widens the rows a step asks for to f32.

use burn::tensor::{Device, Int, Tensor, TensorData};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;

use crate::device_matrix::{Chunk, Repr, row_chunks, upload_words, wgpu_device};
use crate::error::{KernelError, Result};
use crate::launch::{Io, launch_io, linear_count};
use crate::params::{GatherParams, info_words};
use crate::quant::{QuantMatrix, QuantScheme, blocks_per_row};
use crate::shaders::Kernel;
use crate::variants::{DeviceCaps, KernelOptions};
use crate::{DeviceQuantMatrix, empty_f32};

/// How a [`DeviceTable`] stores its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFormat {
    Q8,
    Q4,
    F16,
    /// Two bf16 per word, the lower column in the low half.
    Bf16,
}

impl TableFormat {
    pub const ALL: [TableFormat; 4] = [TableFormat::Q8, TableFormat::Q4, TableFormat::F16, TableFormat::Bf16];

    pub fn name(self) -> &'static str {
        match self {
            TableFormat::Q8 => "q8",
            TableFormat::Q4 => "q4",
            TableFormat::F16 => "f16",
            TableFormat::Bf16 => "bf16",
        }
    }

    fn of(scheme: QuantScheme) -> Self {
        match scheme {
            QuantScheme::Q8 => TableFormat::Q8,
            QuantScheme::Q4 => TableFormat::Q4,
            QuantScheme::F16 => TableFormat::F16,
        }
    }
}

#[derive(Debug, Clone)]
enum TableRepr {
    /// The planes on a wgpu device, in row chunks that each fit a binding.
    Wgpu { chunks: Vec<Chunk> },
    /// Elsewhere (burn's CPU backend): the values as a dense `[n, k]` tensor.
    Dense { t: Tensor<2> },
}

/// A `[n, k]` lookup table on a device, read by row.
#[derive(Debug, Clone)]
pub struct DeviceTable {
    format: TableFormat,
    n: usize,
    k: usize,
    bytes: u64,
    device: Device,
    repr: TableRepr,
}

/// Whether every value survives a round trip through bf16 (then the table can be held in it).
pub fn bf16_exact(values: &[f32]) -> bool {
    values.iter().all(|v| half::bf16::from_f32(*v).to_f32().to_bits() == v.to_bits())
}

/// Whether every value survives a round trip through f16.
pub fn f16_exact(values: &[f32]) -> bool {
    values.iter().all(|v| half::f16::from_f32(*v).to_f32().to_bits() == v.to_bits())
}

impl DeviceTable {
    /// The table of a block-format matrix already on the device, sharing its buffers (a tied
    /// lm_head and the embedding it is tied to are then one copy).
    pub fn from_matrix(m: &DeviceQuantMatrix) -> Self {
        let repr = match &m.repr {
            Repr::Wgpu { chunks, .. } => TableRepr::Wgpu { chunks: chunks.clone() },
            Repr::Dense { w_t } => TableRepr::Dense { t: w_t.clone().transpose() },
        };
        Self { format: TableFormat::of(m.scheme()), n: m.n(), k: m.k(), bytes: m.byte_size(), device: m.device(), repr }
    }

    /// Upload a block-format matrix as a table.
    pub fn upload(m: &QuantMatrix, device: &Device) -> Result<Self> {
        Ok(Self::from_matrix(&DeviceQuantMatrix::upload(m, device)?))
    }

    /// A row-major `[n, k]` table of bf16-exact values ([`bf16_exact`]), held as bf16: exact,
    /// half the memory of f32.
    pub fn bf16(values: &[f32], n: usize, k: usize, device: &Device) -> Result<Self> {
        Self::bf16_with(values, n, k, device, KernelOptions::default())
    }

    /// [`DeviceTable::bf16`] with `options.max_binding_bytes` deciding the row chunks.
    pub fn bf16_with(values: &[f32], n: usize, k: usize, device: &Device, options: KernelOptions) -> Result<Self> {
        if values.len() != n * k || n == 0 || k == 0 {
            return Err(KernelError::DataLength { n, k, expected: n * k, found: values.len() });
        }
        let k2 = k.div_ceil(2);
        let bytes = (n * k2 * 4) as u64;
        let Some(cube) = wgpu_device(device) else {
            let t = Tensor::<2>::from_data(TensorData::new(values.to_vec(), [n, k]), device);
            return Ok(Self { format: TableFormat::Bf16, n, k, bytes, device: device.clone(), repr: TableRepr::Dense { t } });
        };
        let caps = DeviceCaps::of(&cube.client());
        let limit = options.binding_limit(&caps);
        // A 16-bit row takes the words an f16 one does.
        let ranges = row_chunks(n, QuantScheme::F16.row_bytes(k), limit, QuantScheme::F16)?;
        let top = |v: f32| (half::bf16::from_f32(v).to_bits()) as u32;
        let mut chunks = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            let mut words = Vec::with_capacity((end - start) * k2);
            for row in values[start * k..end * k].chunks_exact(k) {
                words.extend(row.chunks(2).map(|p| top(p[0]) | (p.get(1).map_or(0, |&v| top(v)) << 16)));
            }
            chunks.push(Chunk { n_offset: start, n: end - start, planes: vec![upload_words(&words, device)?] });
        }
        Ok(Self { format: TableFormat::Bf16, n, k, bytes, device: device.clone(), repr: TableRepr::Wgpu { chunks } })
    }

    pub fn format(&self) -> TableFormat {
        self.format
    }

    /// Rows.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Values per row.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Bytes the table occupies on a GPU.
    pub fn byte_size(&self) -> u64 {
        self.bytes
    }

    /// Bytes one looked-up row reads.
    pub fn row_bytes(&self) -> u64 {
        self.bytes / self.n as u64
    }

    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// The rows `ids` as f32: one launch per row chunk of the table (one for any table that
    /// fits a binding). An id past the table gives a row of zeros on wgpu.
    ///
    /// # Shapes
    /// `ids: [count]` (burn's int type, on the table's device) → `[count, k]`
    pub fn gather(&self, ids: Tensor<1, Int>) -> Result<Tensor<2>> {
        let chunks = match &self.repr {
            TableRepr::Dense { t } => return Ok(t.clone().select(0, ids)),
            TableRepr::Wgpu { chunks, .. } => chunks,
        };
        let [count] = ids.dims();
        if count == 0 {
            return Ok(Tensor::zeros([0, self.k], &ids.device()));
        }
        let ids = into_contiguous(ids.try_into_primitive::<CubeBackend>().map_err(|e| KernelError::NotWgpu(format!("{e:?}")))?);
        if ids.dtype.size() != 4 {
            return Err(KernelError::Device(format!("gather: ids of {:?}, want a 4-byte integer", ids.dtype)));
        }
        let y = empty_f32(&ids, [count, self.k]);
        let caps = DeviceCaps::of(&ids.client);
        let groups = linear_count((count * self.k).div_ceil(crate::ops::FUSED_WG as usize) as u64, &caps, "gather")?;
        for chunk in chunks {
            let params = GatherParams {
                count: count as u32,
                k: self.k as u32,
                kb: blocks_per_row(self.k) as u32,
                k2: self.k.div_ceil(2) as u32,
                n_offset: chunk.n_offset as u32,
                n: chunk.n as u32,
                last: u32::from(chunk.n_offset + chunk.n == self.n),
                _pad: 0,
            };
            let mut buffers = vec![(&ids, Io::Read), (&y, Io::ReadWrite)];
            buffers.extend(chunk.planes.iter().map(|p| (p, Io::Read)));
            launch_io(Kernel::Gather { format: self.format }, &ids.client, groups.clone(), &buffers, info_words(&params));
        }
        Ok(Tensor::from_primitive::<CubeBackend>(y))
    }

    /// The whole table as dense f32 row blocks of at most `rows_per_block` rows (a tied lm_head
    /// that multiplies by the dense matrix).
    pub fn to_dense_blocks(&self, rows_per_block: usize) -> Result<Vec<Tensor<2>>> {
        let device = self.device();
        let step = rows_per_block.max(1);
        (0..self.n)
            .step_by(step)
            .map(|start| {
                let ids: Vec<i32> = (start..(start + step).min(self.n)).map(|i| i as i32).collect();
                let len = ids.len();
                self.gather(Tensor::<1, Int>::from_data(TensorData::new(ids, [len]), &device))
            })
            .collect()
    }
}
