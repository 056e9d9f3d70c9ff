//! The projection of a bucket's content that is hashed (docs/hashing.md#projection).
//!
//! Harness metadata that drifts between turns of one conversation (system reminders, slash
//! command echoes) is cut out of text, whitespace drift is folded away, zero values are
//! pruned from tool inputs and thinking signatures are dropped, so that a live capture and
//! the re-sent history of the same message hash alike. Which tags are cut, and whether tool
//! outputs are projected too, is the rule set's to say. The stored bucket stays unprojected.

use std::borrow::Cow;

use memchr::memchr_iter;
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
    let index = TagIndex::new(tags);
    let present = index.opened(text.as_bytes());
    if present == 0 {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    strip_opened(&mut out, &index, present);
    Cow::Owned(out)
}

/// Cuts the spans of the indexed tags from `text`, whose opened tags are `present`.
fn strip_opened(text: &mut String, index: &TagIndex<'_>, mut present: u64) {
    for (i, tag) in index.tags.iter().enumerate() {
        // A tag that does not open anywhere strips nothing; only a cut can make one appear
        // (the text on both sides of a span joining), and then across the splice, where
        // the cut looks for it.
        if present & (1 << i) != 0 {
            present |= strip_tagged_span(text, tag, index);
        }
    }
}

/// Tags (at most 64) with, for each byte, the set of those that start with it (bit `i` for
/// `tags[i]`): the byte after a `<` picks the few tags worth comparing.
#[derive(Debug)]
struct TagIndex<'t> {
    tags: &'t [&'t str],
    by_first: [u64; 256],
    /// The length of the longest tag.
    longest: usize,
}

impl<'t> TagIndex<'t> {
    const fn new(tags: &'t [&'t str]) -> Self {
        assert!(tags.len() <= 64, "at most 64 harness tags");
        let mut by_first = [0; 256];
        let mut longest = 0;
        let mut i = 0;
        while i < tags.len() {
            match tags[i].as_bytes().first() {
                Some(&b) => by_first[b as usize] |= 1 << i,
                // An empty tag opens as `<>`: it is compared after every `<`.
                None => {
                    let mut b = 0;
                    while b < by_first.len() {
                        by_first[b] |= 1 << i;
                        b += 1;
                    }
                }
            }
            if tags[i].len() > longest {
                longest = tags[i].len();
            }
            i += 1;
        }
        TagIndex {
            tags,
            by_first,
            longest,
        }
    }

    /// Which tags open somewhere in `bytes`, as a bit set by index. When none does, no
    /// stripping can ever start, so this one pass over the `<` bytes is all most texts
    /// cost.
    fn opened(&self, bytes: &[u8]) -> u64 {
        let mut set = 0;
        for at in memchr_iter(b'<', bytes) {
            let rest = &bytes[at + 1..];
            let Some(&first) = rest.first() else {
                continue;
            };
            let mut candidates = self.by_first[usize::from(first)] & !set;
            while candidates != 0 {
                let i = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let tag = self.tags[i].as_bytes();
                if rest.get(tag.len()) == Some(&b'>') && rest.starts_with(tag) {
                    set |= 1 << i;
                }
            }
        }
        set
    }

    /// Which tags open across position `at` of `bytes` (start before it, end after it),
    /// and perhaps others opening near it: what a cut ending at `at` may have formed.
    fn opened_around(&self, bytes: &[u8], at: usize) -> u64 {
        // `<tag>` is at most `longest + 2` bytes long.
        let reach = self.longest + 1;
        let window = &bytes[at.saturating_sub(reach)..(at + reach).min(bytes.len())];
        self.opened(window)
    }
}

