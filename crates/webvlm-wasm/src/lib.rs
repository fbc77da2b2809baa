//! webvlm in the browser: the wasm-bindgen surface the web/ package's worker drives.
//!
//! A [`Session`] owns the WebGPU device, one loaded model and the conversation's generator (and
//! so its KV cache). Generation is `start` → `prefill` → `step`… so that the worker gets back to
//! its event loop between tokens: an abort is simply not calling `step` again. Loading is
//! `beginLoad` → one `feed` per shard → `build` → `finishLoad` for the same reason: the worker
//! awaits between shards (an abort lands within one) and the loaded model stays in use until the
//! new one is complete and every allocation it made has succeeded. Bytes come from JavaScript: the small files through a read callback, each
//! shard written by the worker straight into this module's memory (OPFS sync access handles
//! read into it), so nothing here fetches or stores anything.
#![cfg(target_family = "wasm")]

mod errors;
mod source;

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Function, Promise};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use webvlm_model::prompt::Message;
use webvlm_model::{Check, PackedLoad, RgbImage, Vlm};
use webvlm_runtime::{FinishReason, GenerationOptions, Generator};

use errors::{JsResult, named};
use source::JsSource;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Test hook: panic, which traps the module (`WebAssembly.RuntimeError`) as any bug would; the
/// package must then report `EngineCrashedError`, stop the worker and load again cleanly.
#[wasm_bindgen(js_name = debugTrap)]
pub fn debug_trap() {
    panic!("a trap requested by a test (debug.trap)");
}

/// The GPU memory a packed model will need, from its manifest alone (before any download):
/// `{weights, kvPerPosition, scratch, context}` bytes and positions, plus `fits`: the longest
/// context within `budget` bytes ([`webvlm_model::memory::MemoryPlan::context_within`]), `null`
/// when not even `min_context` positions fit. Without a budget `fits` is the model's context.
#[wasm_bindgen(js_name = planMemory)]
pub fn plan_memory(manifest: &str, budget: Option<f64>, min_context: usize) -> Result<JsValue, JsValue> {
    let manifest = webvlm_model::weights::packed::Manifest::from_json(manifest).map_err(errors::model)?;
    let plan = webvlm_model::memory::MemoryPlan::from_manifest(&manifest).map_err(errors::model)?;
    let fits = match budget {
        Some(b) => plan.context_within(b.max(0.0) as u64, min_context),
        None => Some(plan.context),
    };
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Planned {
        #[serde(flatten)]
        plan: webvlm_model::memory::MemoryPlan,
        fits: Option<usize>,
    }
    to_js(&Planned { plan, fits })
}

thread_local! {
    // burn registers one wgpu runtime per process and refuses to reconfigure it: every session
    // shares the first device.
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
}

async fn device() -> JsResult<Device> {
    if let Some(d) = DEVICE.with(|d| d.borrow().clone()) {
        return Ok(d);
    }
    let device = Device::wgpu_options().tasks_max(webvlm_model::device::TASKS_PER_SUBMIT).init_async().await.map_err(|e| {
        named("WebGPUUnavailableError", format!("could not create a WebGPU device: {e}"))
    })?;
    DEVICE.with(|d| *d.borrow_mut() = Some(device.clone()));
    webvlm_kernels::counters::install();
    Ok(device)
}

struct Inner {
    device: Device,
    vlm: Option<Rc<Vlm>>,
    generator: Option<Generator<Rc<Vlm>>>,
    /// A prefill or step is awaiting the GPU (the generator is out of `generator`).
    busy: bool,
}

/// One model on one device, with the conversation's state.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<RefCell<Inner>>,
}

/// What `load` reports about the model.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModelInfo {
    model_type: String,
    family: &'static str,
    family_name: &'static str,
    architecture: String,
    context_length: usize,
    image_seq_len: usize,
    vocab_size: usize,
    /// Weight bytes one decoded token reads (the decode roofline).
    decode_weight_bytes: u64,
    /// The model's `do_image_splitting` (false for text-only models).
    image_splitting: bool,
}

