//! A [`ModelSource`] over a JavaScript read callback.

use js_sys::{Function, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use webvlm_model::{ModelError, ModelSource, Result};

pub struct JsSource {
    read: Function,
    names: Vec<String>,
}

impl JsSource {
    pub fn new(read: Function, names: Vec<String>) -> Self {
        Self { read, names }
    }
}

impl ModelSource for JsSource {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let value = self.read.call1(&JsValue::NULL, &JsValue::from_str(name)).map_err(|e| ModelError::Io {
            file: name.to_string(),
            message: js_message(&e),
        })?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        let bytes = value.dyn_into::<Uint8Array>().map_err(|_| ModelError::Io {
            file: name.to_string(),
            message: "the read callback must return a Uint8Array or undefined".into(),
        })?;
        Ok(Some(bytes.to_vec()))
    }

    fn describe(&self) -> String {
        format!("browser model ({} files)", self.names.len())
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.names.clone())
    }
}

fn js_message(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => String::from(err.message()),
        None => format!("{e:?}"),
    }
}
