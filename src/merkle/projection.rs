//! The projection of a bucket's content that is hashed (docs/hashing.md#projection).
//!
//! Harness metadata that drifts between turns of one conversation (system reminders, slash
//! command echoes) is cut out of text, whitespace drift is folded away, zero values are
//! pruned from tool inputs and thinking signatures are dropped, so that a live capture and
//! the re-sent history of the same message hash alike. Which tags are cut, and whether tool
//! outputs are projected too, is the rule set's to say. The stored bucket stays unprojected.

use std::borrow::Cow;

use memchr::{memchr_iter, memmem};
use serde_json::{Map, Value};

use crate::llm::{ContentBlock, Rules};

/// The projected text of a block under `rules`: harness tags stripped, then whitespace
/// normalised. An empty result means the block is dropped from the hash. Borrows when
/// nothing changes.
pub fn project_text<'a>(text: &'a str, rules: &Rules) -> Cow<'a, str> {
    match strip_harness_tags(text, rules.harness_tags) {
        Cow::Borrowed(t) => normalize_whitespace(t),
        Cow::Owned(t) => Cow::Owned(normalize_whitespace(&t).into_owned()),
    }
}

/// Cuts every `<tag>…</tag>` span of `tags`, one tag after the other, each until none is
/// left. An opening tag without a closing one swallows the rest of the text.
pub fn strip_harness_tags<'a>(text: &'a str, tags: &[&str]) -> Cow<'a, str> {
    let present = opened_tags(text.as_bytes(), tags);
    if present == 0 {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    strip_opened(&mut out, tags, present);
    Cow::Owned(out)
}

/// Cuts the spans of `tags` from `text`, whose opened tags are `present`.
fn strip_opened(text: &mut String, tags: &[&str], mut present: u64) {
    for (i, tag) in tags.iter().enumerate() {
        // A tag that does not open anywhere strips nothing; only a cut can make one appear
        // (the text on both sides of a span joining), so the set is taken again after one.
        if present & (1 << i) != 0 && strip_tagged_span(text, tag) {
            present = opened_tags(text.as_bytes(), tags);
        }
    }
}

/// Which of `tags` (at most 64) open somewhere in `bytes`, as a bit set by index. When none
/// does, no stripping can ever start, so this one pass over the `<` bytes is all most texts
/// cost.
fn opened_tags(bytes: &[u8], tags: &[&str]) -> u64 {
    debug_assert!(tags.len() <= 64);
    let mut set = 0;
    for at in memchr_iter(b'<', bytes) {
        let rest = &bytes[at + 1..];
        for (i, tag) in tags.iter().enumerate() {
            if rest.len() > tag.len() && rest.starts_with(tag.as_bytes()) && rest[tag.len()] == b'>'
            {
                set |= 1 << i;
            }
        }
    }
    set
}

/// Cuts `tag`'s spans; true when something was cut.
fn strip_tagged_span(text: &mut String, tag: &str) -> bool {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut from = 0;
    let mut cut = false;
    while let Some(found) = memmem::find(&text.as_bytes()[from..], open.as_bytes()) {
        let start = from + found;
        cut = true;
        match memmem::find(&text.as_bytes()[start..], close.as_bytes()) {
            None => {
                text.truncate(start);
                return true;
            }
            Some(rel) => {
                // Both ends are ASCII delimiters, hence char boundaries.
                text.replace_range(start..start + rel + close.len(), "");
                // The reference searches the spliced text from its start again. Nothing
                // before `start` matched, so a new match can only straddle the splice.
                from = start.saturating_sub(open.len() - 1);
            }
        }
    }
    cut
}

/// Folds whitespace drift, in the reference's order: CRLF becomes LF; spaces and tabs before
/// a newline go; runs of newlines collapse to one; Unicode whitespace is trimmed at both
/// ends (Go's `strings.TrimSpace`, which is `str::trim`).
pub fn normalize_whitespace(text: &str) -> Cow<'_, str> {
    if !needs_folding(text) {
        return Cow::Borrowed(text.trim());
    }
    let mut out = String::with_capacity(text.len());
    fold_lines(text, &mut out);
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        Cow::Owned(out)
    } else {
        Cow::Owned(trimmed.to_owned())
    }
}

/// Whether any newline has something to fold around it (a CR, space or tab before it, or
/// another newline after it). Most texts have none, and then only trimming applies.
fn needs_folding(text: &str) -> bool {
    let bytes = text.as_bytes();
    memchr_iter(b'\n', bytes).any(|at| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        matches!(before, Some(b' ' | b'\t' | b'\r')) || bytes.get(at + 1) == Some(&b'\n')
    })
}

