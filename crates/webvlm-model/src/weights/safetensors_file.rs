//! One safetensors file → f32 tensors. bf16 and f16 widen exactly to f32.

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

use crate::error::{ModelError, Result};

/// Parse `bytes` (the whole file `file`) and pass every tensor, widened to f32 and under its
/// [`canonical_name`](super::canonical_name), to `sink`.
/// A truncated or corrupt file is an error naming the file, never a panic.
pub fn read_safetensors_into(
    file: &str,
    bytes: &[u8],
    sink: &mut dyn FnMut(String, Vec<usize>, Vec<f32>),
) -> Result<()> {
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| ModelError::Safetensors { file: file.to_string(), message: e.to_string() })?;
    // A fixed order (by name) makes `webvlm convert` reproducible byte for byte.
    let mut views: Vec<_> = tensors.iter().collect();
    views.sort_by(|a, b| a.0.cmp(b.0));
    for (name, view) in views {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
            Dtype::F16 => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            Dtype::BF16 => data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
            other => {
                return Err(ModelError::UnsupportedDtype { name: name.to_string(), dtype: format!("{other:?}") });
            }
        };
        let shape = view.shape().to_vec();
        let expected: usize = shape.iter().product();
        if values.len() != expected {
            return Err(ModelError::Safetensors {
                file: file.to_string(),
                message: format!("tensor `{name}` holds {} values for shape {shape:?}", values.len()),
            });
        }
        sink(super::canonical_name(name), shape, values);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(dtype: &str, data: &[u8], shape: &str) -> Vec<u8> {
        let header = format!(
            r#"{{"t":{{"dtype":"{dtype}","shape":{shape},"data_offsets":[0,{}]}}}}"#,
            data.len()
        );
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
        let mut got = Vec::new();
        read_safetensors_into("x.safetensors", bytes, &mut |n, s, v| got.push((n, s, v)))?;
        Ok(got)
    }

    #[test]
    fn widens_bf16_and_f16_exactly() {
        let vals = [1.5f32, -0.15625, 3.0e-3];
        let bf: Vec<u8> = vals.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect();
        let got = read(&file_with("BF16", &bf, "[3]")).unwrap();
        let want: Vec<f32> = vals.iter().map(|v| bf16::from_f32(*v).to_f32()).collect();
        assert_eq!(got[0].2, want);
        let h: Vec<u8> = vals.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect();
        let got = read(&file_with("F16", &h, "[1,3]")).unwrap();
        assert_eq!(got[0].1, vec![1, 3]);
        assert_eq!(got[0].2, vals.iter().map(|v| f16::from_f32(*v).to_f32()).collect::<Vec<_>>());
    }

    #[test]
    fn truncated_file_is_a_named_error() {
        let f: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = file_with("F32", &f, "[2]");
        let e = read(&bytes[..bytes.len() - 3]).unwrap_err();
        assert!(matches!(e, ModelError::Safetensors { .. }), "{e}");
        assert!(e.to_string().contains("x.safetensors"));
        let e = read(&bytes[..5]).unwrap_err();
        assert!(matches!(e, ModelError::Safetensors { .. }), "{e}");
    }

    #[test]
    fn integer_tensors_are_refused_by_name() {
        let e = read(&file_with("I64", &[0u8; 8], "[1]")).unwrap_err();
        assert!(e.to_string().contains("`t`") && e.to_string().contains("I64"), "{e}");
    }
}
