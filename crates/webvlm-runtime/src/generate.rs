//! Prefill + step-by-step decoding, and follow-up turns that reuse the KV cache.

use std::ops::Deref;

use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};
use webvlm_model::device::{IdsInFlight, read_f32_async};
use webvlm_model::text::KvCache;
use webvlm_model::{ModelError, PreparedPrompt, Vlm};

use crate::error::GenerateError;
use crate::sampling::Sampler;
use webvlm_kernels::sample::{NON_FINITE, finite_row};
use crate::stream::TextStream;

/// What the caller may tune. Defaults: greedy, 256 new tokens, stop at end-of-utterance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationOptions {
    /// Upper bound on generated tokens.
    pub max_new_tokens: usize,
    /// 0 = greedy; otherwise logits are divided by it before sampling.
    pub temperature: f32,
    /// Keep only the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = off).
    pub top_p: f32,
    /// transformers' repetition penalty over prompt and generated ids (1 = off).
    pub repetition_penalty: f32,
    /// RNG seed for sampling.
    pub seed: u64,
    /// Keep going past end-of-sequence tokens.
    pub ignore_eos: bool,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repetition_penalty: 1.0,
            seed: 0,
            ignore_eos: false,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// An end-of-sequence token was produced.
    Stop,
    /// `max_new_tokens` reached.
    Length,
    /// The context window is full.
    Context,
}

/// One decoded token.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub id: u32,
    /// Text a reader has not seen yet (empty for stop tokens and incomplete characters).
    pub text: String,
}

/// What the next token will be chosen from.
enum Pending {
    /// The whole logits row on the host, for the CPU sampler (temperature, penalties, or a
    /// device without our kernels).
    Logits(Vec<f32>),
    /// The pick made on the device (argmax, or the sampler kernel): only its 4 bytes were
    /// read back.
    Token(u32),
    /// The same, its 4 bytes still on their way back.
    InFlight(IdsInFlight),
}

/// A generation in progress. Call [`Generator::prefill`] once, then [`Generator::step`] until it
/// returns `None`. `V` is how the model is held: `&Vlm` natively, `Rc<Vlm>` where the generator
/// must outlive a borrow (the browser session keeps it between JavaScript calls).
pub struct Generator<V: Deref<Target = Vlm>> {
    vlm: V,
    opts: GenerationOptions,
    sampler: Sampler,
    cache: KvCache,
    prompt: PreparedPrompt,
    /// Prompt ids followed by generated ids (what the repetition penalty looks at).
    seen: Vec<u32>,
    generated: Vec<u32>,
    stream: TextStream,
    next: Option<Pending>,
    /// The logits the pending token comes from, still on the device (read only on request).
    logits: Option<Tensor<2>>,
    /// The pending token's id on the device, when it was picked there: the next step embeds
    /// it from there and uploads nothing.
    device_id: Option<Tensor<1, Int>>,
    /// A wgpu device: the token is picked there (argmax when greedy, else `sample.wgsl`).
    device_pick: bool,
    /// The ids the repetition penalty applies to, as the device sampler's bit mask (made at
    /// the first device-sampled pick, then updated by the kernel).
    seen_mask: Option<Tensor<1, Int>>,
    finished: Option<FinishReason>,
    /// Prompt positions already in the cache when prefill starts (reused from an earlier turn).
    reused: usize,
    /// Image features from [`Generator::encode`], waiting for the prefill.
    features: Option<Tensor<2>>,
}

impl<V: Deref<Target = Vlm>> Generator<V> {
    pub fn new(vlm: V, prompt: PreparedPrompt, opts: GenerationOptions) -> Result<Self, GenerateError> {
        let capacity = Self::check(&vlm, &prompt, &opts)?;
        let cache = vlm.model.new_cache(capacity);
        Self::with_cache(vlm, prompt, opts, cache, 0)
    }

    /// The next turn of a conversation (or any new prompt): positions whose ids the cache
    /// already holds are kept, so only the new suffix is prefilled. The cache holds exactly the
    /// ids that were run through the decoder, so reuse is decided by comparing ids and is
    /// correct for any prompt; a suffix that would cut through image tokens starts over.
    pub fn follow_up(self, prompt: PreparedPrompt, opts: GenerationOptions) -> Result<Self, GenerateError> {
        let capacity = Self::check(&self.vlm, &prompt, &opts)?;
        let Self { vlm, mut cache, seen, .. } = self;
        let cached = &seen[..cache.len().min(seen.len())];
        let mut common = cached.iter().zip(&prompt.input_ids).take_while(|(a, b)| a == b).count();
        // At least one position must run to produce logits.
        common = common.min(prompt.input_ids.len().saturating_sub(1));
        let image_id = vlm.config().image_token_id;
        let suffix_has_image = vlm.model.has_vision() && prompt.input_ids[common..].contains(&image_id);
        if suffix_has_image {
            common = 0;
        }
        cache.truncate(common);
        cache.grow(capacity);
        Self::with_cache(vlm, prompt, opts, cache, common)
    }

