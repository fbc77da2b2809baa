//! Which kernel variant runs where: the device's capabilities, the caller's options, and the
//! dispatch policy that turns both into a [`Kernel`] for a given shape.
//!
//! The defaults are the bench's winners on the machines we could measure (see
//! `shaders/README.md` and the crate docs); every choice can be forced through
//! [`KernelOptions`] so the bench and the tests can run each variant side by side.

use burn_cubecl::cubecl::client::Client;
use burn_cubecl::cubecl::features::Plane;
use burn_cubecl::cubecl::ir::{ElemType, FloatKind};

use crate::quant::QuantScheme;
use crate::shaders::{Act, Epilogue, Fuse, Kernel, Precision, Reduction, Tile};

/// What a device offers the kernels, read from burn's cubecl client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCaps {
    /// The most bytes one storage binding may span: `min(maxStorageBufferBindingSize,
    /// maxBufferSize)`, which is also the largest buffer burn will allocate.
    pub max_binding_bytes: u64,
    /// cubecl reports subgroup operations. It never does for CPU adapters, and in browsers
    /// wgpu 30 does not request the feature even where the adapter has it, so this is only a
    /// default; [`KernelOptions::subgroups`] overrides it.
    pub subgroups: bool,
    /// The adapter offers `shader-f16`.
    pub shader_f16: bool,
    /// A CPU implementation (lavapipe, SwiftShader natively): one invocation per row wins there.
    pub software: bool,
    /// Workgroups per dispatch dimension.
    pub max_workgroups: u32,
}

impl DeviceCaps {
    /// Read the capabilities of a cubecl (wgpu) client.
    pub fn of(client: &Client) -> Self {
        let p = client.properties();
        Self {
            max_binding_bytes: p.memory.max_page_size,
            subgroups: cfg!(not(target_family = "wasm")) && p.features.plane.contains(Plane::Ops),
            shader_f16: p.supports_type(ElemType::Float(FloatKind::F16)),
            software: p.identity.physical.is_none(),
            max_workgroups: p.hardware.max_cube_count.0,
        }
    }

    /// The capabilities of a burn device, when it is a wgpu one.
    pub fn of_device(device: &burn::tensor::Device) -> Option<Self> {
        crate::device_matrix::wgpu_device(device).map(|d| Self::of(&d.client()))
    }
}

/// Caller's choices; `Default` means "what the device offers, f32 compute".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelOptions {
    /// Cap on the bytes of one weight plane per dispatch, below the device's own limit. Tests
    /// set it tiny to exercise the row-split path that large tensors take on 128 MiB devices.
    pub max_binding_bytes: Option<u64>,
    /// Force the subgroup matvec on or off (`None`: the device's [`DeviceCaps::subgroups`]).
    /// Forcing it on a device whose adapter lacks `subgroups` fails in the driver: only do
    /// so where the adapter is known to have it (lavapipe does; cubecl does not report it
    /// for CPU adapters, and wgpu does not request it in browsers).
    pub subgroups: Option<bool>,
    /// Compute in f16 where the adapter offers `shader-f16` (ignored elsewhere).
    pub f16: bool,
    /// Force a matvec variant (bench, tests).
    pub matvec: Option<Reduction>,
    /// Force a matmul tiling (bench, tests).
    pub tile: Option<Tile>,
}

impl KernelOptions {
    /// The binding limit in force: the smaller of the device's and the caller's, and at most
    /// 4 GiB, so that every word index of a chunk fits the kernels' u32 arithmetic.
    pub fn binding_limit(&self, caps: &DeviceCaps) -> u64 {
        let device = caps.max_binding_bytes.min(u64::from(u32::MAX));
        self.max_binding_bytes.map_or(device, |b| b.min(device))
    }

    fn precision(&self, caps: &DeviceCaps) -> Precision {
        if self.f16 && caps.shader_f16 { Precision::F16 } else { Precision::F32 }
    }

