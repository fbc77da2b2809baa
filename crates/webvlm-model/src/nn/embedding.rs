//! Token embedding lookup.

use burn::tensor::{Int, Tensor, TensorData};

use crate::error::{ModelError, Result};
use crate::weights::WeightReader;

/// `nn.Embedding`.
#[derive(Clone, Debug)]
pub struct Embedding {
    /// `[vocab, dim]`
    weight: Tensor<2>,
}

impl Embedding {
    pub fn load(vb: &mut WeightReader, name: &str, vocab: usize, dim: usize) -> Result<Self> {
        Ok(Self { weight: vb.pp(name).take("weight", [vocab, dim])? })
    }

    /// The `[vocab, dim]` matrix (for a tied lm_head).
    pub fn weight(&self) -> Tensor<2> {
        self.weight.clone()
    }

    /// Bytes one looked-up row reads.
    pub fn row_bytes(&self) -> u64 {
        let [vocab, _] = self.weight.dims();
        super::tensor_bytes(&self.weight) / vocab.max(1) as u64
    }

    /// # Shapes
    /// `ids: [n]` → `[n, dim]`
    pub fn forward(&self, ids: &[u32]) -> Result<Tensor<2>> {
        let [vocab, _] = self.weight.dims();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(ModelError::TokenOutOfRange { id, vocab });
        }
        let idx: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [ids.len()]), &self.weight.device());
        Ok(self.weight.clone().select(0, idx))
    }
}
