//! Token embedding lookup. The table stays in the compact form it was stored in (the
//! checkpoint's bf16 or f16, or GGUF's quantised blocks, shared with a tied lm_head) and the
//! gather kernel widens the rows a step reads; a table of f32 values lives in row blocks that
//! each fit one GPU binding (Qwen's 151936 × 1536 is 933 MB in f32), and a lookup selects from
//! the blocks its ids fall in.

use burn::tensor::{Int, Tensor, TensorData};
use webvlm_kernels::DeviceTable;

use crate::error::{ModelError, Result};
use crate::weights::{Lookup, WeightReader};

/// `nn.Embedding`.
#[derive(Clone, Debug)]
pub struct Embedding {
    table: Table,
    vocab: usize,
    dim: usize,
}

#[derive(Clone, Debug)]
enum Table {
    /// Row blocks of the `[vocab, dim]` f32 table, all but the last `rows_per_block` rows.
    Dense { blocks: Vec<Tensor<2>>, rows_per_block: usize },
    Compact(DeviceTable),
}

impl Embedding {
    /// `dense`: the table is also a tied lm_head's dense weight, so it is held as f32.
    pub fn load(vb: &mut WeightReader, name: &str, vocab: usize, dim: usize, dense: bool) -> Result<Self> {
        let table = match vb.pp(name).take_lookup("weight", [vocab, dim], dense)? {
            Lookup::Blocks(blocks) => {
                let rows_per_block = blocks.first().map_or(vocab, |b| b.dims()[0]).max(1);
                Table::Dense { blocks, rows_per_block }
            }
            Lookup::Table(t) => Table::Compact(t),
        };
        Ok(Self { table, vocab, dim })
    }

    /// The `[vocab, dim]` matrix as one tensor (for a tied dense lm_head); an error when the
    /// table is too large for one buffer.
    pub fn weight(&self) -> Result<Tensor<2>> {
        match &self.table {
            Table::Dense { blocks, .. } if blocks.len() == 1 => Ok(blocks[0].clone()),
            _ => Err(ModelError::TooLarge {
                name: "the tied lm_head (token embedding)".into(),
                limit: crate::weights::MAX_DENSE_BINDING_BYTES,
                hint: "quantise the model (webvlm convert --quant q8 or q4), which gives the tied lm_head its own quantised copy".into(),
            }),
        }
    }

    pub fn device(&self) -> burn::tensor::Device {
        match &self.table {
            Table::Dense { blocks, .. } => blocks[0].device(),
            Table::Compact(t) => t.device(),
        }
    }

    /// Bytes one looked-up row reads.
    pub fn row_bytes(&self) -> u64 {
        match &self.table {
            Table::Dense { blocks, .. } => (self.dim * blocks[0].dtype().size()) as u64,
            Table::Compact(t) => t.row_bytes(),
        }
    }

    /// How the table is held: `f32`, or the compact format (`bf16`, `f16`, `q8`, `q4`).
    pub fn format(&self) -> &'static str {
        match &self.table {
            Table::Dense { .. } => "f32",
            Table::Compact(t) => t.format().name(),
        }
    }

    /// Bytes the table occupies on the device.
    pub fn byte_size(&self) -> u64 {
        match &self.table {
            Table::Dense { .. } => (self.vocab * self.dim * 4) as u64,
            Table::Compact(t) => t.byte_size(),
        }
    }

    /// The rows of ids that are already on the device (a token picked there), so the next
    /// step needs no upload; `None` for an f32 table held in several blocks.
    ///
    /// # Shapes
    /// `ids: [n]` → `[n, dim]`
    pub fn forward_device(&self, ids: Tensor<1, Int>) -> Option<Tensor<2>> {
        match &self.table {
            Table::Dense { blocks, .. } if blocks.len() == 1 => Some(blocks[0].clone().select(0, ids)),
            Table::Dense { .. } => None,
            // Only a launch is queued here; a failure would come from the device itself, and
            // the caller's fallback (an upload of the ids) reports it.
            Table::Compact(t) => t.gather(ids).ok(),
        }
    }

    /// # Shapes
    /// `ids: [n]` → `[n, dim]`
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor<2>> {
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(ModelError::TokenOutOfRange { id, vocab: self.vocab });
        }
        let device = self.device();
        let index = |v: Vec<i32>| Tensor::<1, Int>::from_data(TensorData::new(v.clone(), [v.len()]), &device);
        let all = || index(ids.iter().map(|&i| i as i32).collect());
        let (blocks, rows_per_block) = match &self.table {
            Table::Compact(t) => {
                return t.gather(all()).map_err(|e| ModelError::Kernel { name: "token embedding".into(), source: e });
            }
            Table::Dense { blocks, .. } if blocks.len() == 1 => return Ok(blocks[0].clone().select(0, all())),
            Table::Dense { blocks, rows_per_block } => (blocks, *rows_per_block),
        };
        // Rows from each block the ids touch, then back into the ids' order.
        let mut parts = Vec::new();
        let mut order = vec![0i32; ids.len()];
        let mut taken = 0;
        for (b, block) in blocks.iter().enumerate() {
            let start = b * rows_per_block;
            let local: Vec<(usize, i32)> = ids
                .iter()
                .enumerate()
                .filter(|(_, id)| (**id as usize) / rows_per_block == b)
                .map(|(pos, &id)| (pos, (id as usize - start) as i32))
                .collect();
            if local.is_empty() {
                continue;
            }
            for (k, (pos, _)) in local.iter().enumerate() {
                order[*pos] = (taken + k) as i32;
            }
            taken += local.len();
            parts.push(block.clone().select(0, index(local.into_iter().map(|(_, r)| r).collect())));
        }
        let gathered = Tensor::cat(parts, 0);
        Ok(if order.iter().enumerate().all(|(i, &o)| o as usize == i) { gathered } else { gathered.select(0, index(order)) })
    }
}
