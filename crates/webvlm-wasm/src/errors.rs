//! Errors cross to JavaScript as `Error` objects whose `name` is one of the web package's error
//! classes, so the worker can rebuild the typed error without parsing messages.

use js_sys::Reflect;
use wasm_bindgen::JsValue;
use webvlm_model::ModelError;
use webvlm_runtime::GenerateError;

pub type JsResult<T> = Result<T, JsValue>;

/// A JS `Error` with the given `name`.
pub fn named(name: &str, message: impl std::fmt::Display) -> JsValue {
    let error = js_sys::Error::new(&message.to_string());
    error.set_name(name);
    let value: JsValue = error.into();
    // Keep the name enumerable too: structured clone drops non-enumerable `name` on some engines.
    let _ = Reflect::set(&value, &"errorName".into(), &name.into());
    value
}

/// Which class of the web package a model error becomes ([`ModelError::class`]).
pub fn model_error_name(e: &ModelError) -> &'static str {
    e.class()
}

pub fn model(e: ModelError) -> JsValue {
    named(model_error_name(&e), &e)
}

pub fn generate(e: GenerateError) -> JsValue {
    match e {
        GenerateError::InvalidOption(_) => named("InvalidRequestError", &e),
        GenerateError::NonFiniteLogits { .. } => named("NumericalError", &e),
        GenerateError::Model(m) => model(m),
    }
}