/// `start`'s request: the whole conversation (earlier turns let the KV cache be reused) and
/// generation options in the runtime's own snake_case form.
#[derive(Deserialize)]
struct StartRequest {
    messages: Vec<Message>,
    #[serde(default)]
    options: GenerationOptions,
    /// Override the model's `do_image_splitting`.
    #[serde(default)]
    image_splitting: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GpuMemoryOut {
    in_use: u64,
    reserved: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    prompt_tokens: usize,
    reused_tokens: usize,
    image_tokens: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepOut {
    token_id: Option<u32>,
    text: String,
    done: bool,
    finish_reason: Option<FinishReason>,
}

#[wasm_bindgen]
impl Session {
    /// Create the WebGPU device (burn asks for every feature the adapter offers, `shader-f16`
    /// included, and the adapter's own limits).
    pub async fn create() -> Result<Session, JsValue> {
        let device = device().await?;
        Ok(Session { inner: Rc::new(RefCell::new(Inner { device, vlm: None, generator: None, busy: false })) })
    }

    /// Begin loading a packed model: `read(name)` returns the bytes of `manifest.json` and of
    /// the small files (config, tokenizer, processor settings), `undefined` for a file the
    /// model lacks; `names` lists the model's files. The shards follow through the returned
    /// [`Loading`], one at a time; the loaded model (if any) stays in use until
    /// [`Session::finish_load`].
    #[wasm_bindgen(js_name = beginLoad)]
    pub fn begin_load(&self, read: Function, names: Vec<String>) -> Result<Loading, JsValue> {
        let device = self.inner.borrow().device.clone();
        let source = JsSource::new(read, names);
        let load = PackedLoad::begin(&source, &device).map_err(errors::model)?;
        Ok(Loading { load: Some(load), built: None, buffer: Vec::new(), device })
    }

    /// Put the model `loading` built ([`Loading::build`]) in place of the loaded one (whose GPU
    /// memory goes, and with it the conversation).
    #[wasm_bindgen(js_name = finishLoad)]
    pub fn finish_load(&self, loading: &mut Loading) -> Result<JsValue, JsValue> {
        if self.inner.borrow().busy {
            return Err(named("BusyError", "a generation is running; abort it before loading"));
        }
        let vlm = loading.built.take().ok_or_else(|| named("WebVLMError", "the load was not built (or has finished)"))?;
        let cfg = vlm.config();
        let info = ModelInfo {
            model_type: cfg.model_type.clone(),
            family: if vlm.model.has_vision() { "vlm" } else { "text" },
            family_name: cfg.family.name(),
            architecture: cfg.architectures.first().cloned().unwrap_or_else(|| cfg.family.architectures()[0].to_string()),
            context_length: vlm.model.context_length(),
            image_seq_len: vlm.image_seq_len,
            vocab_size: cfg.text_config.vocab_size,
            decode_weight_bytes: vlm.model.decoder().decode_weight_bytes(),
            image_splitting: vlm.image_processor.as_ref().is_some_and(|p| p.splits_images()),
        };
        let mut inner = self.inner.borrow_mut();
        inner.generator = None;
        inner.vlm = Some(Rc::new(vlm));
        webvlm_kernels::release_free_memory(&inner.device);
        to_js(&info)
    }

    /// Prepare a generation: render the conversation, preprocess the image (RGBA pixels,
    /// `width`×`height`) and tokenize. Positions an earlier turn already ran are reused.
    pub fn start(&self, request: JsValue, rgba: Option<Vec<u8>>, width: u32, height: u32) -> Result<JsValue, JsValue> {
        let mut inner = self.inner.borrow_mut();
        if inner.busy {
            return Err(named("BusyError", "a generation is already running"));
        }
        let vlm = inner.vlm.clone().ok_or_else(|| named("WebVLMError", "no model is loaded"))?;
        let request: StartRequest = serde_wasm_bindgen::from_value(request)
            .map_err(|e| named("InvalidRequestError", format!("generation request: {e}")))?;
        let image = match rgba {
            Some(pixels) => Some(RgbImage::from_rgba(width, height, &pixels).map_err(|e| named("ImageError", e.to_string()))?),
            None => None,
        };
        let prepared = vlm.prepare_chat_with(&request.messages, image.as_ref(), request.image_splitting).map_err(errors::model)?;
        let prompt_tokens = prepared.input_ids.len();
        let image_id = vlm.config().image_token_id;
        let image_tokens = prepared.input_ids.iter().filter(|&&id| id == image_id).count();
        let generator = match inner.generator.take() {
            Some(previous) => previous.follow_up(prepared, request.options),
            None => Generator::new(vlm, prepared, request.options),
        }
        .map_err(errors::generate)?;
        let reused_tokens = generator.reused_positions();
        inner.generator = Some(generator);
        to_js(&Started { prompt_tokens, reused_tokens, image_tokens })
    }

    /// Run the vision tower now; resolves when the GPU has finished it (so it can be timed
    /// apart from the prefill). Optional: `prefill` encodes whatever is not encoded yet.
    pub fn encode(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut generator = take_generator(&inner)?;
            let result = generator.encode().await;
            put_back(&inner, generator);
            result.map_err(errors::generate)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// GPU memory held by the runtime's allocator: `{inUse, reserved}` bytes.
    #[wasm_bindgen(js_name = gpuMemory)]
    pub fn gpu_memory(&self) -> Result<JsValue, JsValue> {
        let inner = self.inner.borrow();
        let m = webvlm_kernels::gpu_memory(&inner.device).unwrap_or_default();
        to_js(&GpuMemoryOut { in_use: m.in_use, reserved: m.reserved })
    }

    /// The q4 matvec micro-benchmark against a copy kernel on this device (SmolVLM-256M's
    /// decode shapes, the default kernel variant): rows in the benchmark report's schema.
    #[wasm_bindgen(js_name = benchKernels)]
    pub fn bench_kernels(&self, repeats: u32) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let device = {
                let inner = inner.borrow();
                if inner.busy {
                    return Err(named("BusyError", "a generation is running"));
                }
                inner.device.clone()
            };
            let performance = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))?;
            let now_fn: Function = js_sys::Reflect::get(&performance, &JsValue::from_str("now"))?.dyn_into()?;
            let clock = move || now_fn.call0(&performance).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) / 1000.0;
            let shapes = webvlm_kernels::bench::browser_shapes();
            let rows = webvlm_kernels::bench::bench_kernels_with(&device, &shapes, repeats.max(1) as usize, false, &clock)
                .await
                .map_err(|e| named("DeviceError", e.to_string()))?;
            let rows: Vec<webvlm_runtime::bench::KernelBenchRow> = rows.iter().map(Into::into).collect();
            to_js(&rows)
        })
    }

    /// Encode the image and run the prompt; resolves when the first token's logits are read.
    pub fn prefill(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut generator = take_generator(&inner)?;
            let result = generator.prefill().await;
            put_back(&inner, generator);
            result.map_err(errors::generate)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The next token: `{tokenId, text, done, finishReason}`; `done` is set on the last one.
    pub fn step(&self) -> Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let mut generator = take_generator(&inner)?;
            let result = generator.step().await;
            let finish_reason = generator.finish_reason();
            if result.is_ok() {
                put_back(&inner, generator);
            } else {
                // A failed step leaves the conversation's cache suspect (a numerical fault, a
                // lost device): the next turn starts afresh.
                inner.borrow_mut().busy = false;
            }
            let out = match result.map_err(errors::generate)? {
                Some(step) => StepOut {
                    token_id: Some(step.id),
                    text: step.text,
                    done: finish_reason.is_some(),
                    finish_reason,
                },
                None => StepOut { token_id: None, text: String::new(), done: true, finish_reason },
            };
            to_js(&out)
        })
    }

    /// Forget the conversation: its KV cache and activations go, and with them the allocator's
    /// pages they freed (after a refused allocation, the pages the device refused).
    pub fn reset(&self) {
        let mut inner = self.inner.borrow_mut();
        if !inner.busy {
            inner.generator = None;
            webvlm_kernels::release_free_memory(&inner.device);
        }
    }

    /// Release the model's GPU memory: its buffers, and the allocator's pages they freed.
    pub fn unload(&self) {
        let mut inner = self.inner.borrow_mut();
        inner.generator = None;
        inner.vlm = None;
        webvlm_kernels::release_free_memory(&inner.device);
    }

    /// Whether a model is loaded.
    #[wasm_bindgen(getter)]
    pub fn loaded(&self) -> bool {
        self.inner.borrow().vlm.is_some()
    }
}

