//! Every WGSL kernel and variant, in one enum, assembled with burn's `{{ placeholder }}`
//! templates (`burn_cubecl::template`) from the files in `/shaders`.
//!
//! A [`Kernel`] value names one compiled pipeline: its [`KernelSource::id`] carries the whole
//! value, so each variant is compiled once per device and cached by cubecl.

use burn_cubecl::cubecl::prelude::KernelId;
use burn_cubecl::cubecl::CubeDim;
use burn_cubecl::template::{KernelSource, SourceTemplate};

use crate::quant::QuantScheme;

mod src {
    pub const COPY: &str = include_str!("../../../shaders/copy.wgsl");
    pub const FMA_PEAK: &str = include_str!("../../../shaders/fma_peak.wgsl");
    pub const NORM: &str = include_str!("../../../shaders/norm.wgsl");
    pub const ROPE: &str = include_str!("../../../shaders/rope.wgsl");
    pub const SOFTMAX: &str = include_str!("../../../shaders/softmax.wgsl");
    pub const SWIGLU: &str = include_str!("../../../shaders/swiglu.wgsl");
    pub const ARGMAX: &str = include_str!("../../../shaders/argmax.wgsl");
    pub const SAMPLE: &str = include_str!("../../../shaders/sample.wgsl");
    pub const ATTENTION_DECODE: &str = include_str!("../../../shaders/attention_decode.wgsl");
    pub const ATTENTION_FLASH: &str = include_str!("../../../shaders/attention_flash.wgsl");
    pub const MATVEC_Q8: &str = include_str!("../../../shaders/matvec_q8.wgsl");
    pub const MATVEC_Q4: &str = include_str!("../../../shaders/matvec_q4.wgsl");
    pub const MATVEC_F16: &str = include_str!("../../../shaders/matvec_f16.wgsl");
    pub const MATMUL_Q8: &str = include_str!("../../../shaders/matmul_q8.wgsl");
    pub const MATMUL_Q4: &str = include_str!("../../../shaders/matmul_q4.wgsl");
    pub const MATMUL_F16: &str = include_str!("../../../shaders/matmul_f16.wgsl");
    pub const IO: &str = include_str!("../../../shaders/common/io.wgsl");
    pub const Q8: &str = include_str!("../../../shaders/common/q8.wgsl");
    pub const Q4: &str = include_str!("../../../shaders/common/q4.wgsl");
    pub const F16: &str = include_str!("../../../shaders/common/f16.wgsl");
    pub const MATVEC_ROWS: &str = include_str!("../../../shaders/common/matvec_rows.wgsl");
    pub const MATVEC_WORKGROUP: &str = include_str!("../../../shaders/common/matvec_workgroup.wgsl");
    pub const MATVEC_SUBGROUP: &str = include_str!("../../../shaders/common/matvec_subgroup.wgsl");
    pub const MATMUL_TILED: &str = include_str!("../../../shaders/common/matmul_tiled.wgsl");
    pub const REDUCE: &str = include_str!("../../../shaders/common/reduce.wgsl");
    pub const ACT: &str = include_str!("../../../shaders/common/act.wgsl");
    pub const GATHER: &str = include_str!("../../../shaders/gather.wgsl");
    pub const TABLE_Q8: &str = include_str!("../../../shaders/common/table_q8.wgsl");
    pub const TABLE_Q4: &str = include_str!("../../../shaders/common/table_q4.wgsl");
    pub const TABLE_F16: &str = include_str!("../../../shaders/common/table_f16.wgsl");
    pub const TABLE_BF16: &str = include_str!("../../../shaders/common/table_bf16.wgsl");
}

/// Arithmetic type of the dot products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 throughout (the default; every adapter).
    F32,
    /// Weights dequantised to f16 and multiplied in f16 four at a time, partial sums in f32.
    /// Needs the adapter's `shader-f16`.
    F16,
}