    /// Validate options and prompt length; the cache capacity this generation needs.
    fn check(vlm: &Vlm, prompt: &PreparedPrompt, opts: &GenerationOptions) -> Result<usize, GenerateError> {
        Sampler::new(opts)?;
        let context = vlm.model.context_length();
        if prompt.input_ids.len() >= context {
            return Err(ModelError::ContextOverflow { tokens: prompt.input_ids.len(), context }.into());
        }
        Ok((prompt.input_ids.len() + opts.max_new_tokens).min(context))
    }

    fn with_cache(
        vlm: V,
        prompt: PreparedPrompt,
        opts: GenerationOptions,
        cache: KvCache,
        reused: usize,
    ) -> Result<Self, GenerateError> {
        let sampler = Sampler::new(&opts)?;
        let device_pick = webvlm_kernels::gpu::is_wgpu(vlm.model.device());
        Ok(Self {
            vlm,
            seen: prompt.input_ids.clone(),
            prompt,
            sampler,
            device_pick,
            seen_mask: None,
            opts,
            cache,
            generated: Vec::new(),
            stream: TextStream::new(),
            next: None,
            logits: None,
            device_id: None,
            finished: None,
            reused,
            features: None,
        })
    }

    /// Prompt positions taken from an earlier turn's cache instead of being prefilled.
    pub fn reused_positions(&self) -> usize {
        self.reused
    }

    /// Whether the prefill will run the vision tower (an image, and no reused cache).
    pub fn needs_encode(&self) -> bool {
        self.reused == 0 && self.prompt.image.is_some() && self.features.is_none()
    }

    /// Run the vision tower and connector now and wait until the GPU has finished, so that a
    /// caller can time the image encode apart from the prefill. Optional: `prefill` encodes
    /// whatever has not been encoded.
    pub async fn encode(&mut self) -> Result<(), GenerateError> {
        if !self.needs_encode() {
            return Ok(());
        }
        let Some(image) = &self.prompt.image else { return Ok(()) };
        let features = self.vlm.model.encode_image(image)?;
        webvlm_model::device::wait(self.vlm.model.device()).await?;
        self.features = Some(features);
        Ok(())
    }

    /// Encode the image (unless [`Generator::encode`] did), run the (not yet cached part of
    /// the) prompt through the decoder and keep the last logits.
    pub async fn prefill(&mut self) -> Result<(), GenerateError> {
        let embeds = if self.reused == 0 {
            self.cache.clear();
            match self.features.take() {
                Some(features) => self.vlm.model.embed(&self.prompt.input_ids, Some(&features))?,
                None => self.vlm.embed_prompt(&self.prompt)?,
            }
        } else {
            self.vlm.model.embed(&self.prompt.input_ids[self.reused..], None)?
        };
        // M-RoPE positions matter for a prompt with an image; a reused prefix already holds it,
        // and text after it continues from the cache's next position.
        let mrope = if self.reused == 0 { self.prompt.positions.as_deref() } else { None };
        let logits = self.vlm.model.forward_at(embeds, &mut self.cache, mrope, false)?;
        // The first id is awaited here, so that a prefill ends when its work has run.
        self.next = Some(match self.choose_from(logits).await? {
            Pending::InFlight(read) => Pending::Token(first_id(read.wait().await?)?),
            pending => pending,
        });
        if self.opts.max_new_tokens == 0 {
            self.finished = Some(FinishReason::Length);
        }
        Ok(())
    }

