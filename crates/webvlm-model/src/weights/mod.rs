//! Weights: read safetensors shards one at a time, convert to f32, upload to the device, and
//! hand them out by name through a prefixing [`WeightReader`] so that the module tree mirrors
//! the checkpoint tree.
//!
//! Every tensor is *taken* exactly once; what is left at the end is reported as
//! [`ModelError::UnusedTensors`], which catches checkpoints of another family or a name-remap bug.

pub mod convert;
pub mod gguf;
pub mod packed;
mod safetensors_file;

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};
use webvlm_kernels::{DeviceQuantMatrix, DeviceTable, QuantMatrix, QuantScheme};

use crate::error::{ModelError, Result};
use crate::source::ModelSource;

pub use safetensors_file::read_safetensors_into;

/// A tensor on the device until a component takes it: dense f32 (flat, with its logical
/// shape) or a block-quantised matrix.
enum Stored {
    Dense { data: Tensor<1>, shape: Vec<usize> },
    /// A matrix larger than one GPU binding, cut into row blocks of at most
    /// [`MAX_DENSE_BINDING_BYTES`] (a 151936×1536 token embedding is 933 MB in f32).
    Rows { blocks: Vec<Tensor<2>>, shape: Vec<usize> },
    Quant(DeviceQuantMatrix),
    /// A token embedding kept compact (block-quantised or 16-bit), read by row.
    Table(DeviceTable),
}

/// Largest dense tensor kept as one buffer: WebGPU's default `maxStorageBufferBindingSize`
/// (128 MiB), which lavapipe, SwiftShader and most phones report.
pub const MAX_DENSE_BINDING_BYTES: usize = 128 << 20;

/// How to load weights.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Quantise linear weights of a Hugging Face checkpoint at load time (a packed model is
    /// already quantised and ignores this).
    pub quant: Option<QuantScheme>,
    /// The model ties lm_head to the token embeddings: when quantising, also make a quantised
    /// `lm_head.weight` from them, since the embedding itself stays dense for lookups.
    pub tied_lm_head: bool,
}

/// Which tensors are stored quantised: 2-D linear weights. Embeddings (token, position, and the
/// vision patch embedding) stay dense: a lookup reads one row, so quantising saves no bandwidth
/// per token, and the first layers of the vision tower are the most sensitive to error. Norms
/// and biases are 1-D and tiny.
pub fn quantizable(name: &str, shape: &[usize]) -> bool {
    shape.len() == 2 && name.ends_with(".weight") && !name.contains("embed")
}

/// The tensor lm_head is tied to: the decoder's token embedding, in the Idefics3 or LLaVA layout
/// or in a text-only checkpoint.
pub fn is_embedding(name: &str) -> bool {
    matches!(
        name,
        "model.text_model.embed_tokens.weight" | "model.language_model.embed_tokens.weight" | "model.embed_tokens.weight"
    )
}

/// LLaVA and Qwen-VL checkpoint prefixes as files spell them and the names transformers 5 holds in memory,
/// which the loader reads: the llava-hf Hub checkpoints (transformers 4:
/// `vision_tower.vision_model.*`, `language_model.model.*`) and what transformers 5.23's
/// `save_pretrained` writes (`vision_tower.*`, `language_model.model.*`). First match wins.
const LEGACY_PREFIXES: &[(&str, &str)] = &[
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
    ("vision_tower.vision_model.", "model.vision_tower."),
    ("model.vision_tower.vision_model.", "model.vision_tower."),
    ("vision_tower.", "model.vision_tower."),
    ("multi_modal_projector.", "model.multi_modal_projector."),
    // Qwen-VL keeps its tower at `visual.*` on disk, `model.visual.*` in transformers 5.
    ("visual.", "model.visual."),
];

/// The transformers-5 name of a checkpoint tensor: legacy LLaVA layouts are renamed, so one
/// loader serves both (what transformers' own key mapping does when it loads them).
pub fn canonical_name(name: &str) -> String {
    for (old, new) in LEGACY_PREFIXES {
        if let Some(rest) = name.strip_prefix(old) {
            return format!("{new}{rest}");
        }
    }
    name.to_string()
}


