//! The node hash (docs/hashing.md#the-node-hash): SHA-256, lowercase hex, of the canonical
//! form of
//! `{"parent": <parent hash or "">, "content": {"type", "role", "content": <projected blocks>}}`.
//!
//! The blocks are marshalled with Go json/v2 rules: a nil content is `[]`, `omitempty`
//! omits only `""` and empty objects, so `"is_error": false` and `"type": ""` are always
//! present. Model, provider, agent, stop reason and usage are not hashed. What the
//! projection does, and whether raw `content` is hashed, is the rule set's to say.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Bucket;
use super::canonical::{write_object, write_str, write_value};
use super::projection::{Projector, prunes_to_empty};
use crate::llm::{ContentBlock, RawJson, Rules};

/// Whether blocks are projected while they are written. The hash always projects;
/// `AsIs` serves to check the writer against [`super::project_content`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    Apply,
    AsIs,
}

/// Hashes nodes under one rule set, reusing one buffer for their canonical bytes and the
/// projectors' buffers for their texts.
#[derive(Debug)]
pub struct NodeHasher {
    rules: Rules,
    buf: Vec<u8>,
    text: Projector,
    output: Projector,
}

impl NodeHasher {
    pub fn new(rules: &Rules) -> Self {
        NodeHasher {
            rules: *rules,
            buf: Vec::with_capacity(4096),
            text: Projector::new(rules.harness_tags),
            output: Projector::new(rules.harness_tags),
        }
    }

    /// The hash of a node with this bucket under `parent` (`None` for a root).
    pub fn hash(&mut self, parent: Option<&str>, bucket: &Bucket) -> String {
        self.buf.clear();
        self.write_node(
            parent,
            &bucket.kind,
            &bucket.role,
            bucket.content.as_deref(),
            Projection::Apply,
        );
        to_hex(&Sha256::digest(&self.buf))
    }

