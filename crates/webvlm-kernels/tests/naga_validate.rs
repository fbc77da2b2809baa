//! Every kernel variant, including the subgroup and f16 ones an adapter may lack, must parse
//! and validate with the naga wgpu uses, and bind only what its entry point uses (wgpu infers
//! the bind-group layout from the shader, so an unused binding breaks the launch).

use naga::valid::{Capabilities, GlobalUse, ValidationFlags, Validator};
use webvlm_kernels::variants::all_variants;

/// What every WebGPU-compliant adapter gives naga: `unpack2x16float` (wgpu's downlevel flag
/// `SHADER_F16_IN_F32`, missing only on some GLES drivers).
const BASELINE: Capabilities = Capabilities::SHADER_FLOAT16_IN_FLOAT32;

#[test]
fn every_variant_validates_and_uses_every_binding() {
    for kernel in all_variants() {
        let label = kernel.label();
        let src = kernel.wgsl();
        // Tint (browsers) checks more than naga (e.g. constant-expression overflow, some
        // uniformity): `WEBVLM_WGSL_DUMP=dir` writes every variant there for a check in Chromium.
        if let Some(dir) = std::env::var_os("WEBVLM_WGSL_DUMP") {
            let name = label.replace('/', "_");
            std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(std::path::Path::new(&dir).join(format!("{name}.wgsl")), &src)).expect("dump");
        }
        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{label}: {}\n{src}", e.emit_to_string(&src)));
        let mut caps = BASELINE;
        if kernel.needs_f16() {
            caps |= Capabilities::SHADER_FLOAT16;
        }
        if kernel.needs_subgroups() {
            caps |= Capabilities::SUBGROUP;
        }
        let info = Validator::new(ValidationFlags::all(), caps)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{label}: {}", e.emit_to_string(&src)));
        assert_eq!(module.entry_points.len(), 1, "{label}");
        assert_eq!(module.entry_points[0].name, "main", "{label}: burn's SourceKernel calls `main`");
        let ep = info.get_entry_point(0);
        let mut bindings = Vec::new();
        for (handle, var) in module.global_variables.iter() {
            if let Some(b) = &var.binding {
                assert!(!ep[handle].is_empty() && ep[handle] != GlobalUse::QUERY, "{label}: binding {} `{:?}` is unused", b.binding, var.name);
                bindings.push(b.binding);
            }
        }
        bindings.sort();
        assert_eq!(bindings, (0..bindings.len() as u32).collect::<Vec<_>>(), "{label}: bindings must be 0..n in launch order");
    }
}

/// The f32 variants must not need any optional capability: they are the fallback everywhere.
#[test]
fn default_variants_need_no_capability() {
    for kernel in all_variants().into_iter().filter(|k| !k.needs_f16() && !k.needs_subgroups()) {
        let src = kernel.wgsl();
        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
        Validator::new(ValidationFlags::all(), BASELINE)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {}", kernel.label(), e.emit_to_string(&src)));
    }
}