/// Cuts `tag`'s spans, as the reference does: the first opening, to the first closing
/// after it (or to the end), again and again until the tag no longer opens. Returns the
/// tags of `index` that may open across the splices of the cuts.
fn strip_tagged_span(text: &mut String, tag: &str, index: &TagIndex<'_>) -> u64 {
    let mut formed = 0;
    let mut from = 0;
    while let Some(start) = find_tag(&text.as_bytes()[from..], b"<", tag).map(|at| from + at) {
        let Some(length) = find_tag(&text.as_bytes()[start..], b"</", tag) else {
            text.truncate(start);
            return formed;
        };
        // Both ends are ASCII delimiters, hence char boundaries.
        text.replace_range(start..start + length + tag.len() + 3, "");
        formed |= index.opened_around(text.as_bytes(), start);
        // The reference searches the spliced text from its start again. Nothing before
        // `start` matched, so a new match can only straddle the splice.
        from = start.saturating_sub(tag.len() + 1);
    }
    formed
}

/// The first position of `lead` + `tag` + `>` in `bytes` (`lead` starts with `<`). Texts
/// hold few `<`, so testing each is cheaper than building a substring searcher for every
/// text and tag.
fn find_tag(bytes: &[u8], lead: &[u8], tag: &str) -> Option<usize> {
    let tag = tag.as_bytes();
    memchr_iter(b'<', bytes).find(|&at| {
        let rest = &bytes[at..];
        rest.starts_with(lead)
            && rest[lead.len()..].starts_with(tag)
            && rest.get(lead.len() + tag.len()) == Some(&b'>')
    })
}

/// Folds whitespace drift, in the reference's order: CRLF becomes LF; spaces and tabs before
/// a newline go; runs of newlines collapse to one; Unicode whitespace is trimmed at both
/// ends (Go's `strings.TrimSpace`, which is `str::trim`).
pub fn normalize_whitespace(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    if !fold_lines(text, &mut out) {
        return Cow::Borrowed(text.trim());
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        Cow::Owned(out)
    } else {
        Cow::Owned(trimmed.to_owned())
    }
}

/// Appends `text` to the empty `out` with the first three whitespace rules applied (not
/// the trim), and says whether they changed anything. When they change nothing (most
/// texts), nothing is appended and the text itself is the result.
///
/// A line changes only where its newline follows a CR, space, tab or another newline. The
/// text is tested for those pairs 64 bytes at a time without branches (which vectorises),
/// only the newlines of a chunk holding one are looked at, and the text between the lines
/// that change is copied as it is.
fn fold_lines(text: &str, out: &mut String) -> bool {
    const CHUNK: usize = 64;
    debug_assert!(out.is_empty());
    let bytes = text.as_bytes();
    // `text[..copied]` is in `out` (folded); the rest is not yet.
    let mut copied = 0;
    let mut changed = false;
    let mut start = 1;
    while start < bytes.len() {
        let end = (start + CHUNK).min(bytes.len());
        let (before, chunk) = (&bytes[start - 1..end - 1], &bytes[start..end]);
        // Whole chunks as arrays: their loop has a constant count, which compiles to vector
        // compares alone, without the set-up and tail of a loop over a slice.
        let any = match (before.first_chunk::<CHUNK>(), chunk.first_chunk::<CHUNK>()) {
            (Some(before), Some(chunk)) => {
                (0..CHUNK).fold(false, |any, i| any | folds(before[i], chunk[i]))
            }
            _ => before
                .iter()
                .zip(chunk)
                .fold(false, |any, (&b, &a)| any | folds(b, a)),
        };
        if any {
            for at in memchr_iter(b'\n', chunk).map(|i| start + i) {
                if !folds(bytes[at - 1], b'\n') {
                    continue;
                }
                // The line's end before a CR right before the LF (the CRLF pair; any other
                // CR is kept), then before its spaces and tabs. The trim stops at the
                // newline before the line, none of these, so never before `copied`.
                let mut line_end = at;
                if bytes[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                while line_end > 0 && matches!(bytes[line_end - 1], b' ' | b'\t') {
                    line_end -= 1;
                }
                // A line left empty goes (its newline joins a run), unless it is the first.
                let dropped = line_end > 0 && bytes[line_end - 1] == b'\n';
                if !changed {
                    out.reserve(text.len());
                    changed = true;
                }
                out.push_str(&text[copied..line_end]);
                if !dropped {
                    out.push('\n');
                }
                copied = at + 1;
            }
        }
        start = end;
    }
    if changed {
        out.push_str(&text[copied..]);
    }
    changed
}

/// Whether a newline `at` has something to fold before it; without branches.
fn folds(before: u8, at: u8) -> bool {
    (at == b'\n') & ((before == b' ') | (before == b'\t') | (before == b'\r') | (before == b'\n'))
}

/// The index of every rule set's tags, built at compile time: a hasher is made per turn.
static RULE_INDEXES: [TagIndex<'static>; Rules::ALL.len()] = {
    const NONE: TagIndex<'static> = TagIndex::new(&[]);
    let mut indexes = [NONE; Rules::ALL.len()];
    let mut i = 0;
    while i < indexes.len() {
        indexes[i] = TagIndex::new(Rules::ALL[i].harness_tags);
        i += 1;
    }
    indexes
};

/// A projector's tag index: a rule set's, or its own for other tags.
#[derive(Debug)]
enum Index {
    Rules(&'static TagIndex<'static>),
    Own(Box<TagIndex<'static>>),
}

impl Index {
    fn of(tags: &'static [&'static str]) -> Self {
        match RULE_INDEXES
            .iter()
            .find(|index| std::ptr::eq(index.tags, tags) || index.tags == tags)
        {
            Some(index) => Index::Rules(index),
            None => Index::Own(Box::new(TagIndex::new(tags))),
        }
    }

    fn get(&self) -> &TagIndex<'static> {
        match self {
            Index::Rules(index) => index,
            Index::Own(index) => index,
        }
    }
}