/// All tensors of a checkpoint, on one device.
pub struct WeightStore {
    tensors: BTreeMap<String, Stored>,
    device: Device,
}

impl WeightStore {
    /// Load a packed model (`manifest.json` present) or a Hugging Face checkpoint
    /// (`model.safetensors`, or every shard of `model.safetensors.index.json`). Shards are read,
    /// converted and uploaded one at a time so host memory holds at most one.
    pub fn load(source: &dyn ModelSource, device: &Device, options: LoadOptions) -> Result<Self> {
        let mut store = Self::empty(device);
        if let Some(text) = source.read_string(packed::MANIFEST)? {
            let mut reader = packed::ShardReader::new(packed::Manifest::from_json(&text)?);
            while let Some(shard) = reader.next_shard() {
                let bytes = source.read(&shard.file)?.ok_or_else(|| ModelError::MissingFile {
                    file: shard.file.clone(),
                    why: "named by manifest.json".into(),
                })?;
                store.feed_packed(&mut reader, &bytes, packed::Check::Sha256, options)?;
            }
            reader.finish()?;
            return Ok(store);
        }
        if let Some(model) = GgufModel::find(source)? {
            model.for_each_tensor(&mut |name, shape, value| match value {
                gguf::TensorValue::Quant(m) if quantizable(&name, &shape) => store.insert_quant(name, &m),
                gguf::TensorValue::Quant(m) if is_embedding(&name) => store.insert_quant_embedding(name, m, options),
                value => store.insert_hf(name, shape, value.into_dense(), options),
            })?;
            return Ok(store);
        }
        let files = shard_files(source)?;
        let mut result = Ok(());
        for file in files {
            let bytes = source.read(&file)?.ok_or_else(|| ModelError::MissingFile {
                file: file.clone(),
                why: "named by model.safetensors.index.json".into(),
            })?;
            read_safetensors_into(&file, &bytes, &mut |name, shape, values| {
                if result.is_ok() {
                    result = store.insert_hf(name, shape, values, options);
                }
            })?;
            std::mem::replace(&mut result, Ok(()))?;
        }
        Ok(store)
    }

    /// Feed one shard of a packed model and store the tensors it completes.
    pub fn feed_packed(&mut self, reader: &mut packed::ShardReader, bytes: &[u8], check: packed::Check, options: LoadOptions) -> Result<()> {
        for (name, decoded) in reader.feed(bytes, check)? {
            match decoded {
                packed::Decoded::Dense { shape, values } => self.insert(name, shape, values)?,
                packed::Decoded::Quant(m) if is_embedding(&name) => self.insert_quant_embedding(name, m, options)?,
                packed::Decoded::Quant(m) => self.insert_quant(name, &m)?,
            }
        }
        Ok(())
    }

    /// A token embedding stored block-quantised (GGUF files often do, and packed models made
    /// from them keep it) stays so on the device: lookups dequantise the rows they read, and a
    /// tied lm_head, which reads the whole matrix every token, is the same buffers (Q8_0 → q8
    /// is lossless).
    fn insert_quant_embedding(&mut self, name: String, m: QuantMatrix, options: LoadOptions) -> Result<()> {
        let d = DeviceQuantMatrix::upload(&m, &self.device)
            .map_err(|e| ModelError::Kernel { name: name.clone(), source: e })?;
        if options.tied_lm_head && !self.contains("lm_head.weight") {
            self.tensors.insert("lm_head.weight".into(), Stored::Quant(d.clone()));
        }
        self.tensors.insert(name, Stored::Table(DeviceTable::from_matrix(&d)));
        Ok(())
    }

