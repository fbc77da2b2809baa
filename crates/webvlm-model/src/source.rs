//! Where the files of a model come from. Natively that is a directory; in the browser the
//! JavaScript shell hands over bytes it took from OPFS. The model code only sees [`ModelSource`],
//! so it never touches a filesystem itself.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{ModelError, Result};

/// A read-only set of named files (names are relative, `/`-separated, as in a Hub repo).
pub trait ModelSource {
    /// The whole file, or `None` when the model has no such file.
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// The file as UTF-8 text, or `None` when absent.
    fn read_string(&self, name: &str) -> Result<Option<String>> {
        match self.read(name)? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes).map(Some).map_err(|e| ModelError::Io {
                file: name.to_string(),
                message: format!("not UTF-8: {e}"),
            }),
        }
    }

    /// A name to show in messages (a path, or a URL).
    fn describe(&self) -> String;

    /// Names of the files at the top level (used to find `*.gguf` files).
    fn list(&self) -> Result<Vec<String>>;
}

/// A model directory in the standard Hugging Face layout.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(ModelError::Io {
                file: root.display().to_string(),
                message: "not a directory".into(),
            });
        }
        Ok(Self { root })
    }
}

impl ModelSource for DirSource {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.root.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ModelError::Io { file: path.display().to_string(), message: e.to_string() }),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn list(&self) -> Result<Vec<String>> {
        let io = |e: std::io::Error| ModelError::Io { file: self.root.display().to_string(), message: e.to_string() };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(io)? {
            names.push(entry.map_err(io)?.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }
}

/// Files held in memory, e.g. handed over by the browser shell.
#[derive(Debug, Default, Clone)]
pub struct MemorySource {
    files: HashMap<String, Vec<u8>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, name: impl Into<String>, bytes: Vec<u8>) {
        self.files.insert(name.into(), bytes);
    }
}

impl ModelSource for MemorySource {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files.get(name).cloned())
    }

    fn describe(&self) -> String {
        format!("in-memory model ({} files)", self.files.len())
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.files.keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

/// A source whose GGUF model (see [`crate::weights::GgufModel`]) also provides the files a
/// Hugging Face directory would have and the directory lacks: `config.json`, `tokenizer.json`,
/// `tokenizer_config.json`, `chat_template.jinja` and, with an mmproj, `preprocessor_config.json`,
/// all made from the GGUF metadata. Files the directory has win, so a `tokenizer.json` or a
/// `processor_config.json` placed next to the GGUF files is used as it is.
pub struct GgufMetadataSource<'a> {
    inner: &'a dyn ModelSource,
    made: HashMap<String, Vec<u8>>,
}

impl<'a> GgufMetadataSource<'a> {
    pub fn new(inner: &'a dyn ModelSource) -> Result<Self> {
        use crate::weights::{GgufModel, gguf};
        let mut made = HashMap::new();
        if inner.read("config.json")?.is_none()
            && let Some(model) = GgufModel::find(inner)?
        {
            let text = gguf::GgufFile::parse(&model.text)?;
            let mmproj = match &model.mmproj {
                Some(bytes) => Some(gguf::GgufFile::parse(bytes)?),
                None => None,
            };
            let json = |v: serde_json::Value| v.to_string().into_bytes();
            let config = gguf::config_json(&text, mmproj.as_ref())?;
            // A tokenizer.json next to the GGUF files wins, and then the GGUF tokenizer is not
            // built at all: that is how a model whose GGUF tokenizer webvlm cannot build
            // (SentencePiece `llama`, e.g. LLaVA-1.5's Vicuna) still loads.
            if inner.read("tokenizer.json")?.is_none() {
                let mut tokenizer = gguf::tokenizer_json(&text)?;
                if let Some(id) = config["image_token_id"].as_u64().filter(|_| config["model_type"] == "llava") {
                    gguf::add_image_token(&mut tokenizer, id);
                }
                made.insert("tokenizer.json".into(), json(tokenizer));
            }
            if inner.read("tokenizer_config.json")?.is_none() {
                made.insert("tokenizer_config.json".into(), json(gguf::tokenizer_config_json(&text)?));
            }
            made.insert("config.json".into(), json(config));
            if let Some(template) = gguf::chat_template(&text)? {
                made.insert("chat_template.jinja".into(), template.as_bytes().to_vec());
            }
            // A processor_config.json next to the GGUF files carries the image processor too
            // (transformers 5), and the directory's own files win.
            if let Some(mmproj) = &mmproj
                && inner.read("processor_config.json")?.is_none()
            {
                made.insert("preprocessor_config.json".into(), json(gguf::preprocessor_config_json(mmproj)?));
            }
        }
        Ok(Self { inner, made })
    }

    /// Whether any file was made from GGUF metadata.
    pub fn is_gguf(&self) -> bool {
        !self.made.is_empty()
    }
}

impl ModelSource for GgufMetadataSource<'_> {
    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self.inner.read(name)? {
            Some(bytes) => Ok(Some(bytes)),
            None => Ok(self.made.get(name).cloned()),
        }
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = self.inner.list()?;
        names.extend(self.made.keys().filter(|k| !names.contains(k)).cloned().collect::<Vec<_>>());
        names.sort();
        Ok(names)
    }
}