/// How a matvec combines the partial sums of the lanes that share a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
///
/// `rpi` (rows per invocation, a multiple of 4) is how many rows an invocation works on at
/// once: each chunk of activations it loads serves `rpi` rows. That matters on CPU
/// implementations (lavapipe), where an activation load costs as much as a weight load;
/// GPUs cache the activations, but gain independent accumulators.
pub enum Reduction {
    /// `tpr` lanes share `rpi` rows, `wg / tpr · rpi` rows per workgroup; the lanes' partial
    /// sums meet in shared memory behind one barrier (none when `tpr = 1`). Works everywhere.
    Workgroup { wg: u32, tpr: u32, rpi: u32 },
    /// A subgroup takes `rpi` rows at a time, `rpw` rows per workgroup, `subgroupAdd`.
    /// Needs the adapter's `subgroups`.
    Subgroup { wg: u32, rpw: u32, rpi: u32 },
}

impl Reduction {
    /// Whether the placeholders make a valid kernel: `rpi` a positive multiple of 4, `tpr`
    /// dividing `wg`, `rpw` a positive multiple of `rpi`.
    pub fn is_valid(self) -> bool {
        match self {
            Reduction::Workgroup { wg, tpr, rpi } => {
                // `partial` holds rpi / 4 vec4s per invocation.
                rpi > 0 && rpi % 4 == 0 && tpr > 0 && wg % tpr == 0 && wg <= MAX_INVOCATIONS && wg * rpi * 4 <= MAX_WORKGROUP_BYTES
            }
            Reduction::Subgroup { wg, rpw, rpi } => {
                wg > 0 && wg <= MAX_INVOCATIONS && rpi > 0 && rpi % 4 == 0 && rpw > 0 && rpw % rpi == 0
            }
        }
    }

    /// Weight rows one workgroup covers.
    pub fn rows_per_workgroup(self) -> u32 {
        match self {
            Reduction::Workgroup { wg, tpr, rpi } => wg / tpr * rpi,
            Reduction::Subgroup { rpw, .. } => rpw,
        }
    }
}

/// What a matvec does around its dot products: a prologue on the activations and addends in
/// its epilogue (each one a binding after the weight planes, added in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fuse {
    /// Activations are a `[gate | up]` row of twice K values, consumed as `silu(gate)·up`.
    pub swiglu: bool,
    /// Vectors added to the output, `y[i] = x·W[i] + a₀[i] + a₁[i]` (a bias, a residual): 0–2.
    pub addends: u8,
}

impl Fuse {
    pub const NONE: Fuse = Fuse { swiglu: false, addends: 0 };
    /// The most addends a kernel binds (a bias and a residual).
    pub const MAX_ADDENDS: u8 = 2;

    fn label(self) -> String {
        let mut s = String::new();
        if self.swiglu {
            s.push_str("/swiglu");
        }
        if self.addends > 0 {
            s.push_str(&format!("/add{}", self.addends));
        }
        s
    }
}

/// An activation a matmul's epilogue applies (transformers' `ACT2FN` names in the comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Act {
    #[default]
    None,
    /// `gelu`: the erf form.
    GeluErf,
    /// `gelu_pytorch_tanh`, `gelu_new`.
    GeluTanh,
    /// `quick_gelu`.
    QuickGelu,
    /// `silu`.
    Silu,
}

/// What a matmul (M > 1) does to its outputs: `act(x·Wᵀ + bias) + residual`, a bias per
/// output column and a residual per element, each a binding after the weight planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Epilogue {
    pub bias: bool,
    pub act: Act,
    pub residual: bool,
}

impl Epilogue {
    pub const NONE: Epilogue = Epilogue { bias: false, act: Act::None, residual: false };

    /// Bindings after the weight planes.
    pub fn bindings(self) -> u32 {
        u32::from(self.bias) + u32::from(self.residual)
    }

