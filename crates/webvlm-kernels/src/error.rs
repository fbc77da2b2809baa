//! The one error type of the kernels crate.

use crate::quant::QuantScheme;

/// Anything that can go wrong while quantising, uploading or launching.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KernelError {
    /// A matrix with no rows or no columns: nothing to quantise or launch.
    #[error("empty matrix: n = {n}, k = {k}")]
    EmptyMatrix { n: usize, k: usize },

    /// The f32 data does not hold `n * k` values.
    #[error("expected {expected} values for a {n}x{k} matrix, got {found}")]
    DataLength { n: usize, k: usize, expected: usize, found: usize },

    /// A raw plane handed to a constructor has the wrong number of u32 words.
    #[error("{scheme:?} plane `{plane}` of a {n}x{k} matrix needs {expected} words, got {found}")]
    PlaneLength { scheme: QuantScheme, plane: &'static str, n: usize, k: usize, expected: usize, found: usize },

    /// A weight is NaN or infinite, or a block's scale overflows f16: the block formats cannot
    /// represent it, and silently writing Inf would poison every output that reads the row.
    #[error("row {row}, block {block}: {what}")]
    Unrepresentable { row: usize, block: usize, what: String },

    /// The activation's last dimension does not match the weight's `k`.
    #[error("activation has {found} columns, the weight expects k = {k}")]
    ShapeMismatch { k: usize, found: usize },

    /// The activation or output alone is larger than the device lets one shader bind; splitting
    /// the weight by rows cannot help, so the caller must split M.
    #[error("{what} needs {bytes} bytes in one binding; the device allows {limit}")]
    BindingTooLarge { what: &'static str, bytes: u64, limit: u64 },

    /// A single weight row is larger than one binding may be.
    #[error("one row of the {scheme:?} weight needs {bytes} bytes; the device binds at most {limit}")]
    RowTooLarge { scheme: QuantScheme, bytes: u64, limit: u64 },

    /// The launch would need more workgroups along one axis than the device allows.
    #[error("{what}: {count} workgroups exceed the device's {limit} per dimension")]
    TooManyWorkgroups { what: &'static str, count: u64, limit: u32 },

    /// The weight lives on another device than the activation.
    #[error("the weight was uploaded to another device than the activation's")]
    DeviceMismatch,

    /// The device is not one these kernels can run on (e.g. CUDA); callers should use
    /// [`crate::quant_matmul`], which falls back to burn's matmul there.
    #[error("not a wgpu device: {0}")]
    NotWgpu(String),

    /// The selected variant needs an adapter feature the device lacks.
    #[error("variant needs the `{0}` adapter feature, which this device does not offer")]
    MissingFeature(&'static str),

    /// A forced variant whose placeholders do not make a valid kernel (see
    /// [`crate::Reduction::is_valid`], [`crate::Tile::is_valid`]).
    #[error("invalid kernel variant {0}")]
    InvalidVariant(String),

    /// Reading results back for the benchmark failed.
    #[error("device error: {0}")]
    Device(String),
}

/// Result with [`KernelError`].
pub type Result<T> = std::result::Result<T, KernelError>;
