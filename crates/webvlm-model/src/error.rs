//! The one error type of the model crate. Every variant names the file, tensor or field at fault
//! so that a developer can act on the message without a debugger.

use crate::preprocess::PreprocessError;

/// Anything that can go wrong while loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the model could not be read.
    #[error("cannot read `{file}`: {message}")]
    Io { file: String, message: String },

    /// A required file of the model is missing.
    #[error("the model has no `{file}` ({why})")]
    MissingFile { file: String, why: String },

    /// A configuration file is malformed or holds a value this runtime cannot use.
    #[error("invalid `{file}`: {message}")]
    Config { file: String, message: String },

    /// The checkpoint is of an architecture this runtime does not implement.
    #[error("unsupported {found}; supported: {supported}")]
    UnsupportedModel { found: String, supported: String },

    /// A tensor the architecture needs is not in the checkpoint.
    #[error("missing tensor `{name}` in the checkpoint")]
    MissingTensor { name: String },

    /// A tensor has a shape that does not match the configuration.
    #[error("tensor `{name}` has shape {found:?}, but the config implies {expected:?}")]
    ShapeMismatch { name: String, expected: Vec<usize>, found: Vec<usize> },

    /// A tensor is stored in a dtype the loader cannot convert.
    #[error("tensor `{name}` is stored as {dtype}; supported dtypes are F32, F16 and BF16")]
    UnsupportedDtype { name: String, dtype: String },

    /// A tensor or manifest names a quantisation scheme this runtime does not know.
    #[error("tensor `{name}` uses unknown quantisation scheme `{scheme}` (known: q4, q8, f16, f16d, f32)")]
    UnknownQuant { name: String, scheme: String },

    /// A packed model's manifest is inconsistent (e.g. points past the end of the shards).
    #[error("invalid manifest.json: {message}")]
    Manifest { message: String },

    /// A file's bytes do not match its manifest entry (size or sha256).
    #[error("integrity check failed for `{file}`: {message}")]
    Integrity { file: String, message: String },

    /// A component needs a dense tensor but the checkpoint holds it quantised.
    #[error("tensor `{name}` is stored quantised ({scheme}) but `{component}` needs it dense")]
    QuantizedTensor { name: String, scheme: String, component: String },

    /// A quantised kernel failed (shape, limits, device).
    #[error("kernel for `{name}`: {source}")]
    Kernel { name: String, source: webvlm_kernels::KernelError },

    /// A GGUF file is malformed or holds something this runtime cannot read.
    #[error("GGUF: {0}")]
    Gguf(#[from] crate::weights::gguf::GgufError),

    /// Tensors were left over after every component took its weights: the checkpoint holds
    /// something this architecture does not know (e.g. a checkpoint of another family).
    #[error("the checkpoint holds {count} tensor(s) this architecture does not use, e.g. `{example}`")]
    UnusedTensors { count: usize, example: String },

    /// The checkpoint holds a tensor of another family than its config names.
    #[error("tensor `{tensor}` belongs to {found}, but config.json describes {expected}: the checkpoint mixes families")]
    MixedFamily { tensor: String, found: String, expected: String },

    /// A dense weight is larger than one GPU buffer binding and its layer cannot take it in blocks.
    #[error("tensor `{name}` is larger than one GPU buffer binding ({limit} bytes) as dense f32: {hint}")]
    TooLarge { name: String, limit: usize, hint: String },

    /// A safetensors file is corrupt or truncated.
    #[error("safetensors file `{file}` is invalid: {message}")]
    Safetensors { file: String, message: String },

    /// The tokenizer could not be built or failed to encode/decode.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The chat template could not be parsed or rendered.
    #[error("chat template: {0}")]
    Template(String),

    /// The image could not be preprocessed.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),

    /// The prompt does not fit the model's context window.
    #[error(
        "the prompt has {tokens} tokens but the context holds {context} (max_position_embeddings); shorten the prompt or use a smaller image"
    )]
    ContextOverflow { tokens: usize, context: usize },

    /// The prompt's `<image>` tokens do not match the number of image features.
    #[error("the prompt holds {tokens} image tokens but the images give {features} features")]
    ImageTokenMismatch { tokens: usize, features: usize },

    /// An image was given to a text-only model.
    #[error("`{model_type}` is a text-only model: it takes no images (load a vision-language checkpoint such as SmolVLM)")]
    NoVision { model_type: String },

    /// A token id is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange { id: u32, vocab: usize },

    /// Reading a result back from the device failed (e.g. the GPU device was lost).
    #[error("device: {0}")]
    Device(String),

    /// The caller asked for something the model cannot do with these inputs (positions or
    /// tiles that do not fit the model, a device configured twice).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// The error class of the web package this error becomes (its JavaScript `name`). A kernel
    /// error keeps its kind: past the device's limits is `OutOfMemoryError` (the same as a
    /// buffer that cannot be had), a feature the adapter lacks `MissingFeatureError`; the other
    /// kernel and device failures are `DeviceError`.
    pub fn class(&self) -> &'static str {
        use webvlm_kernels::KernelError as K;
        match self {
            ModelError::Integrity { .. } => "IntegrityError",
            ModelError::Preprocess(_) => "ImageError",
            ModelError::ContextOverflow { .. } => "ContextOverflowError",
            ModelError::ImageTokenMismatch { .. }
            | ModelError::TokenOutOfRange { .. }
            | ModelError::NoVision { .. }
            | ModelError::InvalidRequest(_) => "InvalidRequestError",
            ModelError::TooLarge { .. } => "OutOfMemoryError",
            ModelError::Kernel { source, .. } => match source {
                K::BindingTooLarge { .. } | K::RowTooLarge { .. } | K::TooManyWorkgroups { .. } => "OutOfMemoryError",
                K::MissingFeature(_) => "MissingFeatureError",
                _ => "DeviceError",
            },
            ModelError::Device(_) => "DeviceError",
            _ => "ModelFormatError",
        }
    }

    pub(crate) fn config(file: &str, message: impl Into<String>) -> Self {
        Self::Config { file: file.to_string(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webvlm_kernels::KernelError;

    fn class_of(e: &ModelError) -> &'static str {
        e.class()
    }

    fn kernel(source: KernelError) -> ModelError {
        ModelError::Kernel { name: "q_proj".into(), source }
    }

    #[test]
    fn a_binding_past_the_device_is_out_of_memory() {
        let e = kernel(KernelError::BindingTooLarge { what: "attention scores", bytes: 1 << 30, limit: 1 << 27 });
        assert_eq!(class_of(&e), "OutOfMemoryError");
        assert_eq!(class_of(&kernel(KernelError::RowTooLarge { scheme: webvlm_kernels::QuantScheme::Q4, bytes: 9, limit: 8 })), "OutOfMemoryError");
        let e = ModelError::TooLarge { name: "lm_head".into(), limit: 1 << 27, hint: String::new() };
        assert_eq!(class_of(&e), "OutOfMemoryError");
    }

    #[test]
    fn a_missing_adapter_feature_keeps_its_name() {
        assert_eq!(class_of(&kernel(KernelError::MissingFeature("shader-f16"))), "MissingFeatureError");
    }

    #[test]
    fn other_kernel_and_device_failures_are_device_errors() {
        assert_eq!(class_of(&kernel(KernelError::DeviceMismatch)), "DeviceError");
        assert_eq!(class_of(&ModelError::Device("a readback failed".into())), "DeviceError");
    }

    #[test]
    fn caller_errors_are_invalid_requests() {
        assert_eq!(class_of(&ModelError::InvalidRequest("tiles [9] are out of range".into())), "InvalidRequestError");
        assert_eq!(class_of(&ModelError::TokenOutOfRange { id: 9, vocab: 4 }), "InvalidRequestError");
    }

    #[test]
    fn an_integrity_failure_stays_one() {
        assert_eq!(class_of(&ModelError::Integrity { file: "weights-00001.bin".into(), message: "sha256".into() }), "IntegrityError");
    }
}