    fn label(self) -> String {
        let mut s = String::new();
        if self.bias {
            s.push_str("/bias");
        }
        if self.act != Act::None {
            s.push_str(&format!("/{:?}", self.act).to_lowercase());
        }
        if self.residual {
            s.push_str("/res");
        }
        s
    }

    /// The body of `store_mn` in common/matmul_tiled.wgsl.
    fn wgsl(self) -> String {
        let mut body = String::from("var o = v;");
        if self.bias {
            body.push_str("\n    o += bias[c];");
        }
        let f = match self.act {
            Act::None => None,
            Act::GeluErf => Some("act_gelu_erf"),
            Act::GeluTanh => Some("act_gelu_tanh"),
            Act::QuickGelu => Some("act_quick_gelu"),
            Act::Silu => Some("act_silu"),
        };
        if let Some(f) = f {
            body.push_str(&format!("\n    o = {f}(o);"));
        }
        if self.residual {
            body.push_str("\n    o += res[i];");
        }
        body.push_str("\n    y[i] = o;");
        body
    }
}

/// Matmul tiling: `tm × tn` outputs per workgroup, `rm × rn` per invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tile {
    pub tm: u32,
    pub tn: u32,
    pub rm: u32,
    pub rn: u32,
}

/// WebGPU's guaranteed limits (what every adapter, phones included, must offer): variants
/// stay within them so that none needs a limit negotiated at device creation.
const MAX_INVOCATIONS: u32 = 256;
const MAX_WORKGROUP_BYTES: u32 = 16 * 1024;

impl Tile {
    /// Whether the tiling makes a valid kernel within WebGPU's default limits.
    pub fn is_valid(self) -> bool {
        let Tile { tm, tn, rm, rn } = self;
        let ok = rm > 0 && rn > 0 && tm % rm == 0 && tn % rn == 0 && tm > 0 && tn > 0;
        // Two f32 tiles of 32 columns (8 vec4 of 16 bytes per row).
        ok && (tm / rm) * (tn / rn) <= MAX_INVOCATIONS && (tm + tn) * 8 * 16 <= MAX_WORKGROUP_BYTES
    }
}

/// The decoder's fused row and element-wise operations (see [`crate::ops`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FusedOp {
    /// `norm.wgsl` as RMSNorm: one workgroup per row.
    RmsNorm,
    /// `norm.wgsl` as LayerNorm with weight and bias, one workgroup per row.
    LayerNorm,
    /// `rope.wgsl`: rotary embedding + head transpose.
    Rope,
    /// `softmax.wgsl`: scaled, optionally causal softmax, one workgroup per row.
    Softmax,
    /// `swiglu.wgsl`: silu(g)·u.
    SwiGlu,
    /// `argmax.wgsl`: greedy sampling, one workgroup.
    Argmax,
    /// `attention_decode.wgsl`: one token's attention over the KV cache, a workgroup per head.
    DecodeAttention,
    /// `sample.wgsl`: penalty, temperature, top-k, top-p and a seeded draw, one workgroup.
    Sample,
}

impl FusedOp {
    pub const ALL: [FusedOp; 8] =
        [FusedOp::RmsNorm, FusedOp::LayerNorm, FusedOp::Rope, FusedOp::Softmax, FusedOp::SwiGlu, FusedOp::Argmax, FusedOp::DecodeAttention, FusedOp::Sample];

    /// The workgroup size the model launches it with: the sampler is one workgroup bisecting
    /// over the whole vocabulary, so it takes WebGPU's guaranteed maximum.
    pub fn workgroup_size(self) -> u32 {
        match self {
            FusedOp::Sample => 256,
            _ => crate::ops::FUSED_WG,
        }
    }

    fn name(self) -> &'static str {
        match self {
            FusedOp::RmsNorm => "rms_norm",
            FusedOp::LayerNorm => "layer_norm",
            FusedOp::Rope => "rope",
            FusedOp::Softmax => "softmax",
            FusedOp::SwiGlu => "swiglu",
            FusedOp::Argmax => "argmax",
            FusedOp::DecodeAttention => "attention_decode",
            FusedOp::Sample => "sample",
        }
    }
}