    /// Appends the canonical hash input of a node to the buffer. Keys are written in their
    /// sorted order: `content` < `parent`, and `content` < `role` < `type` inside.
    fn write_node(
        &mut self,
        parent: Option<&str>,
        kind: &str,
        role: &str,
        content: Option<&[ContentBlock]>,
        projection: Projection,
    ) {
        let NodeHasher {
            rules,
            buf,
            text: text_projector,
            output: output_projector,
        } = self;
        buf.extend_from_slice(br#"{"content":{"content":["#);
        let mut first = true;
        for block in content.unwrap_or_default() {
            let apply = projection == Projection::Apply;
            let text = if apply && !block.text.is_empty() {
                let projected = text_projector.project(&block.text);
                // A block whose text projects to nothing is dropped whole.
                if projected.is_empty() {
                    continue;
                }
                projected
            } else {
                block.text.as_str()
            };
            let output = if apply && rules.project_tool_output && !block.tool_output.is_empty() {
                // An output that projects to nothing is omitted; its block stays.
                output_projector.project(&block.tool_output)
            } else {
                block.tool_output.as_str()
            };
            let raw = block
                .content
                .as_ref()
                .filter(|_| !apply || rules.raw_content);
            if !first {
                buf.push(b',');
            }
            first = false;
            write_block(buf, block, text, output, raw, projection);
        }
        buf.extend_from_slice(br#"],"role":"#);
        write_str(buf, role);
        buf.extend_from_slice(br#","type":"#);
        write_str(buf, kind);
        buf.extend_from_slice(br#"},"parent":"#);
        write_str(buf, parent.unwrap_or_default());
        buf.push(b'}');
    }
}

/// Hashes under the rules reel hashes by until a caller picks others.
impl Default for NodeHasher {
    fn default() -> Self {
        NodeHasher::new(&Rules::default())
    }
}

/// Lowercase hex of a digest. `hex::encode` goes through a char iterator, which showed up
/// at 4% of chain building; a table lookup per nibble is enough here.
fn to_hex(digest: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for &b in digest {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// The hash of one node under `rules` (see [`NodeHasher`] to hash many).
pub fn node_hash(parent: Option<&str>, bucket: &Bucket, rules: &Rules) -> String {
    NodeHasher::new(rules).hash(parent, bucket)
}

/// The exact bytes that are hashed for a node under `rules`; shown when debugging a mismatch.
pub fn hash_input(parent: Option<&str>, bucket: &Bucket, rules: &Rules) -> Vec<u8> {
    let mut buf = Vec::new();
    write_hash_input(
        &mut buf,
        parent,
        &bucket.kind,
        &bucket.role,
        bucket.content.as_deref(),
        Projection::Apply,
        rules,
    );
    buf
}

/// Appends the canonical hash input of a node under `rules`.
pub fn write_hash_input(
    buf: &mut Vec<u8>,
    parent: Option<&str>,
    kind: &str,
    role: &str,
    content: Option<&[ContentBlock]>,
    projection: Projection,
    rules: &Rules,
) {
    let mut hasher = NodeHasher::new(rules);
    hasher.write_node(parent, kind, role, content, projection);
    buf.extend_from_slice(&hasher.buf);
}

/// One block, members in sorted order, `text` and `output` already projected.
fn write_block(
    buf: &mut Vec<u8>,
    block: &ContentBlock,
    text: &str,
    output: &str,
    raw: Option<&RawJson>,
    projection: Projection,
) {
    let mut obj = Members { buf, first: true };
    if let Some(raw) = raw {
        write_raw(&mut obj, raw);
    }
    obj.string("image_base64", &block.image_base64);
    obj.string("image_url", &block.image_url);
    obj.key("is_error");
    obj.buf
        .extend_from_slice(if block.is_error { b"true" } else { b"false" });
    obj.string("media_type", &block.media_type);
    obj.string("text", text);
    obj.string("thinking", &block.thinking);
    if projection == Projection::AsIs {
        obj.string("thinking_signature", &block.thinking_signature);
    }
    if let Some(input) = &block.tool_input {
        let prune = projection == Projection::Apply;
        let empty = if prune {
            prunes_to_empty(input)
        } else {
            input.is_empty()
        };
        if !empty {
            obj.key("tool_input");
            write_object(obj.buf, input, prune);
        }
    }
    obj.string("tool_name", &block.tool_name);
    obj.string("tool_output", output);
    obj.string("tool_result_id", &block.tool_result_id);
    obj.string("tool_use_id", &block.tool_use_id);
    obj.key("type");
    write_str(obj.buf, &block.kind);
    obj.buf.push(b'}');
}

/// The raw `content` member in canonical form, omitted when it is `null`, `""`, `{}` or
/// `[]` (docs/hashing.md#raw-content). It is not projected.
fn write_raw(obj: &mut Members<'_>, raw: &RawJson) {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(Value::Null) => {}
        Ok(Value::String(s)) if s.is_empty() => {}
        Ok(Value::Array(items)) if items.is_empty() => {}
        Ok(Value::Object(map)) if map.is_empty() => {}
        Ok(value) => {
            obj.key("content");
            write_value(obj.buf, &value);
        }
        // Only a number beyond float64 fails to parse; no canonical form holds it (the
        // reference fails to hash it), so its text is hashed as it came.
        Err(_) => {
            obj.key("content");
            obj.buf.extend_from_slice(raw.get().as_bytes());
        }
    }
}

/// Writes the members of one object in the order they are given.
struct Members<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl Members<'_> {
    fn key(&mut self, key: &str) {
        self.buf.push(if self.first { b'{' } else { b',' });
        self.first = false;
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// A string member, omitted when empty (json/v2 `omitempty`).
    fn string(&mut self, key: &str, value: &str) {
        if !value.is_empty() {
            self.key(key);
            write_str(self.buf, value);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reference's node tests, and the `Node.Hash` cases of its projection tests
    //! (docs/hashing.md#the-node-hash, docs/hashing.md#projection).

    use super::*;

    const OLD: Rules = Rules::TAPES_F237B6E;
    const NEW: Rules = Rules::TAPES_6EA4DFC;
    use crate::llm::Usage;
    use crate::merkle::ChainNode;

    fn bucket(role: &str, text: &str, model: &str, provider: &str) -> Bucket {
        Bucket {
            kind: "message".into(),
            role: role.into(),
            content: Some(vec![ContentBlock::text(text)]),
            model: model.into(),
            provider: provider.into(),
            agent_name: String::new(),
        }
    }

    fn user(text: &str) -> Bucket {
        bucket("user", text, "test-model", "test-provider")
    }

    /// A node the way the reference's `NewNode` makes one.
    fn new_node(bucket: Bucket, parent: Option<&ChainNode>, usage: Option<Usage>) -> ChainNode {
        let parent_hash = parent.map(|p| p.hash.clone());
        ChainNode {
            hash: node_hash(parent_hash.as_deref(), &bucket, &OLD),
            parent_hash,
            bucket,
            kind: None,
            thread_id: String::new(),
            stop_reason: if usage.is_some() {
                "stop".into()
            } else {
                String::new()
            },
            usage,
        }
    }

    #[test]
    fn root_node_keeps_its_bucket_and_has_no_parent() {
        let node = new_node(user("hello world"), None, None);
        assert_eq!(node.bucket, user("hello world"));
        assert_eq!(node.parent_hash, None);
        assert!(!node.hash.is_empty());
    }

    #[test]
    fn same_bucket_same_hash_different_content_different_hash() {
        assert_eq!(
            node_hash(None, &user("same"), &OLD),
            node_hash(None, &user("same"), &OLD)
        );
        assert_ne!(
            node_hash(None, &user("content A"), &OLD),
            node_hash(None, &user("content B"), &OLD)
        );
    }

    #[test]
    fn usage_and_stop_reason_are_not_hashed() {
        let usage = Usage {
            prompt_tokens: 10,
            completion_tokens: 20,
            total_tokens: 30,
            ..Usage::default()
        };
        let with = new_node(
            bucket("assistant", "response", "gpt-4", "openai"),
            None,
            Some(usage),
        );
        let without = new_node(
            bucket("assistant", "response", "gpt-4", "openai"),
            None,
            None,
        );
        assert_eq!(with.hash, without.hash);
        assert_eq!(with.stop_reason, "stop");
    }

    #[test]
    fn child_links_to_its_parent() {
        let parent = new_node(user("parent content"), None, None);
        let child = new_node(user("child content"), Some(&parent), None);
        assert_eq!(child.bucket, user("child content"));
        assert_eq!(child.parent_hash.as_deref(), Some(parent.hash.as_str()));
        assert!(!child.hash.is_empty());
        let c1 = new_node(user("child 1"), Some(&parent), None);
        let c2 = new_node(user("child 2"), Some(&c1), None);
        let c3 = new_node(user("child 3"), Some(&c2), None);
        assert_eq!(c1.parent_hash.as_ref(), Some(&parent.hash));
        assert_eq!(c2.parent_hash.as_ref(), Some(&c1.hash));
        assert_eq!(c3.parent_hash.as_ref(), Some(&c2.hash));
    }

    #[test]
    fn same_bucket_under_different_parents_differs() {
        let p1 = new_node(user("parent content"), None, None);
        let p2 = new_node(user("different parent"), None, None);
        let c1 = new_node(user("same content"), Some(&p1), None);
        let c2 = new_node(user("same content"), Some(&p2), None);
        assert_ne!(c1.hash, c2.hash);
    }

    #[test]
    fn hex_matches_the_hex_crate() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(to_hex(&bytes), hex::encode(&bytes));
    }

    #[test]
    fn hash_is_64_lowercase_hex() {
        let hash = node_hash(None, &user("test"), &OLD);
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn prose_turn_hashes_like_its_drift_fork() {
        let reminders = (1..=3)
            .map(|i| ContentBlock::text(format!("<system-reminder>context {i}</system-reminder>")));
        let mut forked = user("");
        forked.content = Some(
            reminders
                .chain([ContentBlock::text("Fix the bug")])
                .collect(),
        );
        assert_eq!(
            node_hash(None, &forked, &OLD),
            node_hash(None, &user("Fix the bug"), &OLD)
        );
    }

    #[test]
    fn stray_blank_line_inside_prose_does_not_fork() {
        assert_eq!(
            node_hash(None, &user("first line\nsecond line"), &OLD),
            node_hash(None, &user("first line\n\nsecond line"), &OLD)
        );
    }

    #[test]
    fn real_content_change_still_forks() {
        assert_ne!(
            node_hash(
                None,
                &user("<system-reminder>a</system-reminder>Fix the bug"),
                &OLD
            ),
            node_hash(
                None,
                &user("<system-reminder>a</system-reminder>Fix the other bug"),
                &OLD
            )
        );
    }

    #[test]
    fn routing_model_and_provider_do_not_change_the_hash() {
        let hashes: Vec<String> = [
            ("claude-haiku", "anthropic"),
            ("claude-opus", "anthropic"),
            ("gpt-5", "openai"),
            ("codex", "openai"),
        ]
        .iter()
        .map(|(model, provider)| node_hash(None, &bucket("user", "Hi", model, provider), &OLD))
        .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    }

    #[test]
    fn role_is_hashed() {
        assert_ne!(
            node_hash(None, &bucket("user", "Hi", "m", "p"), &OLD),
            node_hash(None, &bucket("assistant", "Hi", "m", "p"), &OLD)
        );
    }

    #[test]
    fn writing_projected_blocks_as_is_gives_the_same_bytes() {
        let content = vec![
            ContentBlock::text("<system-reminder>x</system-reminder>\n\nkeep  \r\n"),
            ContentBlock {
                kind: "thinking".into(),
                thinking: "t".into(),
                thinking_signature: "sig".into(),
                ..ContentBlock::default()
            },
        ];
        let projected = crate::merkle::project_content(&content, &OLD);
        let mut direct = Vec::new();
        write_hash_input(
            &mut direct,
            None,
            "message",
            "user",
            Some(&content),
            Projection::Apply,
            &OLD,
        );
        let mut via = Vec::new();
        write_hash_input(
            &mut via,
            None,
            "message",
            "user",
            Some(&projected),
            Projection::AsIs,
            &OLD,
        );
        assert_eq!(direct, via);
    }

    fn with_raw(raw: &str) -> Bucket {
        let mut b = bucket("assistant", "", "m", "p");
        b.content = Some(vec![ContentBlock {
            kind: "x".into(),
            content: RawJson::from_text(raw),
            ..ContentBlock::default()
        }]);
        b
    }

    fn input_of(b: &Bucket, rules: &Rules) -> String {
        String::from_utf8(hash_input(None, b, rules)).unwrap()
    }

    #[test]
    fn raw_content_is_hashed_canonically_under_the_later_rules_only() {
        let a = with_raw(r#"{ "url": "https://e", "n": 1.50, "title": "Ex <&>" }"#);
        let b = with_raw(r#"{"title":"Ex <&>","n":1.5,"url":"https://e"}"#);
        assert_eq!(
            input_of(&a, &NEW),
            r#"{"content":{"content":[{"content":{"n":1.5,"title":"Ex <&>","url":"https://e"},"is_error":false,"type":"x"}],"role":"assistant","type":"message"},"parent":""}"#
        );
        assert_eq!(node_hash(None, &a, &NEW), node_hash(None, &b, &NEW));
        assert_ne!(
            node_hash(None, &a, &NEW),
            node_hash(None, &with_raw(r#"{"n":2}"#), &NEW)
        );
        assert_eq!(
            input_of(&with_raw("1e+21"), &NEW),
            r#"{"content":{"content":[{"content":1e+21,"is_error":false,"type":"x"}],"role":"assistant","type":"message"},"parent":""}"#
        );
        // The earlier rules know no such member.
        assert_eq!(
            node_hash(None, &a, &OLD),
            node_hash(None, &with_raw("1"), &OLD)
        );
    }

    #[test]
    fn empty_raw_values_are_omitted() {
        let none = node_hash(None, &with_raw("null"), &NEW);
        for empty in ["\"\"", "[]", "{ }", "[ ]"] {
            assert_eq!(node_hash(None, &with_raw(empty), &NEW), none, "{empty}");
        }
        assert!(input_of(&with_raw("null"), &NEW).contains(r#"[{"is_error":false,"type":"x"}]"#));
        assert_ne!(node_hash(None, &with_raw("[0]"), &NEW), none);
    }

    #[test]
    fn tool_outputs_fold_under_the_later_rules() {
        let result = |output: &str| {
            let mut b = bucket("tool", "", "m", "p");
            b.content = Some(vec![ContentBlock {
                kind: "tool_result".into(),
                tool_result_id: "t1".into(),
                tool_output: output.into(),
                ..ContentBlock::default()
            }]);
            b
        };
        let drifted = result("out\r\n\r\n<status>x</status>");
        assert_eq!(
            node_hash(None, &drifted, &NEW),
            node_hash(None, &result("out"), &NEW)
        );
        assert_ne!(
            node_hash(None, &drifted, &OLD),
            node_hash(None, &result("out"), &OLD)
        );
        assert!(
            input_of(&result("<system-reminder>x</system-reminder>"), &NEW)
                .contains(r#"[{"is_error":false,"tool_result_id":"t1","type":"tool_result"}]"#)
        );
    }

    #[test]
    fn writing_blocks_projected_under_the_later_rules_as_is_gives_the_same_bytes() {
        let content = vec![
            ContentBlock::text("<event>x</event>keep  \r\n"),
            ContentBlock {
                kind: "tool_result".into(),
                tool_output: "a  \n\n<task-id>1</task-id>".into(),
                content: RawJson::from_text(r#"{"b":[1, {"a":null}]}"#),
                ..ContentBlock::default()
            },
        ];
        let projected = crate::merkle::project_content(&content, &NEW);
        let mut direct = Vec::new();
        write_hash_input(
            &mut direct,
            None,
            "message",
            "user",
            Some(&content),
            Projection::Apply,
            &NEW,
        );
        let mut via = Vec::new();
        write_hash_input(
            &mut via,
            None,
            "message",
            "user",
            Some(&projected),
            Projection::AsIs,
            &NEW,
        );
        assert_eq!(direct, via);
    }
}
