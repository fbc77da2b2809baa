//! Prompt construction: the model's Jinja chat template (rendered with minijinja, configured like
//! transformers' sandbox: `trim_blocks`, `lstrip_blocks`, Python string methods), then the
//! expansion of each `<image>`: Idefics3's tile markers and `image_seq_len` image tokens
//! (`Idefics3Processor.replace_image_token`), or LLaVA's plain repetition.

use minijinja::{Environment, Error as JinjaError, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Placeholder the chat template emits for an image.
pub const IMAGE_TOKEN: &str = "<image>";
pub const FAKE_IMAGE_TOKEN: &str = "<fake_token_around_image>";
pub const GLOBAL_IMAGE_TOKEN: &str = "<global-img>";
pub const END_OF_UTTERANCE: &str = "<end_of_utterance>";

/// One part of a message.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ContentPart {
    Image,
    Text { text: String },
}

/// One chat message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Vec<ContentPart>,
}

impl Message {
    /// A user turn: the image (if any) first, then the text, as SmolVLM's examples do.
    pub fn user(text: &str, with_image: bool) -> Self {
        let mut content = Vec::new();
        if with_image {
            content.push(ContentPart::Image);
        }
        content.push(ContentPart::Text { text: text.to_string() });
        Self { role: "user".into(), content }
    }

    pub fn assistant(text: &str) -> Self {
        Self { role: "assistant".into(), content: vec![ContentPart::Text { text: text.to_string() }] }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    /// Message content goes to the template as one string (text-only chat templates) rather
    /// than a list of typed parts (the vision-language templates).
    text_content: bool,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").finish_non_exhaustive()
    }
}

impl ChatTemplate {
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> std::result::Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| ModelError::Template(format!("cannot parse: {e}")))?;
        Ok(Self { env, bos: bos.to_string(), eos: eos.to_string(), text_content: false })
    }

    /// Hand message content to the template as a string, as text-only models' templates
    /// (`message['content'] + ...`) expect.
    pub fn with_text_content(mut self, yes: bool) -> Self {
        self.text_content = yes;
        self
    }

    /// `apply_chat_template(messages, add_generation_prompt=...)`.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String> {
        let tmpl = self.env.get_template("chat").map_err(|e| ModelError::Template(e.to_string()))?;
        let messages = if self.text_content {
            let mut flat = Vec::with_capacity(messages.len());
            for m in messages {
                let mut text = String::new();
                for part in &m.content {
                    match part {
                        ContentPart::Text { text: t } => text.push_str(t),
                        ContentPart::Image => {
                            return Err(ModelError::Template("this model's template takes text only, not images".into()));
                        }
                    }
                }
                flat.push(minijinja::Value::from_serialize(serde_json::json!({ "role": m.role, "content": text })));
            }
            minijinja::Value::from(flat)
        } else {
            minijinja::Value::from_serialize(messages)
        };
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos,
            eos_token => self.eos,
        })
        .map_err(|e| ModelError::Template(format!("cannot render: {e}")))
    }
}

/// The text that replaces one `<image>`: tiles row by row with `<row_r_col_c>` markers, then the
/// global image; or just the global image when the image was not split (rows = cols = 0).
pub fn expand_image(rows: usize, cols: usize, image_seq_len: usize) -> String {
    let tokens = IMAGE_TOKEN.repeat(image_seq_len);
    if rows == 0 && cols == 0 {
        return format!("{FAKE_IMAGE_TOKEN}{GLOBAL_IMAGE_TOKEN}{tokens}{FAKE_IMAGE_TOKEN}");
    }
    let mut out = String::new();
    for r in 1..=rows {
        for c in 1..=cols {
            out.push_str(&format!("{FAKE_IMAGE_TOKEN}<row_{r}_col_{c}>{tokens}"));
        }
        out.push('\n');
    }
    out.push_str(&format!("\n{FAKE_IMAGE_TOKEN}{GLOBAL_IMAGE_TOKEN}{tokens}{FAKE_IMAGE_TOKEN}"));
    out
}

/// Replace the `<image>` placeholders of a rendered prompt, in order, by their Idefics3
/// expansions. The number of placeholders must equal the number of images.
pub fn expand_images(prompt: &str, images: &[(usize, usize)], image_seq_len: usize) -> Result<String> {
    let expansions: Vec<String> = images.iter().map(|&(rows, cols)| expand_image(rows, cols, image_seq_len)).collect();
    expand_placeholders(prompt, IMAGE_TOKEN, &expansions)
}

/// Replace each `placeholder` of a rendered prompt, in order, by one of `expansions` (LLaVA
/// repeats its image token once per image feature: `"<image>" * num_image_tokens`).
pub fn expand_placeholders(prompt: &str, placeholder: &str, expansions: &[String]) -> Result<String> {
    let parts: Vec<&str> = prompt.split(placeholder).collect();
    if parts.len() - 1 != expansions.len() {
        return Err(ModelError::ImageTokenMismatch { tokens: parts.len() - 1, features: expansions.len() });
    }
    let mut out = String::from(parts[0]);
    for (part, expansion) in parts[1..].iter().zip(expansions) {
        out.push_str(expansion);
        out.push_str(part);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_matches_transformers_layout() {
        let s = expand_image(1, 2, 2);
        assert_eq!(
            s,
            "<fake_token_around_image><row_1_col_1><image><image><fake_token_around_image><row_1_col_2><image><image>\n\n<fake_token_around_image><global-img><image><image><fake_token_around_image>"
        );
        assert_eq!(expand_image(0, 0, 1), "<fake_token_around_image><global-img><image><fake_token_around_image>");
    }

    #[test]
    fn placeholder_count_must_match() {
        let e = expand_images("a<image>b<image>", &[(0, 0)], 1).unwrap_err();
        assert!(matches!(e, ModelError::ImageTokenMismatch { tokens: 2, features: 1 }));
    }

    #[test]
    fn template_uses_python_methods_and_raise() {
        let t = ChatTemplate::new("{{ messages[0]['content'][0]['text'].strip() | upper }}", "", "").unwrap();
        let out = t.render(&[Message::user("  hi ", false)], true).unwrap();
        assert_eq!(out, "HI");
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        assert!(t.render(&[], true).unwrap_err().to_string().contains("no system role"));
    }
}