/// Appends `text` with the first three whitespace rules applied (not the trim).
fn fold_lines(text: &str, out: &mut String) {
    let mut line_start = 0;
    for at in memchr_iter(b'\n', text.as_bytes()) {
        let mut line = &text[line_start..at];
        // A CR right before the LF is the CRLF pair; any other CR is kept.
        line = line.strip_suffix('\r').unwrap_or(line);
        line = line.trim_end_matches([' ', '\t']);
        if !(line.is_empty() && out.ends_with('\n')) {
            out.push_str(line);
            out.push('\n');
        }
        line_start = at + 1;
    }
    out.push_str(&text[line_start..]);
}

/// Projects texts into buffers it keeps, so hashing many blocks allocates only while the
/// buffers grow.
#[derive(Debug)]
pub struct Projector {
    tags: &'static [&'static str],
    stripped: String,
    folded: String,
}

impl Projector {
    /// A projector that strips `tags`, in their order.
    pub fn new(tags: &'static [&'static str]) -> Self {
        Projector {
            tags,
            stripped: String::new(),
            folded: String::new(),
        }
    }

    /// The same text as [`project_text`] under rules with these tags.
    pub fn project<'a>(&'a mut self, text: &'a str) -> &'a str {
        let Projector {
            tags,
            stripped,
            folded,
        } = self;
        let present = opened_tags(text.as_bytes(), tags);
        let text = if present != 0 {
            stripped.clear();
            stripped.push_str(text);
            strip_opened(stripped, tags, present);
            stripped.as_str()
        } else {
            text
        };
        if !needs_folding(text) {
            return text.trim();
        }
        folded.clear();
        fold_lines(text, folded);
        folded.trim()
    }
}

/// A value pruned from tool inputs: `null`, `false`, `""`, `0` (also `-0`) and `[]`.
/// Objects are handled by [`prune_zero_values`] itself.
pub fn is_zero_value(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(items) => items.is_empty(),
        Value::Object(_) => false,
    }
}

/// Whether pruning leaves nothing of `map` (every entry is a zero value or an object that
/// prunes to nothing).
pub fn prunes_to_empty(map: &Map<String, Value>) -> bool {
    map.values().all(|v| match v {
        Value::Object(inner) => prunes_to_empty(inner),
        other => is_zero_value(other),
    })
}

/// A copy of `map` without zero values, recursing into objects (an object that prunes to
/// nothing is dropped) but not into arrays.
pub fn prune_zero_values(map: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in map {
        match v {
            Value::Object(inner) => {
                let pruned = prune_zero_values(inner);
                if !pruned.is_empty() {
                    out.insert(k.clone(), Value::Object(pruned));
                }
            }
            other if is_zero_value(other) => {}
            other => {
                out.insert(k.clone(), other.clone());
            }
        }
    }
    out
}

