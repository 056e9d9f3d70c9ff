//! Provider-neutral LLM message types and the request parsers of each provider.
//!
//! The serde `Serialize` derives render the *storage* JSON (Go `encoding/json` v1 with
//! `omitempty`): `is_error:false` is omitted and a nil content renders as `null`. The hashed
//! form is produced by `merkle`, never from these derives. `Deserialize` follows Go's decoder
//! (see [`crate::gojson`]): `null` leaves a field at its zero value, the last duplicate key
//! wins, numbers inside `tool_input` are float64.

pub mod anthropic;
mod error;
pub mod ollama;
pub mod openai;
mod parse;
pub mod provider;
mod raw;
pub mod responses;
pub mod rules;
mod system;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::gojson::{in_place_struct, pointer_fields};

pub use error::ParseError;
pub use raw::RawJson;
pub use rules::Rules;
pub use system::SystemPrompt;

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Go's `omitempty` on a map: omitted when nil or empty.
fn is_empty_map(m: &Option<Map<String, Value>>) -> bool {
    m.as_ref().is_none_or(Map::is_empty)
}

/// A provider request reduced to provider-neutral fields
/// (docs/hashing.md#provider-request-parsing).
///
/// Only `model` and `messages` reach the node chain; the rest is kept because the parsers
/// must type-check it anyway, and tests pin what each provider maps where. The verbatim
/// request stays in [`crate::wire::TurnPayload::request`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    /// The system prompt (never a message, never hashed).
    pub system: SystemPrompt,
    pub max_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub top_k: Option<i64>,
    pub stop: Vec<String>,
    pub seed: Option<i64>,
    pub stream: Option<bool>,
    /// How many tool definitions `tools` holds; counted where the rules type `tools`.
    pub tools: usize,
    /// An OpenAI Responses request (`input` items), not Chat Completions.
    pub responses: bool,
    /// A Responses request that declares tool routing: `tool_choice` is a string other than
    /// `""` and `"none"`, or a non-empty object.
    pub tool_choice_enabled: bool,
    /// Provider-specific parameters (`frequency_penalty`, `num_ctx`, `keep_alive`, …).
    pub extra: Map<String, Value>,
}

/// One block of a message's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub image_base64: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tool_use_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tool_name: String,
    /// Free-form tool input; `None` and an empty map are the same thing to storage and hash.
    #[serde(skip_serializing_if = "is_empty_map")]
    pub tool_input: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tool_result_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tool_output: String,
    #[serde(skip_serializing_if = "is_false")]
    pub is_error: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub thinking_signature: String,
    /// A JSON value kept as it was sent (server-tool results, Responses items no field
    /// holds); only rule sets with raw content set it. `null` is kept, and stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<RawJson>,
}

impl ContentBlock {
    /// A `{type:"text", text}` block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock {
            kind: "text".to_owned(),
            text: text.into(),
            ..ContentBlock::default()
        }
    }
}

/// A provider-neutral message. `content: None` is Go's nil slice (`null` in storage, `[]` in the hash).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Vec<ContentBlock>>,
}

/// Token usage of a response, as the capture proxy reduced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub completion_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub total_duration_ns: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub prompt_duration_ns: i64,
}

in_place_struct!(ContentBlock, "a content block object" {
    "type" => kind,
    "text" => text,
    "image_url" => image_url,
    "image_base64" => image_base64,
    "media_type" => media_type,
    "tool_use_id" => tool_use_id,
    "tool_name" => tool_name,
    "tool_input" => tool_input,
    "tool_result_id" => tool_result_id,
    "tool_output" => tool_output,
    "is_error" => is_error,
    "thinking" => thinking,
    "thinking_signature" => thinking_signature,
    "content" => content,
});

in_place_struct!(Usage, "a usage object" {
    "prompt_tokens" => prompt_tokens,
    "completion_tokens" => completion_tokens,
    "total_tokens" => total_tokens,
    "cache_creation_input_tokens" => cache_creation_input_tokens,
    "cache_read_input_tokens" => cache_read_input_tokens,
    "total_duration_ns" => total_duration_ns,
    "prompt_duration_ns" => prompt_duration_ns,
});

pointer_fields!(Usage);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_json_follows_go_v1_omitempty() {
        let block = ContentBlock {
            kind: "tool_use".into(),
            tool_input: Some(Map::new()),
            ..ContentBlock::default()
        };
        assert_eq!(
            serde_json::to_string(&block).unwrap(),
            r#"{"type":"tool_use"}"#
        );
        let msg = Message {
            role: "user".into(),
            content: None,
        };
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"role":"user","content":null}"#
        );
    }

    #[test]
    fn decoding_tolerates_nulls_and_duplicate_keys() {
        let block: ContentBlock = serde_json::from_str(
            r#"{"type":"text","text":"a","text":"b","is_error":null,"tool_input":null}"#,
        )
        .unwrap();
        assert_eq!(block, ContentBlock::text("b"));
    }

    #[test]
    fn decoding_rejects_wrong_types() {
        assert!(serde_json::from_str::<Usage>(r#"{"prompt_tokens":1.5}"#).is_err());
        assert!(serde_json::from_str::<ContentBlock>(r#"{"tool_input":[1]}"#).is_err());
        assert!(serde_json::from_str::<ContentBlock>(r#"{"text":5}"#).is_err());
    }

    #[test]
    fn tool_input_numbers_are_doubles() {
        let block: ContentBlock =
            serde_json::from_str(r#"{"type":"tool_use","tool_input":{"i":9007199254740993}}"#)
                .unwrap();
        let input = block.tool_input.unwrap();
        assert_eq!(input["i"].as_f64(), Some(9007199254740992.0));
    }
}
