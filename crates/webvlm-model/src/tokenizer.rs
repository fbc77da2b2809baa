//! The model's tokenizer, built from `tokenizer.json` by the `tokenizers` crate.

use crate::error::{ModelError, Result};

/// Encodes prompts and decodes generated ids.
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer").field("vocab", &self.inner.get_vocab_size(true)).finish()
    }
}

impl Tokenizer {
    /// From the bytes of a `tokenizer.json`.
    pub fn from_bytes(json: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(json)
            .map_err(|e| ModelError::Tokenizer(format!("cannot parse tokenizer.json: {e}")))?;
        Ok(Self { inner })
    }

    /// Encode with the tokenizer's own special-token handling, as `tokenizer(text)` does.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, true).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Encode with special tokens treated as plain text (llama.cpp's `parse_special = false`),
    /// for text that is data rather than a prompt.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>> {
        let mut plain = self.inner.clone();
        plain.set_encode_special_tokens(true);
        let enc = plain.encode(text, false).map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decode, dropping special tokens (what a reader sees).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The id of a token such as `<end_of_utterance>`, if the vocabulary has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of `id` (e.g. a config's image token id).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