/// The projected content under `rules`, as the reference's `ProjectContent` returns it:
/// per block, the text (a block whose text projects to nothing is dropped), then the tool
/// input's zero values, then the signature, then, where the rules say so, the tool output
/// (which may become empty and is then omitted, the block kept). Raw `content` is never
/// projected, and is dropped where the rules keep none. The hash does not build this (it
/// projects while writing canonical bytes); it exists for inspection and to check that both
/// agree.
pub fn project_content(blocks: &[ContentBlock], rules: &Rules) -> Vec<ContentBlock> {
    let mut out = Vec::with_capacity(blocks.len());
    for block in blocks {
        let mut b = block.clone();
        if !b.text.is_empty() {
            let projected = project_text(&b.text, rules);
            if projected.is_empty() {
                continue;
            }
            b.text = projected.into_owned();
        }
        if let Some(input) = &b.tool_input
            && !input.is_empty()
        {
            b.tool_input = Some(prune_zero_values(input));
        }
        b.thinking_signature.clear();
        if rules.project_tool_output && !b.tool_output.is_empty() {
            b.tool_output = project_text(&b.tool_output, rules).into_owned();
        }
        if !rules.raw_content {
            b.content = None;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const OLD: Rules = Rules::TAPES_F237B6E;
    const NEW: Rules = Rules::TAPES_6EA4DFC;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test inputs are objects"),
        }
    }

    #[test]
    fn strips_a_system_reminder_and_keeps_the_prose() {
        let text = "<system-reminder>\nx\n</system-reminder>\n\nHey Claude!";
        assert_eq!(project_text(text, &OLD), "Hey Claude!");
    }

    #[test]
    fn strips_every_listed_tag() {
        let text = OLD
            .harness_tags
            .iter()
            .map(|t| format!("<{t}>noise</{t}>"))
            .collect::<String>()
            + "keep";
        assert_eq!(project_text(&text, &OLD), "keep");
    }

    #[test]
    fn nested_same_tag_spans_are_non_greedy() {
        let text = "<system-reminder>a<system-reminder>b</system-reminder>c</system-reminder>d";
        assert_eq!(
            strip_harness_tags(text, OLD.harness_tags),
            "c</system-reminder>d"
        );
    }

    #[test]
    fn cross_tag_order_matters() {
        let text = "<command-name>a<system-reminder>b</command-name>c</system-reminder>d";
        assert_eq!(strip_harness_tags(text, OLD.harness_tags), "");
    }

    #[test]
    fn unterminated_tag_swallows_to_the_end() {
        assert_eq!(
            project_text("keep this\n<command-name>never closes", &OLD),
            "keep this"
        );
    }

    #[test]
    fn tags_match_exactly() {
        let text = "<System-Reminder>a</System-Reminder><system-reminder foo=1>b</system-reminder>";
        assert!(matches!(
            strip_harness_tags(text, OLD.harness_tags),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_splice_can_form_a_new_span_of_the_same_tag() {
        let text = "<system-<system-reminder>x</system-reminder>reminder>y</system-reminder>z";
        assert_eq!(strip_harness_tags(text, OLD.harness_tags), "z");
    }

    #[test]
    fn whitespace_rules() {
        assert_eq!(normalize_whitespace("a \n \n b"), "a\n b");
        assert_eq!(
            normalize_whitespace("\u{a0}a\rb \u{3000}\n\n\u{2003}c\u{a0}"),
            "a\rb \u{3000}\n\u{2003}c"
        );
        assert_eq!(
            normalize_whitespace("line\x0b\n\x0cnext"),
            "line\x0b\n\x0cnext"
        );
        assert_eq!(
            normalize_whitespace("line A   \r\nline B  "),
            "line A\nline B"
        );
        assert_eq!(normalize_whitespace("a\r\r\n"), "a");
        assert_eq!(normalize_whitespace("a\r \nb"), "a\r\nb");
        assert_eq!(normalize_whitespace("p1\n\n\n\np2"), "p1\np2");
    }

    #[test]
    fn projector_agrees_with_project_text() {
        let mut projector = Projector::new(OLD.harness_tags);
        for text in [
            "plain",
            "  padded \r\n\r\n next\t\n",
            "<system-reminder>x</system-reminder>\n\nkeep  \n\n",
            "keep this\n<command-name>never closes",
            "<command-name>a<system-reminder>b</command-name>c</system-reminder>d",
            "\u{a0}a\rb \u{3000}\n\n\u{2003}c\u{a0}",
        ] {
            assert_eq!(
                projector.project(text),
                project_text(text, &OLD),
                "{text:?}"
            );
        }
    }

    #[test]
    fn blank_line_runs_hash_alike_by_design() {
        assert_eq!(
            project_text("para one\n\npara two", &OLD),
            project_text("para one\n\n\n\npara two", &OLD)
        );
    }

    #[test]
    fn prunes_zero_values_without_recursing_into_arrays() {
        let input = obj(json!({
            "file_path": "/tmp/x.md", "replace_all": false, "n": 0, "s": "", "nil": null,
            "arr": [], "arr2": [false, "", null], "nested": {"on": true, "off": false, "deep": {"z": 0}},
            "empty": {}, "objs": [{"x": false}], "neg": -0.0
        }));
        let pruned = prune_zero_values(&input);
        assert_eq!(
            Value::Object(pruned),
            json!({"file_path": "/tmp/x.md", "arr2": [false, "", null], "nested": {"on": true}, "objs": [{"x": false}]})
        );
        assert!(prunes_to_empty(&obj(json!({"a": false, "b": {"c": null}}))));
        assert!(!prunes_to_empty(&obj(json!({"a": [0]}))));
    }

    #[test]
    fn project_content_drops_emptied_blocks_and_signatures_without_mutating() {
        let blocks = vec![
            ContentBlock::text("<system-reminder>only</system-reminder>"),
            ContentBlock {
                kind: "thinking".into(),
                thinking: "  keep  ".into(),
                thinking_signature: "sig".into(),
                ..ContentBlock::default()
            },
            ContentBlock {
                kind: "tool_use".into(),
                tool_name: "Edit".into(),
                tool_input: Some(obj(json!({"replace_all": false, "path": "/x"}))),
                ..ContentBlock::default()
            },
            ContentBlock {
                kind: "text".into(),
                ..ContentBlock::default()
            },
        ];
        let before = blocks.clone();
        let projected = project_content(&blocks, &OLD);
        assert_eq!(blocks, before);
        assert_eq!(projected.len(), 3);
        assert_eq!(projected[0].thinking, "  keep  ");
        assert_eq!(projected[0].thinking_signature, "");
        assert_eq!(projected[1].tool_input, Some(obj(json!({"path": "/x"}))));
        assert_eq!(projected[2].text, "");
    }

    fn tool_use(input: Value) -> ContentBlock {
        ContentBlock {
            kind: "tool_use".into(),
            tool_use_id: "toolu_1".into(),
            tool_name: "Edit".into(),
            tool_input: Some(obj(input)),
            ..ContentBlock::default()
        }
    }

    fn image() -> ContentBlock {
        ContentBlock {
            kind: "image".into(),
            image_base64: "AAAA".into(),
            media_type: "image/png".into(),
            ..ContentBlock::default()
        }
    }

    #[test]
    fn drops_a_block_that_is_entirely_harness_content() {
        let blocks = vec![
            ContentBlock::text("<system-reminder>noise</system-reminder>"),
            ContentBlock::text("prose"),
        ];
        assert_eq!(
            project_content(&blocks, &OLD),
            vec![ContentBlock::text("prose")]
        );
    }

    #[test]
    fn collapses_a_blank_line_between_paragraphs() {
        assert_eq!(
            project_text("para one\n\npara two", &OLD),
            "para one\npara two"
        );
    }

    #[test]
    fn preserves_blocks_without_zero_values_and_images_verbatim() {
        let blocks = vec![
            tool_use(json!({"file_path": "/x", "old_string": "a", "new_string": "b"})),
            image(),
        ];
        assert_eq!(project_content(&blocks, &OLD), blocks);
    }

    #[test]
    fn drops_edit_replace_all_false() {
        let projected = project_content(
            &[tool_use(json!({"file_path": "/x", "replace_all": false}))],
            &OLD,
        );
        assert_eq!(
            projected[0].tool_input,
            Some(obj(json!({"file_path": "/x"})))
        );
    }

    #[test]
    fn keeps_tool_input_values_that_are_not_zero() {
        let projected = project_content(
            &[tool_use(json!({
                "count": 3_i64, "items": [1, 2], "nested": {"on": true, "off": false}
            }))],
            &OLD,
        );
        assert_eq!(
            projected[0].tool_input,
            Some(obj(
                json!({"count": 3, "items": [1, 2], "nested": {"on": true}})
            ))
        );
    }

    #[test]
    fn the_later_tags_are_stripped_only_under_the_later_rules() {
        for text in [
            "<status>drift a</status>\nkept [a]",
            "kept [a]\n<status>swallowed",
            "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>kept [a]",
        ] {
            assert_eq!(project_text(text, &NEW), "kept [a]", "{text:?}");
            assert!(project_text(text, &OLD).contains('<'), "{text:?}");
        }
        // Tag names are literal: neither a longer name nor another case is a tag.
        let near = "<statuses>x</statuses><Status>y</Status>";
        assert!(matches!(
            strip_harness_tags(near, NEW.harness_tags),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn tool_outputs_are_projected_under_the_later_rules_and_kept_when_empty() {
        let result = |output: &str| ContentBlock {
            kind: "tool_result".into(),
            tool_result_id: "t1".into(),
            tool_output: output.into(),
            ..ContentBlock::default()
        };
        let blocks = vec![
            result("out [a]\n<status>x</status>"),
            result("\r\n  line1  \r\n\r\n\r\nline2\t\n\n"),
            result("<system-reminder>all</system-reminder>"),
        ];
        let new: Vec<String> = project_content(&blocks, &NEW)
            .into_iter()
            .map(|b| b.tool_output)
            .collect();
        assert_eq!(new, ["out [a]", "line1\nline2", ""]);
        assert_eq!(project_content(&blocks, &OLD), blocks);
    }

    #[test]
    fn raw_content_is_kept_unprojected_or_dropped_by_the_rules() {
        let raw = crate::llm::RawJson::from_text(r#"{"t": "<status>x</status>"}"#);
        let block = ContentBlock {
            kind: "web_search_tool_result".into(),
            content: raw.clone(),
            ..ContentBlock::default()
        };
        assert_eq!(
            project_content(std::slice::from_ref(&block), &NEW)[0].content,
            raw
        );
        assert_eq!(project_content(&[block], &OLD)[0].content, None);
    }

    /// A cut can join the text around it into a tag that opened nowhere before; it is
    /// stripped in its turn, as when every tag is searched for.
    #[test]
    fn a_tag_formed_by_a_cut_is_stripped_too() {
        let text = "<sta<system-reminder>x</system-reminder>tus>hidden</status>tail";
        assert_eq!(strip_harness_tags(text, NEW.harness_tags), "tail");
        assert_eq!(Projector::new(NEW.harness_tags).project(text), "tail");
        assert_eq!(
            strip_harness_tags(text, OLD.harness_tags),
            "<status>hidden</status>tail"
        );
    }
}
