//! Provider-neutral LLM message types and the request parsers of each provider.
//!
//! The serde derives render the *storage* JSON (Go `encoding/json` v1 with `omitempty`):
//! `is_error:false` is omitted and a nil content renders as `null`. The hashed form is
//! produced by `merkle`, never from these derives.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// One block of a message's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentBlock {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_url: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image_base64: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_use_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_name: String,
    /// Free-form tool input; `None` and an empty map are the same thing to storage and hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_input: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_result_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_output: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub is_error: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub thinking_signature: String,
}

/// A provider-neutral message. `content: None` is Go's nil slice (`null` in storage, `[]` in the hash).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub content: Option<Vec<ContentBlock>>,
}

/// Token usage of a response, as the capture proxy reduced it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_tokens: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completion_tokens: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_tokens: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_creation_input_tokens: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_read_input_tokens: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub total_duration_ns: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_duration_ns: i64,
}