/// A packed model being loaded shard by shard (see [`Session::begin_load`]). Freeing it
/// before [`Session::finish_load`] abandons the load and its GPU buffers.
#[wasm_bindgen]
pub struct Loading {
    load: Option<PackedLoad>,
    /// The model, once every shard was fed and [`Loading::build`] ran.
    built: Option<Vlm>,
    /// The next shard, written in place by JavaScript (one copy from storage to here).
    buffer: Vec<u8>,
    device: Device,
}

impl Drop for Loading {
    fn drop(&mut self) {
        // An abandoned load: its uploaded buffers go, and the pages they took with them.
        if self.load.take().is_some() || self.built.take().is_some() {
            webvlm_kernels::release_free_memory(&self.device);
        }
    }
}

#[wasm_bindgen]
impl Loading {
    /// The file name of the shard to feed next; `undefined` once all were fed.
    #[wasm_bindgen(js_name = nextShard)]
    pub fn next_shard(&self) -> Option<String> {
        self.load.as_ref()?.next_shard().map(|s| s.file.clone())
    }

    /// A view of `len` bytes of this module's memory to write the next shard into. It is valid
    /// only until the next call into the module (a growing memory detaches it): fill it, then
    /// call [`Loading::feed`] straight away.
    #[wasm_bindgen(js_name = shardBuffer)]
    pub fn shard_buffer(&mut self, len: usize) -> js_sys::Uint8Array {
        self.buffer.clear();
        self.buffer.resize(len, 0);
        // SAFETY: the view is used before any other call into the module (documented above),
        // so the buffer neither moves nor is freed while JavaScript writes into it.
        unsafe { js_sys::Uint8Array::view(&self.buffer) }
    }