    /// The matvec variant for a `k`-column weight.
    pub fn matvec_kernel(&self, scheme: QuantScheme, k: usize, caps: &DeviceCaps) -> Kernel {
        let subgroups = self.subgroups.unwrap_or(caps.subgroups);
        let reduction = self.matvec.unwrap_or_else(|| default_reduction(scheme, k, subgroups, caps.software));
        Kernel::Matvec { scheme, precision: self.precision(caps), reduction, fuse: Fuse::NONE }
    }

    /// The matmul variant for an `m`-row activation.
    pub fn matmul_kernel(&self, scheme: QuantScheme, m: usize, caps: &DeviceCaps) -> Kernel {
        let tile = self.tile.unwrap_or(if caps.software && m > 16 {
            // On a CPU every shared-memory load is a per-lane loop: the largest register
            // tile (fewest loads per multiply-add) wins, 1.7× over 32×32/4×4 on lavapipe
            // at M = 64. A few rows leave most of a 64-row tile idle, hence the next branch.
            Tile { tm: 64, tn: 64, rm: 8, rn: 8 }
        } else if m <= 16 {
            Tile { tm: 16, tn: 64, rm: 2, rn: 8 }
        } else {
            Tile { tm: 32, tn: 32, rm: 4, rn: 4 }
        });
        Kernel::Matmul { scheme, precision: self.precision(caps), tile, epilogue: Epilogue::NONE }
    }
}

/// Chunks (units of one lane's work) per weight row: half-blocks for q8, blocks for q4,
/// 8-weight groups for f16. Mirrors `row_dot` in the matvec family files.
pub fn matvec_chunks(scheme: QuantScheme, k: usize) -> usize {
    let kb = crate::quant::blocks_per_row(k);
    match scheme {
        QuantScheme::Q8 => 2 * kb,
        QuantScheme::Q4 => kb,
        QuantScheme::F16 => k.div_ceil(2).div_ceil(4),
    }
}

fn default_reduction(scheme: QuantScheme, k: usize, subgroups: bool, software: bool) -> Reduction {
    if subgroups {
        return Reduction::Subgroup { wg: 128, rpw: 16, rpi: 4 };
    }
    if software {
        // A CPU runs a workgroup's invocations as SIMD lanes, and lavapipe performs every
        // per-lane buffer load as a scalar loop: one invocation per row group (no barrier, no
        // shared memory) and 8 rows per invocation (one activation load serves 8 rows) won
        // on lavapipe, 4× faster than one row per invocation. Workgroups of one SIMD batch
        // (8) keep 64 rows per workgroup, enough workgroups for every core even at N = 192.
        return Reduction::Workgroup { wg: 8, tpr: 1, rpi: 8 };
    }
    // Enough lanes per row to keep each busy at least twice, at most 32.
    let chunks = matvec_chunks(scheme, k) as u32;
    let tpr = (chunks / 2).clamp(1, 32).next_power_of_two().min(32);
    Reduction::Workgroup { wg: 128, tpr, rpi: 4 }
}

