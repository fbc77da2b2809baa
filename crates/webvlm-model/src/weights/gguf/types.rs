//! ggml tensor types: id, name and block geometry of every type a GGUF file may hold.
//!
//! The reader needs the geometry of *every* type, not only those it decodes, to check that each
//! tensor's bytes lie inside the file; decoding then refuses what webvlm cannot represent.
//! Values from `GGML_QUANT_SIZES` in gguf-py 0.19 (`gguf-py/gguf/constants.py`, llama.cpp).

use std::fmt;

/// A ggml tensor type id (`enum ggml_type`), as stored in a GGUF tensor info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

/// `(id, name, elements per block, bytes per block)`.
const TABLE: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

impl GgmlType {
    pub const F32: Self = Self(0);
    pub const F16: Self = Self(1);
    /// 32 × u4 with one f16 scale `d`: `d·(q − 8)`.
    pub const Q4_0: Self = Self(2);
    /// 32 × u4 with f16 `d` and `m`: `d·q + m`.
    pub const Q4_1: Self = Self(3);
    /// 32 × i8 with one f16 scale `d`: `d·q`.
    pub const Q8_0: Self = Self(8);
    pub const Q4_K: Self = Self(12);
    pub const BF16: Self = Self(30);

    fn traits(self) -> Option<&'static (u32, &'static str, u64, u64)> {
        TABLE.iter().find(|t| t.0 == self.0)
    }

    /// The ggml name (`Q8_0`), or `None` for an id this table does not know.
    pub fn name(self) -> Option<&'static str> {
        self.traits().map(|t| t.1)
    }

    /// `(elements per block, bytes per block)`; `(1, size)` for plain types.
    pub fn block(self) -> Option<(u64, u64)> {
        self.traits().map(|t| (t.2, t.3))
    }

    /// One of the 32-wide block formats webvlm stores as a `QuantMatrix`.
    pub fn is_block_quant(self) -> bool {
        matches!(self, Self::Q8_0 | Self::Q4_0 | Self::Q4_1)
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ggml type #{}", self.0),
        }
    }
}