/// Projects texts into buffers it keeps, so hashing many blocks allocates only while the
/// buffers grow.
#[derive(Debug)]
pub struct Projector {
    tags: Index,
    stripped: String,
    folded: String,
}

impl Projector {
    /// A projector that strips `tags`, in their order.
    pub fn new(tags: &'static [&'static str]) -> Self {
        Projector {
            tags: Index::of(tags),
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
        let tags = tags.get();
        let present = tags.opened(text.as_bytes());
        let text = if present != 0 {
            stripped.clear();
            stripped.push_str(text);
            strip_opened(stripped, tags, present);
            stripped.as_str()
        } else {
            text
        };
        folded.clear();
        if !fold_lines(text, folded) {
            return text.trim();
        }
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

    /// The folding as the reference states it, a line at a time.
    fn fold_line_by_line(text: &str) -> String {
        let mut out = String::new();
        let mut line_start = 0;
        for at in memchr_iter(b'\n', text.as_bytes()) {
            let mut line = &text[line_start..at];
            line = line.strip_suffix('\r').unwrap_or(line);
            line = line.trim_end_matches([' ', '\t']);
            if !(line.is_empty() && out.ends_with('\n')) {
                out.push_str(line);
                out.push('\n');
            }
            line_start = at + 1;
        }
        out.push_str(&text[line_start..]);
        out.trim().to_owned()
    }

    /// The stripping as the reference states it: for each tag in order, the first opening
    /// is cut to the first closing after it (or to the end), searching the whole text again
    /// after every cut, until the tag no longer opens.
    fn strip_by_reference(text: &str, tags: &[&str]) -> String {
        let mut text = text.to_owned();
        for tag in tags {
            let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
            while let Some(start) = text.find(&open) {
                match text[start..].find(&close) {
                    Some(length) => text.replace_range(start..start + length + close.len(), ""),
                    None => text.truncate(start),
                }
            }
        }
        text
    }

    /// Pieces of texts with tags: whole ones, halves that a cut can join, closings without
    /// openings, and text.
    const TAG_PIECES: [&str; 16] = [
        "<system-reminder>",
        "</system-reminder>",
        "<sta",
        "tus>",
        "<status>",
        "</status>",
        "<task-id>",
        "</task-id>",
        "</",
        "<",
        ">",
        "task-",
        "id>",
        "x",
        " \n",
        "é",
    ];

    /// Every tag of `tags` that opens in `text`, compared after every `<`.
    fn opened_by_scan(text: &str, tags: &[&str]) -> u64 {
        let bytes = text.as_bytes();
        let mut set = 0;
        for at in memchr_iter(b'<', bytes) {
            let rest = &bytes[at + 1..];
            for (i, tag) in tags.iter().enumerate() {
                if rest.len() > tag.len()
                    && rest.starts_with(tag.as_bytes())
                    && rest[tag.len()] == b'>'
                {
                    set |= 1 << i;
                }
            }
        }
        set
    }

    proptest::proptest! {
        #[test]
        fn folding_a_run_at_a_time_agrees_with_folding_line_by_line(
            text in "[a \t\r\n\u{a0}]{0,200}",
        ) {
            proptest::prop_assert_eq!(normalize_whitespace(&text), fold_line_by_line(&text));
            let mut projector = Projector::new(NEW.harness_tags);
            proptest::prop_assert_eq!(projector.project(&text), fold_line_by_line(&text));
        }

        #[test]
        fn the_projector_strips_as_the_reference_procedure(
            pieces in proptest::collection::vec(proptest::sample::select(&TAG_PIECES[..]), 0..16),
        ) {
            let text = pieces.concat();
            let mut projector = Projector::new(NEW.harness_tags);
            let reference = normalize_whitespace(&strip_by_reference(&text, NEW.harness_tags))
                .into_owned();
            proptest::prop_assert_eq!(projector.project(&text), reference, "{:?}", text);
        }

        #[test]
        fn stripping_agrees_with_the_reference_procedure(
            pieces in proptest::collection::vec(proptest::sample::select(&TAG_PIECES[..]), 0..16),
        ) {
            let text = pieces.concat();
            for tags in [NEW.harness_tags, &["s", "st", "", "status", "task-id", "é"][..]] {
                proptest::prop_assert_eq!(
                    strip_harness_tags(&text, tags),
                    strip_by_reference(&text, tags),
                    "{:?} {:?}", text, tags
                );
            }
        }

        #[test]
        fn the_index_finds_the_tags_a_scan_finds(text in "[<>/a-z_-]{0,60}|(<(status|session|summary|s|st|task-id|event)>?){0,6}") {
            for tags in [NEW.harness_tags, &["s", "st", "", "status", "é"][..]] {
                proptest::prop_assert_eq!(
                    TagIndex::new(tags).opened(text.as_bytes()),
                    opened_by_scan(&text, tags)
                );
            }
        }
    }

    #[test]
    fn every_rule_set_has_its_index_and_other_tags_get_their_own() {
        for rules in Rules::ALL {
            assert!(
                matches!(Index::of(rules.harness_tags), Index::Rules(i) if i.tags == rules.harness_tags)
            );
        }
        static OTHER: [&str; 2] = ["status", "system-reminder"];
        let other = Index::of(&OTHER);
        assert!(matches!(&other, Index::Own(_)));
        assert_eq!(other.get().opened(b"<system-reminder>"), 0b10);
        assert_eq!(Projector::new(&OTHER).project("<status>x</status>y"), "y");
    }

    #[test]
    fn the_index_compares_tags_sharing_a_first_byte_and_the_empty_tag() {
        let tags = ["session", "status", "summary", "", "é"];
        let index = TagIndex::new(&tags);
        assert_eq!(index.opened(b"<status><summary"), 0b10);
        assert_eq!(index.opened(b"<> <session>"), 0b1001);
        assert_eq!(index.opened("<é>".as_bytes()), 0b10000);
        assert_eq!(index.opened(b"<status"), 0);
        assert_eq!(index.opened(b"x<"), 0);
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