    /// Upload the tensors completed by the shard now in the buffer. `verified`: the caller has
    /// checked these bytes against the manifest's sha256 (the shell does at download and
    /// records it), so only the size is checked here; otherwise they are hashed.
    pub fn feed(&mut self, verified: bool) -> Result<(), JsValue> {
        let load = self.load.as_mut().ok_or_else(|| named("WebVLMError", "this load has already finished"))?;
        let check = if verified { Check::SizeOnly } else { Check::Sha256 };
        load.feed(&self.buffer, check).map_err(errors::model)
    }

    /// Assemble the model from the fed shards (every allocation of the load is made by now),
    /// holding at most `context` positions per conversation when given; the session's model is
    /// not touched until [`Session::finish_load`].
    pub fn build(&mut self, context: Option<usize>) -> Result<(), JsValue> {
        let load = self.load.take().ok_or_else(|| named("WebVLMError", "this load has already been built"))?;
        self.buffer = Vec::new();
        let mut vlm = load.finish().map_err(errors::model)?;
        if let Some(positions) = context {
            vlm.model.limit_context(positions);
        }
        self.built = Some(vlm);
        Ok(())
    }
}

fn take_generator(inner: &Rc<RefCell<Inner>>) -> JsResult<Generator<Rc<Vlm>>> {
    let mut inner = inner.borrow_mut();
    if inner.busy {
        return Err(named("BusyError", "a prefill or step is already running"));
    }
    let generator = inner.generator.take().ok_or_else(|| named("WebVLMError", "no generation was started"))?;
    inner.busy = true;
    Ok(generator)
}

fn put_back(inner: &Rc<RefCell<Inner>>, generator: Generator<Rc<Vlm>>) {
    let mut inner = inner.borrow_mut();
    inner.busy = false;
    // An `unload` during the await dropped the model: the generator goes with it.
    if inner.vlm.is_some() {
        inner.generator = Some(generator);
    }
}

fn to_js<T: Serialize>(value: &T) -> JsResult<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| named("WebVLMError", format!("result conversion: {e}")))
}