    /// A dense token embedding whose values all fit bf16 or f16 exactly (a bf16 or f16
    /// checkpoint, the usual case) is held in that 16-bit form: the same values in half the
    /// memory. `None` (nothing taken) when some value needs f32.
    fn compact_embedding(&mut self, name: &str, shape: &[usize], values: &[f32]) -> Result<Option<Stored>> {
        let &[n, k] = shape else { return Ok(None) };
        let kernel = |e: webvlm_kernels::KernelError| ModelError::Kernel { name: name.to_string(), source: e };
        if webvlm_kernels::gather::bf16_exact(values) {
            return Ok(Some(Stored::Table(DeviceTable::bf16(values, n, k, &self.device).map_err(kernel)?)));
        }
        if webvlm_kernels::gather::f16_exact(values) {
            let m = QuantMatrix::quantize(values, n, k, QuantScheme::F16).map_err(kernel)?;
            return Ok(Some(Stored::Table(DeviceTable::upload(&m, &self.device).map_err(kernel)?)));
        }
        Ok(None)
    }

    /// A Hugging Face tensor, quantised on the way when `options` ask for it.
    fn insert_hf(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>, options: LoadOptions) -> Result<()> {
        let Some(scheme) = options.quant else {
            return self.insert(name, shape, values);
        };
        if options.tied_lm_head && is_embedding(&name) && !self.contains("lm_head.weight") {
            let m = quantize(&name, &values, &shape, scheme)?;
            self.insert_quant("lm_head.weight".into(), &m)?;
        }
        if quantizable(&name, &shape) {
            let m = quantize(&name, &values, &shape, scheme)?;
            self.insert_quant(name, &m)
        } else {
            self.insert(name, shape, values)
        }
    }

    /// Add one tensor (f32 values, row-major). A matrix over [`MAX_DENSE_BINDING_BYTES`] (or the
    /// device's binding limit, when smaller) is uploaded in row blocks, each its own buffer; a
    /// token embedding whose values are all bf16 or f16 is held in that form.
    pub fn insert(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) -> Result<()> {
        if is_embedding(&name) {
            if let Some(table) = self.compact_embedding(&name, &shape, &values)? {
                self.tensors.insert(name, table);
                return Ok(());
            }
        }
        self.insert_dense(name, shape, values);
        Ok(())
    }

    fn insert_dense(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) {
        let n = values.len();
        let limit = dense_limit(&self.device);
        if shape.len() == 2 && n * 4 > limit && shape[1] > 0 {
            let cols = shape[1];
            let rows_per_block = (limit / 4 / cols).max(1);
            let blocks = values
                .chunks(rows_per_block * cols)
                .map(|c| Tensor::<2>::from_data(TensorData::new(c.to_vec(), [c.len() / cols, cols]), &self.device))
                .collect();
            self.tensors.insert(name, Stored::Rows { blocks, shape });
            return;
        }
        let data = Tensor::<1>::from_data(TensorData::new(values, [n]), &self.device);
        self.tensors.insert(name, Stored::Dense { data, shape });
    }

