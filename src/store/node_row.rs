//! The column values of one node (docs/storage.md#column-values-of-a-node), encoded
//! before the transaction starts so
//! that no JSON is serialized while the database write lock is held.

use std::borrow::Cow;

use crate::llm::Usage;
use crate::merkle::{ChainNode, NodeKind};

use super::StoreError;
use super::sanitize;

/// The usage columns: all set when the node has usage (zeros included), else all NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageColumns {
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    pub total_tokens: i32,
    pub cache_creation_input_tokens: i32,
    pub cache_read_input_tokens: i32,
    pub total_duration_ns: i64,
    pub prompt_duration_ns: i64,
}

impl UsageColumns {
    pub(crate) fn new(usage: &Usage) -> Self {
        UsageColumns {
            prompt_tokens: clamp_i32(usage.prompt_tokens),
            completion_tokens: clamp_i32(usage.completion_tokens),
            total_tokens: clamp_i32(usage.total_tokens),
            cache_creation_input_tokens: clamp_i32(usage.cache_creation_input_tokens),
            cache_read_input_tokens: clamp_i32(usage.cache_read_input_tokens),
            total_duration_ns: usage.total_duration_ns,
            prompt_duration_ns: usage.prompt_duration_ns,
        }
    }
}

/// The token columns are `INTEGER`: values outside the int32 range are clamped, as the
/// reference does.
pub(crate) fn clamp_i32(n: i64) -> i32 {
    n.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// NULL for an empty or whitespace-only string (Go's `strings.TrimSpace` check).
pub(crate) fn non_blank(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

/// One node, ready to bind.
#[derive(Debug, Clone)]
pub(crate) struct NodeRow {
    pub hash: String,
    pub parent_hash: Option<String>,
    pub bucket: String,
    pub content: String,
    pub kind: Option<String>,
    pub role: Option<String>,
    pub model: Option<String>,
    pub provider: Option<String>,
    pub agent_name: Option<String>,
    pub stop_reason: Option<String>,
    pub usage: Option<UsageColumns>,
    /// `node_kind`: NULL under rules without node kinds.
    pub node_kind: Option<Cow<'static, str>>,
    /// `thread_id`: NULL for the main thread.
    pub thread_id: Option<String>,
    /// The turn's head: inserted already marked, so a new head is counted by its insert.
    pub is_head: bool,
}

impl NodeRow {
    pub(crate) fn encode(
        node: &ChainNode,
        is_head: bool,
        nul: &mut u64,
    ) -> Result<NodeRow, StoreError> {
        let encode_error =
            |e: serde_json::Error| StoreError::InvalidChain(format!("node {}: {e}", node.hash));
        let bucket = serde_json::to_string(&node.bucket).map_err(encode_error)?;
        let content = serde_json::to_string(&node.bucket.content).map_err(encode_error)?;
        let mut column = |s: &str| non_blank(s).map(|s| sanitize::text(s, nul).into_owned());
        Ok(NodeRow {
            hash: node.hash.clone(),
            parent_hash: node
                .parent_hash
                .as_deref()
                .and_then(non_blank)
                .map(str::to_owned),
            kind: column(&node.bucket.kind),
            role: column(&node.bucket.role),
            model: column(&node.bucket.model),
            provider: column(&node.bucket.provider),
            agent_name: column(&node.bucket.agent_name),
            stop_reason: column(&node.stop_reason),
            thread_id: column(&node.thread_id),
            bucket: sanitize::json(bucket, nul),
            content: sanitize::json(content, nul),
            usage: node.usage.as_ref().map(UsageColumns::new),
            node_kind: node.kind.map(NodeKind::stored),
            is_head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ContentBlock;
    use crate::merkle::Bucket;

    fn node(text: &str) -> ChainNode {
        ChainNode {
            hash: "ab".repeat(32),
            parent_hash: Some("  ".into()),
            bucket: Bucket {
                kind: "message".into(),
                role: "user".into(),
                content: Some(vec![ContentBlock {
                    kind: "text".into(),
                    text: text.into(),
                    ..Default::default()
                }]),
                model: " ".into(),
                provider: "anthropic".into(),
                agent_name: String::new(),
            },
            kind: None,
            thread_id: String::new(),
            stop_reason: String::new(),
            usage: None,
        }
    }

    #[test]
    fn integer_conversions_clamp_to_the_int32_range() {
        assert_eq!(clamp_i32(12), 12);
        assert_eq!(clamp_i32(-7), -7);
        assert_eq!(clamp_i32(i64::from(i32::MAX) + 1), i32::MAX);
        assert_eq!(clamp_i32(i64::MIN), i32::MIN);
        let usage = UsageColumns::new(&Usage {
            prompt_tokens: 5_000_000_000,
            total_duration_ns: 5_000_000_000,
            ..Default::default()
        });
        assert_eq!(usage.prompt_tokens, i32::MAX);
        assert_eq!(
            usage.total_duration_ns, 5_000_000_000,
            "ns columns are 64-bit"
        );
        assert_eq!(usage.completion_tokens, 0, "zeros are stored, not NULL");
    }

    #[test]
    fn blank_strings_become_null_columns() {
        let row = NodeRow::encode(&node("hi"), false, &mut 0).unwrap();
        assert_eq!(row.parent_hash, None);
        assert_eq!(row.model, None);
        assert_eq!(row.agent_name, None);
        assert_eq!(row.stop_reason, None);
        assert_eq!(row.role.as_deref(), Some("user"));
        assert_eq!(row.usage, None);
    }

    #[test]
    fn bucket_json_keeps_the_v1_shape() {
        let row = NodeRow::encode(&node("hi"), false, &mut 0).unwrap();
        assert_eq!(
            row.bucket,
            r#"{"type":"message","role":"user","content":[{"type":"text","text":"hi"}],"model":" ","provider":"anthropic"}"#
        );
        assert_eq!(row.content, r#"[{"type":"text","text":"hi"}]"#);
        let mut empty = node("");
        empty.bucket.content = None;
        assert_eq!(
            NodeRow::encode(&empty, false, &mut 0).unwrap().content,
            "null"
        );
    }

    #[test]
    fn kinds_and_thread_ids_are_columns_of_their_own() {
        let row = NodeRow::encode(&node("hi"), false, &mut 0).unwrap();
        assert_eq!((row.node_kind, row.thread_id), (None, None));
        let mut injected = node("hi");
        injected.kind = Some(NodeKind::Injected("mcp-instructions"));
        injected.thread_id = "agent-2".into();
        let row = NodeRow::encode(&injected, false, &mut 0).unwrap();
        assert_eq!(row.node_kind.as_deref(), Some("injected:mcp-instructions"));
        assert_eq!(row.thread_id.as_deref(), Some("agent-2"));
        assert!(!row.bucket.contains("agent-2"), "not in the bucket");
    }

    #[test]
    fn nul_is_replaced_in_json_and_counted() {
        let mut nul = 0;
        let row = NodeRow::encode(&node("a\0b"), false, &mut nul).unwrap();
        assert_eq!(nul, 2, "once in the bucket, once in the content");
        assert!(row.content.contains("a\\ufffdb"), "{}", row.content);
    }
}