    /// Produce the next token, or `None` once finished. Dropping the generator between steps
    /// is how a caller aborts.
    ///
    /// When the token was picked on the device, the next token's whole step (its embedding
    /// looked up from the id on the device, the decoder, the pick, the copy of the new id) is
    /// recorded and submitted *before* this token's id is awaited, so the device never waits
    /// for the host between tokens. A stop token is then seen one step late: the step recorded
    /// after it is discarded and its cache position dropped.
    pub async fn step(&mut self) -> Result<Option<Step>, GenerateError> {
        if self.finished.is_some() {
            return Ok(None);
        }
        let pending = self.next.take().ok_or_else(|| GenerateError::InvalidOption("step() called before prefill()".into()))?;
        self.logits = None;
        let device_id = self.device_id.take();
        let known_stop = matches!(pending, Pending::Token(id) if self.is_stop(id));
        let room = self.generated.len() + 1 < self.opts.max_new_tokens && self.cache.len() < self.cache.capacity();
        let mut ahead = None;
        if let (Some(ids), true, false) = (&device_id, room, known_stop) {
            if let Some(embeds) = self.vlm.model.embed_device(ids.clone()) {
                let logits = self.vlm.model.forward(embeds, &mut self.cache, false)?;
                ahead = Some(self.choose_from(logits).await?);
            }
        }
        let id = match pending {
            Pending::Token(id) => id,
            Pending::InFlight(read) => first_id(read.wait().await?)?,
            Pending::Logits(logits) if !finite_row(&logits) => NON_FINITE,
            Pending::Logits(logits) => self.sampler.sample(&logits, &self.seen),
        };
        if id == NON_FINITE {
            return Err(GenerateError::NonFiniteLogits { token: self.generated.len() });
        }
        self.seen.push(id);
        self.generated.push(id);
        let is_stop = self.is_stop(id);
        let mut text = if is_stop { String::new() } else { self.stream.push(&self.vlm.tokenizer, id)? };
        if is_stop {
            self.finished = Some(FinishReason::Stop);
            if ahead.take().is_some() {
                // The step recorded after the stop token put it in the cache; nothing else did.
                self.cache.truncate(self.cache.len() - 1);
                self.logits = None;
                self.device_id = None;
            }
        } else if let Some(next) = ahead {
            self.next = Some(next);
        } else if self.generated.len() >= self.opts.max_new_tokens {
            self.finished = Some(FinishReason::Length);
        } else if self.cache.len() >= self.cache.capacity() {
            self.finished = Some(FinishReason::Context);
        } else {
            let embeds = match device_id.and_then(|ids| self.vlm.model.embed_device(ids)) {
                Some(embeds) => embeds,
                None => self.vlm.model.embed(&[id], None)?,
            };
            let logits = self.vlm.model.forward(embeds, &mut self.cache, false)?;
            self.next = Some(self.choose_from(logits).await?);
        }
        if self.finished.is_some() {
            // Bytes held back for a character that will never complete are part of the answer.
            text.push_str(&self.stream.finish(&self.vlm.tokenizer)?);
        }
        Ok(Some(Step { id, text }))
    }

    fn is_stop(&self, id: u32) -> bool {
        !self.opts.ignore_eos && self.vlm.stop_ids.contains(&id)
    }

    /// What the next token is chosen from: on a wgpu device the token is picked there and
    /// only its id comes back (4 bytes, not the `[vocab]` row), its read started but not
    /// awaited; elsewhere the row is read for the CPU sampler.
    async fn choose_from(&mut self, logits: Tensor<2>) -> Result<Pending, GenerateError> {
        if !self.device_pick {
            return Ok(Pending::Logits(read_f32_async(logits).await?));
        }
        let kernel_error = |name: &str, e: webvlm_kernels::error::KernelError| ModelError::Kernel { name: name.into(), source: e };
        let id = if self.sampler.is_greedy() {
            webvlm_kernels::ops::argmax(logits.clone()).map_err(|e| kernel_error("argmax", e))?
        } else {
            let vocab = logits.dims()[1];
            let mask = match self.seen_mask.take() {
                Some(mask) => mask,
                None => webvlm_kernels::ops::seen_mask(&self.seen, vocab, &logits.device()),
            };
            let draw = self.sampler.take_draw();
            let (id, mask) = webvlm_kernels::ops::sample(logits.clone(), mask, self.sampler.settings(), self.sampler.seed(), draw)
                .map_err(|e| kernel_error("sample", e))?;
            self.seen_mask = Some(mask);
            id
        };
        let read = IdsInFlight::start(id.clone());
        self.logits = Some(logits);
        self.device_id = Some(id);
        Ok(Pending::InFlight(read))
    }

    /// The logits the next token will be sampled from (after `prefill`, and after each step
    /// that did not finish), before any sampling transform. Reads them from the device when
    /// the token was picked there.
    pub async fn next_logits(&self) -> Result<Option<Vec<f32>>, GenerateError> {
        match (&self.next, &self.logits) {
            (Some(Pending::Logits(l)), _) => Ok(Some(l.clone())),
            (Some(Pending::Token(_) | Pending::InFlight(_)), Some(t)) => Ok(Some(read_f32_async(t.clone()).await?)),
            _ => Ok(None),
        }
    }

    /// Ids generated so far (a stop token included).
    pub fn generated(&self) -> &[u32] {
        &self.generated
    }

    /// Text generated so far.
    pub fn text(&self) -> &str {
        self.stream.text()
    }

    pub fn prompt(&self) -> &PreparedPrompt {
        &self.prompt
    }

    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.finished
    }
}

/// The one id a pick read back.
fn first_id(ids: Vec<u32>) -> Result<u32, GenerateError> {
    Ok(ids.first().copied().ok_or_else(|| ModelError::Device("the device pick read back no id".into()))?)
}