/// Every variant the crate can build: what the naga tests validate and the template test
/// checks. Not all are useful, but all must compile.
pub fn all_variants() -> Vec<Kernel> {
    let mut out = vec![Kernel::Copy { wg: 64, items: 1 }, Kernel::Copy { wg: 64, items: 16 }, Kernel::FmaPeak { wg: 64 }];
    for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
        for precision in [Precision::F32, Precision::F16] {
            for reduction in [
                Reduction::Workgroup { wg: 64, tpr: 1, rpi: 4 },
                Reduction::Workgroup { wg: 8, tpr: 1, rpi: 8 },
                Reduction::Workgroup { wg: 128, tpr: 16, rpi: 4 },
                Reduction::Subgroup { wg: 128, rpw: 16, rpi: 4 },
                Reduction::Subgroup { wg: 64, rpw: 24, rpi: 8 },
            ] {
                for fuse in [Fuse::NONE, Fuse { swiglu: false, addends: 1 }, Fuse { swiglu: true, addends: 2 }] {
                    out.push(Kernel::Matvec { scheme, precision, reduction, fuse });
                }
            }
            for tile in [Tile { tm: 32, tn: 32, rm: 4, rn: 4 }, Tile { tm: 16, tn: 64, rm: 2, rn: 8 }] {
                out.push(Kernel::Matmul { scheme, precision, tile, epilogue: Epilogue::NONE });
            }
            let tile = Tile { tm: 64, tn: 64, rm: 8, rn: 8 };
            for act in [Act::None, Act::GeluErf, Act::GeluTanh, Act::QuickGelu, Act::Silu] {
                for (bias, residual) in [(true, false), (true, true), (false, true)] {
                    out.push(Kernel::Matmul { scheme, precision, tile, epilogue: Epilogue { bias, act, residual } });
                }
            }
        }
    }
    out.extend(crate::shaders::FusedOp::ALL.map(|op| Kernel::Fused { op, wg: op.workgroup_size() }));
    // Head sizes of the supported models (SigLIP 64/72, Qwen-VL's vision and Phi 80, Qwen2 128)
    // and the extremes.
    for joined in [false, true] {
        out.extend([1, 16, 18, 20, 32, 64].map(|hd4| Kernel::FlashAttention { hd4, rows: 1, joined }));
        out.extend([(1, 8), (16, 8), (18, 7), (20, 6), (32, 4), (64, 2)].map(|(hd4, rows)| Kernel::FlashAttention { hd4, rows, joined }));
    }
    out.extend(crate::gather::TableFormat::ALL.map(|format| Kernel::Gather { format }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(subgroups: bool, shader_f16: bool, software: bool) -> DeviceCaps {
        DeviceCaps { max_binding_bytes: 1 << 27, subgroups, shader_f16, software, max_workgroups: 65535 }
    }

    #[test]
    fn every_default_and_listed_variant_is_valid() {
        for k in all_variants() {
            match k {
                Kernel::Matvec { reduction, .. } => assert!(reduction.is_valid(), "{}", k.label()),
                Kernel::Matmul { tile, .. } => assert!(tile.is_valid(), "{}", k.label()),
                Kernel::Copy { .. } | Kernel::FmaPeak { .. } | Kernel::Fused { .. } | Kernel::FlashAttention { .. } | Kernel::Gather { .. } => {}
            }
        }
        for c in [caps(false, false, false), caps(true, true, false), caps(true, true, true)] {
            for scheme in [QuantScheme::Q8, QuantScheme::Q4, QuantScheme::F16] {
                for k in [1, 33, 576, 1536, 8960] {
                    let Kernel::Matvec { reduction, .. } = KernelOptions::default().matvec_kernel(scheme, k, &c) else { panic!("matvec") };
                    assert!(reduction.is_valid(), "{reduction:?}");
                }
                for m in [2, 16, 17, 1024] {
                    let Kernel::Matmul { tile, .. } = KernelOptions::default().matmul_kernel(scheme, m, &c) else { panic!("matmul") };
                    assert!(tile.is_valid(), "{tile:?}");
                }
            }
        }
    }

    #[test]
    fn f16_compute_only_where_offered_and_asked() {
        let asked = KernelOptions { f16: true, ..Default::default() };
        assert!(asked.matvec_kernel(QuantScheme::Q4, 64, &caps(false, true, false)).needs_f16());
        assert!(!asked.matvec_kernel(QuantScheme::Q4, 64, &caps(false, false, false)).needs_f16());
        assert!(!KernelOptions::default().matmul_kernel(QuantScheme::Q4, 64, &caps(false, true, false)).needs_f16());
    }

    #[test]
    fn subgroups_follow_the_device_unless_forced() {
        let on = caps(true, false, false);
        assert!(KernelOptions::default().matvec_kernel(QuantScheme::Q8, 576, &on).needs_subgroups());
        let off = KernelOptions { subgroups: Some(false), ..Default::default() };
        assert!(!off.matvec_kernel(QuantScheme::Q8, 576, &on).needs_subgroups());
    }

    #[test]
    fn binding_limit_is_the_smaller() {
        let c = caps(false, false, false);
        assert_eq!(KernelOptions::default().binding_limit(&c), 1 << 27);
        assert_eq!(KernelOptions { max_binding_bytes: Some(4096), ..Default::default() }.binding_limit(&c), 4096);
        assert_eq!(KernelOptions { max_binding_bytes: Some(1 << 40), ..Default::default() }.binding_limit(&c), 1 << 27);
    }
}