/// One kernel variant: a family and the values of its placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `copy.wgsl`: `items` vec4s per invocation.
    Copy { wg: u32, items: u32 },
    /// `fma_peak.wgsl`: the compute reference (fused multiply-adds in registers).
    FmaPeak { wg: u32 },
    /// `matvec_{q8,q4,f16}.wgsl`.
    Matvec { scheme: QuantScheme, precision: Precision, reduction: Reduction, fuse: Fuse },
    /// `matmul_{q8,q4,f16}.wgsl`.
    Matmul { scheme: QuantScheme, precision: Precision, tile: Tile, epilogue: Epilogue },
    /// A fused decoder operation; `wg` a power of two (the row reductions halve it).
    Fused { op: FusedOp, wg: u32 },
    /// `attention_flash.wgsl`: attention of many query rows, tile by tile, for heads of up to
    /// `4·hd4` values (the per-lane registers and the tile size follow `hd4`), `rows` query rows
    /// per lane; `joined`: k and v read from q's binding (a joined q/k/v projection's output).
    FlashAttention { hd4: u32, rows: u32, joined: bool },
    /// `gather.wgsl`: rows of a lookup table held in `format`, by id, as f32.
    Gather { format: crate::gather::TableFormat },
}

/// Keys per tile of [`Kernel::FlashAttention`]: two tiles (keys and values, `hd4` vec4s per
/// key) within WebGPU's guaranteed 16 KiB of workgroup memory, less 1 KiB for its other
/// workgroup variables.
pub fn flash_keys_per_tile(hd4: u32) -> u32 {
    ((MAX_WORKGROUP_BYTES - 1024) / (2 * 16 * hd4.max(1))).clamp(1, 64)
}

impl Kernel {
    /// Invocations per workgroup.
    pub fn workgroup_size(&self) -> u32 {
        match *self {
            Kernel::Copy { wg, .. } | Kernel::Fused { wg, .. } | Kernel::FmaPeak { wg } => wg,
            Kernel::FlashAttention { .. } | Kernel::Gather { .. } => crate::ops::FUSED_WG,
            Kernel::Matvec { reduction: Reduction::Workgroup { wg, .. } | Reduction::Subgroup { wg, .. }, .. } => wg,
            Kernel::Matmul { tile, .. } => (tile.tm / tile.rm) * (tile.tn / tile.rn),
        }
    }

    /// Whether the variant needs the adapter's `subgroups` feature.
    pub fn needs_subgroups(&self) -> bool {
        matches!(self, Kernel::Matvec { reduction: Reduction::Subgroup { .. }, .. })
    }

    /// Whether the variant needs the adapter's `shader-f16` feature.
    pub fn needs_f16(&self) -> bool {
        matches!(self, Kernel::Matvec { precision: Precision::F16, .. } | Kernel::Matmul { precision: Precision::F16, .. })
    }

    /// A short name for logs and the bench, e.g. `matvec_q4/f32/wg64x8`.
    pub fn label(&self) -> String {
        let p = |p: Precision| if p == Precision::F16 { "f16" } else { "f32" };
        match *self {
            Kernel::Copy { wg, items } => format!("copy/wg{wg}x{items}"),
            Kernel::FmaPeak { wg } => format!("fma_peak/wg{wg}"),
            Kernel::Fused { op, wg } => format!("{}/wg{wg}", op.name()),
            Kernel::FlashAttention { hd4, rows, joined } => {
                format!("attention_flash/hd{}/r{rows}{}", 4 * hd4, if joined { "/joined" } else { "" })
            }
            Kernel::Gather { format } => format!("gather/{}", format.name()),
            Kernel::Matvec { scheme, precision, reduction, fuse } => {
                let r = match reduction {
                    Reduction::Workgroup { wg, tpr, rpi } => format!("wg{wg}/tpr{tpr}/rpi{rpi}"),
                    Reduction::Subgroup { wg, rpw, rpi } => format!("sg{wg}/rpw{rpw}/rpi{rpi}"),
                };
                format!("matvec_{}/{}/{r}{}", scheme.name(), p(precision), fuse.label())
            }
            Kernel::Matmul { scheme, precision, tile: t, epilogue } => {
                format!("matmul_{}/{}/{}x{}/{}x{}{}", scheme.name(), p(precision), t.tm, t.tn, t.rm, t.rn, epilogue.label())
            }
        }
    }

