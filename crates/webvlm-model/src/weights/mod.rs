//! Weights: read safetensors shards one at a time, convert to f32, upload to the device, and
//! hand them out by name through a prefixing [`WeightReader`] so that the module tree mirrors
//! the checkpoint tree.
//!
//! Every tensor is *taken* exactly once; what is left at the end is reported as
//! [`ModelError::UnusedTensors`], which catches checkpoints of another family or a name-remap bug.

mod safetensors_file;

use std::collections::BTreeMap;

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{ModelError, Result};
use crate::source::ModelSource;

pub use safetensors_file::read_safetensors_into;

/// A tensor on the device, kept flat with its logical shape until a component takes it.
struct Stored {
    data: Tensor<1>,
    shape: Vec<usize>,
}

/// All tensors of a checkpoint, on one device.
pub struct WeightStore {
    tensors: BTreeMap<String, Stored>,
    device: Device,
}

impl WeightStore {
    /// Load `model.safetensors`, or every shard named by `model.safetensors.index.json`.
    /// Shards are read, converted and uploaded one at a time so host memory holds at most one.
    pub fn load(source: &dyn ModelSource, device: &Device) -> Result<Self> {
        let mut store = Self { tensors: BTreeMap::new(), device: device.clone() };
        let files = shard_files(source)?;
        for file in files {
            let bytes = source.read(&file)?.ok_or_else(|| ModelError::MissingFile {
                file: file.clone(),
                why: "named by model.safetensors.index.json".into(),
            })?;
            read_safetensors_into(&file, &bytes, &mut |name, shape, values| {
                store.insert(name, shape, values);
            })?;
        }
        Ok(store)
    }

    /// Add one tensor (f32 values, row-major).
    pub fn insert(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) {
        let n = values.len();
        let data = Tensor::<1>::from_data(TensorData::new(values, [n]), &self.device);
        self.tensors.insert(name, Stored { data, shape });
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// An empty store on the same device.
    pub fn empty_like(other: &Self) -> Self {
        Self { tensors: BTreeMap::new(), device: other.device.clone() }
    }

    /// Number of tensors still held.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Names and shapes of the tensors still held (for `webvlm info`).
    pub fn shapes(&self) -> impl Iterator<Item = (&str, &[usize])> {
        self.tensors.iter().map(|(k, v)| (k.as_str(), v.shape.as_slice()))
    }

    /// Move a tensor out without a shape check (to hand it to another store).
    pub(crate) fn remove_raw(&mut self, name: &str) -> Option<(Vec<usize>, Tensor<1>)> {
        self.tensors.remove(name).map(|s| (s.shape, s.data))
    }

    /// Add an already-uploaded tensor.
    pub(crate) fn insert_tensor(&mut self, name: String, shape: Vec<usize>, data: Tensor<1>) {
        self.tensors.insert(name, Stored { data, shape });
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
        let stored = self
            .tensors
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor { name: name.to_string() })?;
        if stored.shape != expected {
            return Err(ModelError::ShapeMismatch {
                name: name.to_string(),
                expected: expected.to_vec(),
                found: stored.shape,
            });
        }
        Ok(stored.data.reshape(expected))
    }
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
}

/// The shard files of a checkpoint, in index order.
fn shard_files(source: &dyn ModelSource) -> Result<Vec<String>> {
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

/// List every tensor of a checkpoint without converting or uploading anything.
pub fn inspect(source: &dyn ModelSource) -> Result<Vec<TensorInfo>> {
    let mut out = Vec::new();
    for file in shard_files(source)? {
        let bytes = source.read(&file)?.ok_or_else(|| ModelError::MissingFile {
            file: file.clone(),
            why: "named by model.safetensors.index.json".into(),
        })?;
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| ModelError::Safetensors { file: file.clone(), message: e.to_string() })?;
        for (name, info) in meta.tensors() {
            out.push(TensorInfo { name, dtype: format!("{:?}", info.dtype), shape: info.shape.clone() });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