    /// Upload a block-quantised matrix.
    pub fn insert_quant(&mut self, name: String, m: &QuantMatrix) -> Result<()> {
        let d = DeviceQuantMatrix::upload(m, &self.device)
            .map_err(|e| ModelError::Kernel { name: name.clone(), source: e })?;
        self.tensors.insert(name, Stored::Quant(d));
        Ok(())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// An empty store on the same device.
    pub fn empty_like(other: &Self) -> Self {
        Self::empty(&other.device)
    }

    /// An empty store on `device` (tensors come from [`WeightStore::insert`]).
    pub fn empty(device: &Device) -> Self {
        Self { tensors: BTreeMap::new(), device: device.clone() }
    }

    /// Names of the tensors still held, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors still held.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Move a tensor to another store (lm_head lives at the checkpoint root).
    pub(crate) fn move_to(&mut self, name: &str, other: &mut WeightStore) {
        if let Some(t) = self.tensors.remove(name) {
            other.tensors.insert(name.to_string(), t);
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A reader rooted at `prefix` (e.g. `model.text_model`).
    pub fn reader(&mut self, prefix: &str) -> WeightReader<'_> {
        WeightReader { store: self, prefix: prefix.to_string() }
    }

    /// Fails when tensors remain that no component took.
    pub fn finish(self) -> Result<()> {
        match self.tensors.keys().next() {
            None => Ok(()),
            Some(example) => {
                Err(ModelError::UnusedTensors { count: self.tensors.len(), example: example.clone() })
            }
        }
    }

    fn take<const D: usize>(&mut self, name: &str, expected: [usize; D]) -> Result<Tensor<D>> {
        match self.take_any(name, &expected)? {
            Stored::Dense { data, .. } => Ok(data.reshape(expected)),
            Stored::Rows { .. } => Err(too_large(name)),
            Stored::Quant(m) => Err(ModelError::QuantizedTensor {
                name: name.to_string(),
                scheme: m.scheme().name().into(),
                component: "a dense layer".into(),
            }),
            Stored::Table(t) => Err(ModelError::QuantizedTensor {
                name: name.to_string(),
                scheme: t.format().name().into(),
                component: "a dense layer".into(),
            }),
        }
    }

    fn take_any(&mut self, name: &str, expected: &[usize]) -> Result<Stored> {
        let stored = self
            .tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor { name: name.to_string() })?;
        let found = match &stored {
            Stored::Dense { shape, .. } | Stored::Rows { shape, .. } => shape.clone(),
            Stored::Quant(m) => vec![m.n(), m.k()],
            Stored::Table(t) => vec![t.n(), t.k()],
        };
        if found != expected {
            return Err(ModelError::ShapeMismatch { name: name.to_string(), expected: expected.to_vec(), found });
        }
        Ok(stored)
    }
}

/// The largest dense tensor held as one buffer on `device`: [`MAX_DENSE_BINDING_BYTES`], or the
/// device's binding limit where that is smaller.
fn dense_limit(device: &Device) -> usize {
    let device_limit = webvlm_kernels::DeviceCaps::of_device(device).map_or(u64::MAX, |c| c.max_binding_bytes);
    MAX_DENSE_BINDING_BYTES.min(usize::try_from(device_limit).unwrap_or(usize::MAX))
}

/// A dense matrix that was uploaded in row blocks asked for as one tensor.
fn too_large(name: &str) -> ModelError {
    ModelError::TooLarge {
        name: name.to_string(),
        limit: MAX_DENSE_BINDING_BYTES,
        hint: "quantise the model (webvlm convert --quant q8 or q4), which cuts large matrices into blocks".into(),
    }
}

fn quantize(name: &str, values: &[f32], shape: &[usize], scheme: QuantScheme) -> Result<QuantMatrix> {
    QuantMatrix::quantize(values, shape[0], shape[1], scheme)
        .map_err(|e| ModelError::Kernel { name: name.to_string(), source: e })
}

/// A lookup table as taken: dense row blocks, or compact on the device.
pub enum Lookup {
    Blocks(Vec<Tensor<2>>),
    Table(DeviceTable),
}

/// A linear layer's weight as stored: dense `[out, in]` or block-quantised.
pub enum LinearWeight {
    Dense(Tensor<2>),
    Quant(DeviceQuantMatrix),
}

/// Hands out tensors under a name prefix, checking each shape against the config.
pub struct WeightReader<'a> {
    store: &'a mut WeightStore,
    prefix: String,
}