    /// The family file and snippets, in order (the family file first: it opens with the
    /// `enable` directives, which WGSL wants before anything else).
    fn parts(&self) -> Vec<&'static str> {
        match *self {
            Kernel::Copy { .. } => vec![src::COPY],
            Kernel::FmaPeak { .. } => vec![src::FMA_PEAK],
            Kernel::Fused { op, .. } => match op {
                FusedOp::RmsNorm | FusedOp::LayerNorm => vec![src::NORM, src::REDUCE],
                FusedOp::Rope => vec![src::ROPE],
                FusedOp::Softmax => vec![src::SOFTMAX, src::REDUCE],
                FusedOp::SwiGlu => vec![src::SWIGLU],
                FusedOp::Argmax => vec![src::ARGMAX],
                FusedOp::DecodeAttention => vec![src::ATTENTION_DECODE, src::REDUCE],
                FusedOp::Sample => vec![src::SAMPLE, src::REDUCE],
            },
            Kernel::FlashAttention { .. } => vec![src::ATTENTION_FLASH],
            Kernel::Gather { format } => {
                use crate::gather::TableFormat;
                let table = match format {
                    TableFormat::Q8 => src::TABLE_Q8,
                    TableFormat::Q4 => src::TABLE_Q4,
                    TableFormat::F16 => src::TABLE_F16,
                    TableFormat::Bf16 => src::TABLE_BF16,
                };
                vec![src::GATHER, table]
            }
            Kernel::Matvec { scheme, reduction, .. } => {
                let (family, layout) = match scheme {
                    QuantScheme::Q8 => (src::MATVEC_Q8, src::Q8),
                    QuantScheme::Q4 => (src::MATVEC_Q4, src::Q4),
                    QuantScheme::F16 => (src::MATVEC_F16, src::F16),
                };
                let entry = match reduction {
                    Reduction::Workgroup { .. } => src::MATVEC_WORKGROUP,
                    Reduction::Subgroup { .. } => src::MATVEC_SUBGROUP,
                };
                vec![family, src::IO, layout, src::MATVEC_ROWS, entry]
            }
            Kernel::Matmul { scheme, .. } => {
                let (family, layout) = match scheme {
                    QuantScheme::Q8 => (src::MATMUL_Q8, src::Q8),
                    QuantScheme::Q4 => (src::MATMUL_Q4, src::Q4),
                    QuantScheme::F16 => (src::MATMUL_F16, src::F16),
                };
                vec![family, src::IO, layout, src::ACT, src::MATMUL_TILED]
            }
        }
    }

    /// Placeholder values.
    fn vars(&self) -> Vec<(&'static str, String)> {
        let mut enables = Vec::new();
        if self.needs_f16() {
            enables.push("enable f16;");
        }
        // Browsers (Tint) want `enable subgroups;`; naga, which compiles WGSL natively,
        // rejects the directive and enables subgroup builtins from the device's features.
        if self.needs_subgroups() && cfg!(target_family = "wasm") {
            enables.push("enable subgroups;");
        }
        let mut vars = vec![("enables", enables.join("\n"))];
        match *self {
            Kernel::Fused { op, wg } => {
                vars.push(("wg", wg.to_string()));
                if let FusedOp::RmsNorm | FusedOp::LayerNorm = op {
                    let layer = op == FusedOp::LayerNorm;
                    vars.push(("center", layer.to_string()));
                    let bias = "@group(0) @binding(3) var<storage, read_write> b: array<f32>;";
                    vars.push(("bias_binding", if layer { bias.into() } else { String::new() }));
                    vars.push(("params_binding", if layer { "4" } else { "3" }.into()));
                    vars.push(("shift", if layer { "return b[c];" } else { "return -0.0;" }.into()));
                }
            }
            Kernel::FlashAttention { hd4, rows, joined } => {
                let bc = flash_keys_per_tile(hd4);
                let separate = "@group(0) @binding(2) var<storage, read_write> k: array<f32>;\n\
                                @group(0) @binding(3) var<storage, read_write> v: array<f32>;";
                vars.push(("kv_bindings", if joined { String::new() } else { separate.into() }));
                vars.push(("k_buf", if joined { "q" } else { "k" }.into()));
                vars.push(("v_buf", if joined { "q" } else { "v" }.into()));
                vars.push(("ranges_binding", if joined { "2" } else { "4" }.into()));
                vars.push(("params_binding", if joined { "3" } else { "5" }.into()));
                vars.push(("wg", self.workgroup_size().to_string()));
                vars.push(("hd4", hd4.to_string()));
                vars.push(("bc", bc.to_string()));
                vars.push(("tile", (bc * hd4).to_string()));
                vars.push(("rows", rows.to_string()));
                vars.push(("rq", (rows * hd4).to_string()));
                vars.push(("rs", (rows * bc).to_string()));
            }
            Kernel::FmaPeak { wg } => vars.push(("wg", wg.to_string())),
            Kernel::Gather { .. } => vars.push(("wg", self.workgroup_size().to_string())),
            Kernel::Copy { wg, items } => {
                vars.push(("wg", wg.to_string()));
                vars.push(("items", items.to_string()));
            }
            Kernel::Matvec { scheme, precision, reduction, fuse } => {
                vars.push(("ct", ct(precision).into()));
                let planes = if scheme == QuantScheme::F16 { 1 } else { 2 };
                let first = 2 + planes;
                vars.push(("params_binding", (first + u32::from(fuse.addends)).to_string()));
                vars.push(("x_load", x_load(fuse.swiglu).into()));
                let bindings: Vec<String> = (0..u32::from(fuse.addends))
                    .map(|a| format!("@group(0) @binding({}) var<storage, read_write> add{a}: array<f32>;", first + a))
                    .collect();
                vars.push(("addend_bindings", bindings.join("\n")));
                let sum: String = (0..fuse.addends).map(|a| format!(" + add{a}[i]")).collect();
                vars.push(("store", format!("y[i] = v{sum};")));
                match reduction {
                    Reduction::Workgroup { wg, tpr, rpi } => {
                        vars.push(("wg", wg.to_string()));
                        vars.push(("tpr", tpr.to_string()));
                        vars.push(("rpi", rpi.to_string()));
                    }
                    Reduction::Subgroup { wg, rpw, rpi } => {
                        vars.push(("wg", wg.to_string()));
                        vars.push(("rpw", rpw.to_string()));
                        vars.push(("rpi", rpi.to_string()));
                    }
                }
            }
            Kernel::Matmul { scheme, precision, tile, epilogue } => {
                vars.push(("ct", ct(precision).into()));
                vars.push(("x_load", x_load(false).into()));
                vars.push(("addend_bindings", String::new()));
                vars.push(("store", "y[i] = v;".into()));
                let first = 2 + if scheme == QuantScheme::F16 { 1 } else { 2 };
                let mut bindings = Vec::new();
                if epilogue.bias {
                    bindings.push(format!("@group(0) @binding({}) var<storage, read_write> bias: array<f32>;", first + bindings.len() as u32));
                }
                if epilogue.residual {
                    bindings.push(format!("@group(0) @binding({}) var<storage, read_write> res: array<f32>;", first + bindings.len() as u32));
                }
                vars.push(("params_binding", (first + epilogue.bindings()).to_string()));
                vars.push(("epilogue_bindings", bindings.join("\n")));
                vars.push(("epilogue", epilogue.wgsl()));
                let (rm, rn) = (tile.rm, tile.rn);
                let acc_decl: Vec<String> = (0..rm).flat_map(|i| (0..rn).map(move |j| format!("var acc_{i}_{j} = 0.0;"))).collect();
                vars.push(("acc_decl", acc_decl.join("\n    ")));
                let mut inner: Vec<String> = (0..rm).map(|i| format!("let a_{i} = xs[(ty * RM + {i}u) * 8u + kk];")).collect();
                inner.extend((0..rn).map(|j| format!("let w_{j} = ws[({j}u * TX + tx) * 8u + kk];")));
                inner.extend((0..rm).flat_map(|i| (0..rn).map(move |j| format!("acc_{i}_{j} += f32(dot(a_{i}, w_{j}));"))));
                vars.push(("inner", inner.join("\n            ")));
                let store: Vec<String> = (0..rm)
                    .flat_map(|i| {
                        (0..rn).map(move |j| {
                            format!("if (m0 + ty * RM + {i}u < params.m && n0 + {j}u * TX + tx < params.n) {{ store_mn(m0 + ty * RM + {i}u, params.n_offset + n0 + {j}u * TX + tx, acc_{i}_{j}); }}")
                        })
                    })
                    .collect();
                vars.push(("store_all", store.join("\n    ")));
                vars.push(("tm", tile.tm.to_string()));
                vars.push(("tn", tile.tn.to_string()));
                vars.push(("rm", tile.rm.to_string()));
                vars.push(("rn", tile.rn.to_string()));
            }
        }
        vars
    }

    fn template(&self) -> SourceTemplate {
        let mut parts = self.parts().into_iter();
        let mut t = SourceTemplate::new(parts.next().unwrap_or_default());
        for part in parts {
            t = t.add_template(part);
        }
        for (name, value) in self.vars() {
            t = t.register(name, value);
        }
        t
    }

    /// The complete WGSL of this variant.
    pub fn wgsl(&self) -> String {
        self.template().complete()
    }
}

