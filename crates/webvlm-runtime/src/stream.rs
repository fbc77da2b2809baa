//! Turning generated ids into text deltas. Decoding the whole reply each time and emitting the
//! new suffix keeps multi-byte characters split across tokens intact: a delta is held back while
//! the text ends in U+FFFD (an incomplete UTF-8 sequence).

use webvlm_model::{Result, Tokenizer};

/// Accumulates ids and yields what a reader has not seen yet.
#[derive(Debug, Default, Clone)]
pub struct TextStream {
    ids: Vec<u32>,
    emitted: usize,
    text: String,
}

impl TextStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one id; returns the new text (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String> {
        self.ids.push(id);
        let text = tokenizer.decode(&self.ids)?;
        if text.ends_with('\u{FFFD}') || !text.is_char_boundary(self.emitted.min(text.len())) {
            return Ok(String::new());
        }
        let delta = text.get(self.emitted..).unwrap_or("").to_string();
        self.emitted = text.len();
        self.text = text;
        Ok(delta)
    }

    /// The end of the stream: whatever was held back waiting for the rest of a UTF-8
    /// character is emitted as decoded (a trailing U+FFFD, as `tokenizer.decode` gives).
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<String> {
        let text = tokenizer.decode(&self.ids)?;
        let delta = text.get(self.emitted.min(text.len())..).unwrap_or("").to_string();
        self.emitted = text.len();
        self.text = text;
        Ok(delta)
    }

    /// Everything decoded so far.
    pub fn text(&self) -> &str {
        &self.text
    }
}