impl WeightReader<'_> {
    /// A reader one level down: `pp("layers.3")`.
    pub fn pp(&mut self, sub: impl AsRef<str>) -> WeightReader<'_> {
        let prefix = self.full(sub.as_ref());
        WeightReader { store: self.store, prefix }
    }

    pub fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() { name.to_string() } else { format!("{}.{}", self.prefix, name) }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.store.contains(&self.full(name))
    }

    pub fn device(&self) -> Device {
        self.store.device.clone()
    }

    /// Take the tensor `name` (relative to the prefix), which must have shape `shape`.
    pub fn take<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let full = self.full(name);
        self.store.take(&full, shape)
    }

    /// Take a `[rows, cols]` lookup table (a token embedding): kept compact when it was stored
    /// so, else as dense row blocks that each fit one GPU binding. With `dense`, a compact
    /// table is widened to f32 blocks (a tied lm_head multiplies by the whole dense matrix).
    pub fn take_lookup(&mut self, name: &str, shape: [usize; 2], dense: bool) -> Result<Lookup> {
        let full = self.full(name);
        match self.store.take_any(&full, &shape)? {
            Stored::Dense { data, .. } => Ok(Lookup::Blocks(vec![data.reshape(shape)])),
            Stored::Rows { blocks, .. } => Ok(Lookup::Blocks(blocks)),
            Stored::Table(t) if dense => {
                let rows = (dense_limit(&self.store.device) / 4 / shape[1].max(1)).max(1);
                let blocks = t.to_dense_blocks(rows).map_err(|e| ModelError::Kernel { name: full, source: e })?;
                Ok(Lookup::Blocks(blocks))
            }
            Stored::Table(t) => Ok(Lookup::Table(t)),
            Stored::Quant(m) => Err(ModelError::QuantizedTensor {
                name: full,
                scheme: m.scheme().name().into(),
                component: "a lookup table".into(),
            }),
        }
    }

    /// Take and drop every tensor under `sub` (weights a checkpoint carries but the graph never
    /// runs, e.g. the CLIP layers after LLaVA's feature layer); returns how many there were.
    pub fn discard(&mut self, sub: &str) -> usize {
        let prefix = format!("{}.", self.full(sub));
        let names: Vec<String> = self.store.tensors.range(prefix.clone()..).map(|(k, _)| k).take_while(|k| k.starts_with(&prefix)).cloned().collect();
        for name in &names {
            self.store.tensors.remove(name);
        }
        names.len()
    }

    /// Take a linear weight `[out, in]`, dense or quantised.
    pub fn take_linear(&mut self, name: &str, out: usize, inp: usize) -> Result<LinearWeight> {
        let full = self.full(name);
        Ok(match self.store.take_any(&full, &[out, inp])? {
            Stored::Dense { data, .. } => LinearWeight::Dense(data.reshape([out, inp])),
            Stored::Rows { .. } => return Err(too_large(&full)),
            Stored::Quant(m) => LinearWeight::Quant(m),
            Stored::Table(t) => {
                return Err(ModelError::QuantizedTensor { name: full, scheme: t.format().name().into(), component: "a linear layer".into() });
            }
        })
    }
}

/// A llama.cpp-style model: the text model GGUF, plus the `mmproj` GGUF (vision + connector)
/// for a vision-language model.
pub struct GgufModel {
    pub text: Vec<u8>,
    pub mmproj: Option<Vec<u8>>,
}

impl GgufModel {
    /// The directory's `.gguf` files, told apart by their metadata; `None` without any.
    pub fn find(source: &dyn ModelSource) -> Result<Option<Self>> {
        let names: Vec<String> = source.list()?.into_iter().filter(|n| n.ends_with(".gguf")).collect();
        if names.is_empty() {
            return Ok(None);
        }
        let (mut text, mut mmproj) = (Vec::new(), Vec::new());
        for name in &names {
            let bytes = source.read(name)?.ok_or_else(|| ModelError::MissingFile { file: name.clone(), why: "listed".into() })?;
            match gguf::GgufFile::parse(&bytes)?.kind()? {
                gguf::FileKind::Text => text.push(bytes),
                gguf::FileKind::Mmproj(_) => mmproj.push(bytes),
            }
        }
        if text.len() != 1 || mmproj.len() > 1 {
            return Err(ModelError::MissingFile {
                file: "*.gguf".into(),
                why: format!("a GGUF model is one text GGUF, plus one mmproj GGUF for images; found {names:?}"),
            });
        }
        Ok(Some(Self { text: text.remove(0), mmproj: mmproj.pop() }))
    }