/// The body of `x4` in common/io.wgsl.
fn x_load(swiglu: bool) -> &'static str {
    if swiglu {
        "let g = x[base + j];\n    return vec4<CT>(g / (1.0 + exp(-g)) * x[base + j + params.k4]);"
    } else {
        "return vec4<CT>(x[base + j]);"
    }
}

fn ct(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F16 => "f16",
    }
}

impl KernelSource for Kernel {
    fn source(&self) -> SourceTemplate {
        self.template()
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Kernel>().info(*self).cube_dim(CubeDim::new_1d(self.workgroup_size()).0)
    }

    fn lang(&self) -> &'static str {
        "wgsl"
    }
}

#[cfg(test)]
mod tests {
    /// burn's template fills an unregistered placeholder with "" silently; make sure every
    /// placeholder of every part has a value.
    #[test]
    fn every_placeholder_is_registered() {
        for k in crate::variants::all_variants() {
            let names: Vec<&str> = k.vars().iter().map(|(n, _)| *n).collect();
            for part in k.parts() {
                let mut rest = part;
                while let Some(start) = rest.find("{{") {
                    let end = rest[start..].find("}}").map(|e| start + e).unwrap_or(rest.len());
                    let name = rest[start + 2..end].trim();
                    assert!(names.contains(&name), "{}: placeholder `{name}` has no value", k.label());
                    rest = &rest[end.min(rest.len())..];
                }
            }
            assert!(!k.wgsl().contains("{{"), "{}", k.label());
        }
    }
}
