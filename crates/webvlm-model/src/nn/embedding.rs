//! Token embedding lookup. A large table (Qwen's 151936 × 1536 is 933 MB in f32) lives in
//! row blocks that each fit one GPU binding; a lookup selects from the blocks its ids fall in.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{ModelError, Result};
use crate::weights::WeightReader;

/// `nn.Embedding`.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// Row blocks of the `[vocab, dim]` table, all but the last `rows_per_block` rows.
    blocks: Vec<Tensor<2>>,
    rows_per_block: usize,
    vocab: usize,
    dim: usize,
}

impl Embedding {
    pub fn load(vb: &mut WeightReader, name: &str, vocab: usize, dim: usize) -> Result<Self> {
        let blocks = vb.pp(name).take_row_blocks("weight", [vocab, dim])?;
        let rows_per_block = blocks.first().map_or(vocab, |b| b.dims()[0]).max(1);
        Ok(Self { blocks, rows_per_block, vocab, dim })
    }

    /// The `[vocab, dim]` matrix as one tensor (for a tied dense lm_head); an error when the
    /// table is too large for one buffer.
    pub fn weight(&self) -> Result<Tensor<2>> {
        match self.blocks.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(ModelError::TooLarge {
                name: "the tied lm_head (token embedding)".into(),
                limit: crate::weights::MAX_DENSE_BINDING_BYTES,
                hint: "quantise the model (webvlm convert --quant q8 or q4), which gives the tied lm_head its own quantised copy".into(),
            }),
        }
    }

    pub fn device(&self) -> burn::tensor::Device {
        self.blocks[0].device()
    }

    /// Bytes one looked-up row reads.
    pub fn row_bytes(&self) -> u64 {
        (self.dim * self.blocks[0].dtype().size()) as u64
    }

    /// The rows of ids that are already on the device (a token picked there), so the next
    /// step needs no upload; `None` for a table held in several blocks.
    ///
    /// # Shapes
    /// `ids: [n]` → `[n, dim]`
    pub fn forward_device(&self, ids: Tensor<1, Int>) -> Option<Tensor<2>> {
        match self.blocks.as_slice() {
            [one] => Some(one.clone().select(0, ids)),
            _ => None,
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
        if self.blocks.len() == 1 {
            return Ok(self.blocks[0].clone().select(0, index(ids.iter().map(|&i| i as i32).collect())));
        }
        // Rows from each block the ids touch, then back into the ids' order.
        let mut parts = Vec::new();
        let mut order = vec![0i32; ids.len()];
        let mut taken = 0;
        for (b, block) in self.blocks.iter().enumerate() {
            let start = b * self.rows_per_block;
            let local: Vec<(usize, i32)> = ids
                .iter()
                .enumerate()
                .filter(|(_, id)| (**id as usize) / self.rows_per_block == b)
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