    /// Every tensor of the text file, then of the mmproj, under its Hugging Face name and shape.
    /// The GGUF text table names the decoder `model.text_model.*` (Idefics3); it moves to where
    /// the mmproj's family keeps it (`model.language_model.*` for LLaVA and Qwen-VL), or to
    /// `model.*` for a text model alone.
    pub fn for_each_tensor(
        &self,
        f: &mut dyn FnMut(String, Vec<usize>, gguf::TensorValue) -> Result<()>,
    ) -> Result<()> {
        let text_prefix = self.text_prefix()?;
        for bytes in std::iter::once(&self.text).chain(self.mmproj.as_ref()) {
            let file = gguf::GgufFile::parse(bytes)?;
            for t in file.hf_tensors()? {
                let t = t?;
                let name = t.name.replacen("model.text_model.", text_prefix, 1);
                f(name, t.shape, t.value)?;
            }
        }
        Ok(())
    }

    /// Where the decoder's tensors go: the mmproj family's prefix, or `model.` alone.
    fn text_prefix(&self) -> Result<&'static str> {
        Ok(match &self.mmproj {
            None => "model.",
            Some(bytes) => match gguf::GgufFile::parse(bytes)?.kind()? {
                gguf::FileKind::Mmproj(projector) => projector.text_prefix(),
                gguf::FileKind::Text => "model.text_model.",
            },
        })
    }

    /// Every tensor's Hugging Face name, stored GGUF type and shape, nothing decoded.
    pub fn tensor_infos(&self) -> Result<Vec<TensorInfo>> {
        let text_prefix = self.text_prefix()?;
        let mut out = Vec::new();
        for bytes in std::iter::once(&self.text).chain(self.mmproj.as_ref()) {
            for (name, ty, shape) in gguf::GgufFile::parse(bytes)?.hf_tensor_infos()? {
                out.push(TensorInfo { name: name.replacen("model.text_model.", text_prefix, 1), dtype: ty.to_string(), shape });
            }
        }
        Ok(out)
    }
}

/// The safetensors files of a Hugging Face checkpoint, in index order.
pub fn shard_files(source: &dyn ModelSource) -> Result<Vec<String>> {
    const INDEX: &str = "model.safetensors.index.json";
    if let Some(text) = source.read_string(INDEX)? {
        let index: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| ModelError::config(INDEX, e.to_string()))?;
        let map = index
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| ModelError::config(INDEX, "no `weight_map` object"))?;
        let mut files: Vec<String> = Vec::new();
        for value in map.values() {
            let file = value
                .as_str()
                .ok_or_else(|| ModelError::config(INDEX, "weight_map values must be file names"))?;
            if file.contains("..") || file.starts_with('/') {
                return Err(ModelError::config(INDEX, format!("shard name `{file}` leaves the model directory")));
            }
            if !files.iter().any(|f| f == file) {
                files.push(file.to_string());
            }
        }
        files.sort();
        return Ok(files);
    }
    Ok(vec!["model.safetensors".to_string()])
}

/// Name, stored dtype and shape of one checkpoint tensor.
#[derive(Debug, Clone)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
}

/// List every tensor of a checkpoint (or packed model) without converting or uploading anything.
pub fn inspect(source: &dyn ModelSource) -> Result<Vec<TensorInfo>> {
    let mut out = Vec::new();
    if let Some(text) = source.read_string(packed::MANIFEST)? {
        let manifest = packed::Manifest::from_json(&text)?;
        for t in manifest.tensors {
            out.push(TensorInfo { name: t.name, dtype: t.dtype, shape: t.shape });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(out);
    }
    if let Some(model) = GgufModel::find(source)? {
        let mut out = model.tensor_infos()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(out);
    }
    for file in shard_files(source)? {
        let bytes = source.read(&file)?.ok_or_else(|| ModelError::MissingFile {
            file: file.clone(),
            why: "named by model.safetensors.index.json".into(),
        })?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| ModelError::Safetensors { file: file.clone(), message: e.to_string() })?;
        for (name, info) in meta.tensors() {
            out.push(TensorInfo { name: canonical_name(&name), dtype: format!("{:?}", info.dtype), shape: info.shape.clone() });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
