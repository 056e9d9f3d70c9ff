//! A request's system prompt, decoded or kept as the JSON value sent.
//!
//! The node-kind classifier is the only reader of an Anthropic system prompt in a chain, and
//! it only looks for a few needles in it. A Claude Code prompt is some 24 KB, mostly
//! `\n`-escaped prose: decoding it (and joining its parts) cost more than everything else
//! the later rules add to such a turn. So a chain's parse keeps the value as sent, once it
//! has made sure that decoding it later cannot fail ([`super::anthropic`]), and the
//! classifier searches it in place, decoding it only where a needle may be present
//! (`merkle::kind`).

use std::borrow::Cow;
use std::fmt;

/// A system prompt: Anthropic's `system` (a string, or text parts joined with `"\n"`), or
/// an OpenAI Responses request's `instructions`. Never a message, never hashed.
#[derive(Clone)]
pub struct SystemPrompt(Form);

#[derive(Clone)]
enum Form {
    /// The decoded text.
    Text(String),
    /// An Anthropic `system` value as sent, which decodes without error and holds no `\u`
    /// escape, as the parse that kept it checked.
    AnthropicJson(Box<str>),
}

impl SystemPrompt {
    /// An Anthropic `system` value kept as sent. Only for a value that decodes without
    /// error and holds no `\u` escape.
    pub(super) fn anthropic_json(json: &str) -> Self {
        SystemPrompt(Form::AnthropicJson(json.into()))
    }

    /// The decoded text: borrowed, or decoded from the value sent.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.0 {
            Form::Text(text) => Cow::Borrowed(text),
            // The parse that kept the value made sure it decodes (syntax, escapes, numbers),
            // so the default is never taken.
            Form::AnthropicJson(json) => {
                let decoded = super::anthropic::decode_system(json);
                debug_assert!(decoded.is_ok(), "a kept system prompt decodes: {json}");
                Cow::Owned(decoded.unwrap_or_default())
            }
        }
    }

    /// The value as sent, when it was kept so: JSON without `\u` escapes.
    pub fn json(&self) -> Option<&str> {
        match &self.0 {
            Form::Text(_) => None,
            Form::AnthropicJson(json) => Some(json),
        }
    }
}

impl Default for SystemPrompt {
    fn default() -> Self {
        SystemPrompt(Form::Text(String::new()))
    }
}

/// Prompts are equal when their texts are: the form a prompt was kept in is no part of it.
impl PartialEq for SystemPrompt {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl PartialEq<&str> for SystemPrompt {
    fn eq(&self, other: &&str) -> bool {
        self.text() == *other
    }
}

impl fmt::Debug for SystemPrompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text(), f)
    }
}

impl From<String> for SystemPrompt {
    fn from(text: String) -> Self {
        SystemPrompt(Form::Text(text))
    }
}

impl From<&str> for SystemPrompt {
    fn from(text: &str) -> Self {
        SystemPrompt(Form::Text(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_value_reads_as_its_decoded_text() {
        let kept = SystemPrompt::anthropic_json(
            r#"[{"type":"text","text":"a\n\"b\""},{"type":"image"},{"text":"c","type":"text"}]"#,
        );
        assert_eq!(kept.text(), "a\n\"b\"\nc");
        assert_eq!(kept, SystemPrompt::from("a\n\"b\"\nc"));
        assert_eq!(kept, "a\n\"b\"\nc");
        assert_eq!(format!("{kept:?}"), r#""a\n\"b\"\nc""#);
        assert!(kept.json().is_some());
        assert_eq!(SystemPrompt::anthropic_json(r#""s""#).text(), "s");
        assert_eq!(SystemPrompt::anthropic_json("7").text(), "");
    }
}
