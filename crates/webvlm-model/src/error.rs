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
    #[error("kernel for `{name}`: {message}")]
    Kernel { name: String, message: String },

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
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    pub(crate) fn config(file: &str, message: impl Into<String>) -> Self {
        Self::Config { file: file.to_string(), message: message.into() }
    }
}
