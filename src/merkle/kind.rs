//! Node kinds (docs/hashing.md#node-kinds): what a call is to the conversation (its spine,
//! a side call the harness made on its own, or no known tell) and which request messages are
//! injected context. Kinds are metadata: never hashed.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::fmt;
use std::sync::LazyLock;

use memchr::memmem::Finder;
use memchr::{memchr_iter, memchr2_iter};

use crate::llm::rules::Injection;
use crate::llm::{ChatRequest, Message, SystemPrompt};

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// The conversation spine.
    Main,
    /// A call that matches no known tell.
    Unknown,
    /// A call the harness makes on its own.
    Offshoot(Offshoot),
    /// A context block inside a call, named by the rule set's prefix table.
    Injected(&'static str),
}

/// The side calls a harness makes, by their tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Offshoot {
    /// The security monitor's fast, block-biased stage.
    PermissionCheckStage1,
    /// The security monitor's reasoned stage.
    PermissionCheckStage2,
    /// A connectivity probe: one token, no tools.
    Probe,
    /// A typeahead suggestion.
    Suggestion,
    TitleGen,
    PlanNameGen,
    WebSummary,
    Compaction,
}

impl Offshoot {
    pub fn name(self) -> &'static str {
        match self {
            Offshoot::PermissionCheckStage1 => "permission-check:stage1",
            Offshoot::PermissionCheckStage2 => "permission-check:stage2",
            Offshoot::Probe => "probe",
            Offshoot::Suggestion => "suggestion",
            Offshoot::TitleGen => "title-gen",
            Offshoot::PlanNameGen => "plan-name-gen",
            Offshoot::WebSummary => "web-summary",
            Offshoot::Compaction => "compaction",
        }
    }
}

impl NodeKind {
    pub fn is_injected(self) -> bool {
        matches!(self, NodeKind::Injected(_))
    }

    /// The stored form ([`fmt::Display`]) without formatting it: every kind the rule sets
    /// name is a constant, so storing a node's kind allocates nothing.
    pub fn stored(self) -> Cow<'static, str> {
        let name = match self {
            NodeKind::Main => "main",
            NodeKind::Unknown => "unknown",
            NodeKind::Offshoot(o) => match o {
                Offshoot::PermissionCheckStage1 => "offshoot:permission-check:stage1",
                Offshoot::PermissionCheckStage2 => "offshoot:permission-check:stage2",
                Offshoot::Probe => "offshoot:probe",
                Offshoot::Suggestion => "offshoot:suggestion",
                Offshoot::TitleGen => "offshoot:title-gen",
                Offshoot::PlanNameGen => "offshoot:plan-name-gen",
                Offshoot::WebSummary => "offshoot:web-summary",
                Offshoot::Compaction => "offshoot:compaction",
            },
            NodeKind::Injected("mcp-instructions") => "injected:mcp-instructions",
            NodeKind::Injected("skills-list") => "injected:skills-list",
            NodeKind::Injected("mode-banner") => "injected:mode-banner",
            NodeKind::Injected("claude-md") => "injected:claude-md",
            NodeKind::Injected(_) => return Cow::Owned(self.to_string()),
        };
        Cow::Borrowed(name)
    }
}

/// The stored form: `main`, `unknown`, `offshoot:<name>`, `injected:<name>`.
impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeKind::Main => f.write_str("main"),
            NodeKind::Unknown => f.write_str("unknown"),
            NodeKind::Offshoot(o) => write!(f, "offshoot:{}", o.name()),
            NodeKind::Injected(name) => write!(f, "injected:{name}"),
        }
    }
}

/// The section that opens a compaction summary, and the sections of which a real summary
/// has at least one more (prose quoting the opening alone is no summary).
const SUMMARY_OPENING: &str = "Primary Request and Intent";
const SUMMARY_SECTIONS: [&str; 8] = [
    "Key Technical Concepts",
    "Files and Code Sections",
    "Pending Tasks",
    "Current Work",
    "Errors and fixes",
    "Problem Solving",
    "All user messages",
    "Optional Next Step",
];

/// The instructions a compaction call ends with, lower-cased.
const COMPACTION_ASKS: [&str; 3] = [
    "summary of the conversation so far",
    "context checkpoint compaction",
    "create a handoff summary for another llm",
];

/// The needles the classifier looks for inside texts, with their searchers. Building a
/// searcher costs more than searching a short prompt with it (and `str::contains` builds
/// one per call for a needle over 32 bytes), so they are built once and never change.
struct Needles {
    security_monitor: Needle<'static>,
    blocking: Needle<'static>,
    title: Needle<'static>,
    conversation: Needle<'static>,
    asks: [Needle<'static>; 3],
    summary_opening: Finder<'static>,
    summary_sections: [Finder<'static>; 8],
}

/// A lower-case ASCII needle, its searcher, and how it is written inside a JSON string.
struct Needle<'n> {
    text: &'n str,
    finder: Finder<'n>,
    /// The needle inside a JSON string without `\u` escapes, which write every other
    /// character as itself but `"` and `\` (`\"`, `\\`): `None` for a needle with a `/`
    /// (which may be written `\/`) or a control character (always escaped).
    in_json: Option<String>,
}

impl<'n> Needle<'n> {
    fn new(text: &'n str) -> Self {
        let in_json = (!text.bytes().any(|b| b == b'/' || b.is_ascii_control())).then(|| {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                if matches!(c, '"' | '\\') {
                    escaped.push('\\');
                }
                escaped.push(c);
            }
            escaped
        });
        Needle {
            text,
            finder: Finder::new(text),
            in_json,
        }
    }
}

static NEEDLES: LazyLock<Needles> = LazyLock::new(|| Needles {
    security_monitor: Needle::new("you are a security monitor"),
    blocking: Needle::new("err on the side of blocking"),
    title: Needle::new(r#"{"title""#),
    conversation: Needle::new("<conversation>"),
    asks: COMPACTION_ASKS.map(Needle::new),
    summary_opening: Finder::new(SUMMARY_OPENING),
    summary_sections: SUMMARY_SECTIONS.map(Finder::new),
});

/// The kind of a call from its parsed request and its response: the first tell that
/// matches wins. Request parameters (system prompt, `max_tokens`, tool count, streaming)
/// decide first; message texts are the fallback.
pub fn classify(request: &ChatRequest, response: &Message) -> NodeKind {
    let needles = &*NEEDLES;
    let system = SystemText::new(&request.system);
    let tools = request.tools;
    let streaming = request.stream == Some(true);
    let first = request.messages.first().map(text_of).unwrap_or_default();
    let last = request.messages.last().map(text_of).unwrap_or_default();
    let offshoot = |o| NodeKind::Offshoot(o);

    if system.contains(&needles.security_monitor) {
        let fast = request.max_tokens.is_some_and(|m| m <= 64)
            || AsciiLowered::new(&last).contains(&needles.blocking);
        return offshoot(if fast {
            Offshoot::PermissionCheckStage1
        } else {
            Offshoot::PermissionCheckStage2
        });
    }
    if request.max_tokens == Some(1) && tools == 0 {
        return offshoot(Offshoot::Probe);
    }
    if last.trim().starts_with("[SUGGESTION MODE") {
        return offshoot(Offshoot::Suggestion);
    }
    if tools == 0 {
        if system.contains(&needles.title) {
            return offshoot(Offshoot::TitleGen);
        }
        if system.contains(&needles.conversation) || first.trim().starts_with("<conversation>") {
            return offshoot(Offshoot::PlanNameGen);
        }
    }
    let answer = text_of(response);
    let opening = answer.trim();
    if opening.starts_with(r#"{"title""#) {
        return offshoot(Offshoot::TitleGen);
    }
    if opening.starts_with(r#"{"name""#) {
        return offshoot(Offshoot::PlanNameGen);
    }
    let first = first.trim();
    if first.starts_with("Web page content:") || first.starts_with("Perform a web search") {
        return offshoot(Offshoot::WebSummary);
    }
    let asks = AsciiLowered::new(&last);
    if needles.asks.iter().any(|ask| asks.contains(ask)) || is_compaction_summary(&answer, needles)
    {
        return offshoot(Offshoot::Compaction);
    }
    if streaming && tools > 0 {
        return NodeKind::Main;
    }
    // A Responses spine may send no tool definitions (the backend adds them) but still
    // declares tool routing; the harness's own tool-less calls declare none.
    if streaming && request.responses && request.tool_choice_enabled {
        return NodeKind::Main;
    }
    NodeKind::Unknown
}

fn is_compaction_summary(answer: &str, needles: &Needles) -> bool {
    let found = |needle: &Finder<'_>| needle.find(answer.as_bytes()).is_some();
    found(&needles.summary_opening) && needles.summary_sections.iter().any(found)
}

/// The name of the injected kind of a request message, if `injection` makes it one: its
/// role is listed, every block's type is listed (and it has blocks), and its raw text, the
/// blocks' texts concatenated and trimmed, starts with a listed prefix.
pub fn injected_kind(message: &Message, injection: &Injection) -> Option<&'static str> {
    if !injection.roles.contains(&message.role.as_str()) {
        return None;
    }
    let blocks = message.content.as_deref().unwrap_or_default();
    if blocks.is_empty()
        || !blocks
            .iter()
            .all(|b| injection.block_types.contains(&b.kind.as_str()))
    {
        return None;
    }
    let joined;
    let text = match blocks {
        [only] => only.text.as_str(),
        _ => {
            joined = blocks.iter().map(|b| b.text.as_str()).collect::<String>();
            joined.as_str()
        }
    };
    let text = text.trim();
    injection
        .prefixes
        .iter()
        .find(|(prefix, _)| text.starts_with(prefix))
        .map(|&(_, name)| name)
}

/// The non-empty raw texts of a message's blocks, each followed by `"\n"`; a single text
/// is borrowed without its `"\n"`. The classifier only trims these texts, tests their
/// starts and looks for needles without a newline, which a final `"\n"` never changes.
fn text_of(message: &Message) -> Cow<'_, str> {
    let blocks = message.content.as_deref().unwrap_or_default();
    let mut texts = blocks.iter().filter(|b| !b.text.is_empty());
    let Some(only) = texts.next() else {
        return Cow::Borrowed("");
    };
    if texts.next().is_none() {
        return Cow::Borrowed(only.text.as_str());
    }
    let mut out = String::new();
    for block in blocks.iter().filter(|b| !b.text.is_empty()) {
        out.push_str(&block.text);
        out.push('\n');
    }
    Cow::Owned(out)
}

/// The system prompt as [`SystemText::contains`] searches it for needles as Go lowers it.
///
/// A prompt kept as sent ([`SystemPrompt::json`]: JSON without `\u` escapes) is searched in
/// place first. Every character of its decoded text is written in it as itself, except `"`
/// and `\` (escaped with a `\`), and the text is its strings' texts, joined with `"\n"`. So
/// a needle without a newline, `/` or other control character that is in the decoded text
/// is in the JSON in its escaped form, with ASCII case ignored as in [`AsciiLowered`] where
/// no character lowers into ASCII. Where the escaped needle is absent, so is the needle;
/// where it is present (it may be in a key, or in a part that is not text), the prompt is
/// decoded, once, and searched.
struct SystemText<'a> {
    prompt: &'a SystemPrompt,
    /// The prompt as sent, when the search in place can tell a needle is absent.
    json: Option<&'a str>,
    decoded: OnceCell<AsciiLowered<'a>>,
}

impl<'a> SystemText<'a> {
    fn new(prompt: &'a SystemPrompt) -> Self {
        SystemText {
            prompt,
            json: prompt
                .json()
                .filter(|json| !lowers_into_ascii(json.as_bytes())),
            decoded: OnceCell::new(),
        }
    }

    /// Whether the Go-lowered decoded prompt contains `needle`.
    fn contains(&self, needle: &Needle<'_>) -> bool {
        if let (Some(json), Some(in_json)) = (self.json, &needle.in_json)
            && !contains_ignoring_ascii_case(json.as_bytes(), in_json)
        {
            return false;
        }
        self.decoded
            .get_or_init(|| AsciiLowered::of(self.prompt.text()))
            .contains(needle)
    }
}

/// A text as [`AsciiLowered::contains`] searches it for ASCII needles as Go lowers it.
///
/// Under Go's `strings.ToLower` ([`go_lower`]) every character outside ASCII lowers to
/// characters outside ASCII, except U+0130 (to `i`) and U+212A KELVIN SIGN (to `k`). So
/// in a text without those two, a lower-case ASCII needle is in the Go-lowered text exactly
/// where it is in the text with only its ASCII letters lowered, and exactly where it
/// matches the text with ASCII case ignored. A short text is lowered (one vectorised pass)
/// and searched with the needle's searcher; a long one (a system prompt) is not copied but
/// searched where the needle's rarest byte is.
enum AsciiLowered<'a> {
    /// A long text, matched with ASCII case ignored.
    CaseIgnored(Cow<'a, str>),
    /// A short text with its ASCII letters lowered, or a text with one of the two
    /// characters lowered as Go does.
    Lowered(Cow<'a, str>),
}

/// From this length on a text is searched with case ignored rather than lowered first.
const LONG_TEXT: usize = 4096;

impl<'a> AsciiLowered<'a> {
    fn new(text: &'a str) -> Self {
        AsciiLowered::of(Cow::Borrowed(text))
    }

    fn of(text: Cow<'a, str>) -> Self {
        if lowers_into_ascii(text.as_bytes()) {
            return AsciiLowered::Lowered(Cow::Owned(go_lower(&text)));
        }
        if text.len() >= LONG_TEXT {
            return AsciiLowered::CaseIgnored(text);
        }
        // Folded rather than `any`: vector compares, where most short texts are lower
        // case throughout.
        if !text
            .bytes()
            .fold(false, |upper, b| upper | b.is_ascii_uppercase())
        {
            return AsciiLowered::Lowered(text);
        }
        AsciiLowered::Lowered(Cow::Owned(text.to_ascii_lowercase()))
    }

    /// Whether the Go-lowered text contains `needle`.
    fn contains(&self, needle: &Needle<'_>) -> bool {
        debug_assert!(
            needle
                .text
                .bytes()
                .all(|b| b.is_ascii() && !b.is_ascii_uppercase())
        );
        match self {
            AsciiLowered::CaseIgnored(text) => {
                contains_ignoring_ascii_case(text.as_bytes(), needle.text)
            }
            AsciiLowered::Lowered(text) => needle.finder.find(text.as_bytes()).is_some(),
        }
    }
}

/// How rare a byte is in prompts, for [`contains_ignoring_ascii_case`]: the space and the
/// letters from the most to the least frequent in English rank lowest, any other byte
/// higher than all of them.
static RARITY: [u8; 256] = {
    const BY_FREQUENCY: &[u8; 27] = b" etaoinshrdlcumwfgypbvkjxqz";
    let mut rarity = [BY_FREQUENCY.len() as u8; 256];
    let mut i = 0;
    while i < BY_FREQUENCY.len() {
        rarity[BY_FREQUENCY[i] as usize] = i as u8;
        i += 1;
    }
    rarity
};

/// Whether `hay` holds `needle` (lower-case ASCII) with ASCII case ignored. The needle's
/// rarest byte by English letter frequency is looked for in both cases with a vectorised
/// search, and only there is the rest compared.
fn contains_ignoring_ascii_case(hay: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    let Some((anchor, &byte)) = needle
        .iter()
        .enumerate()
        .max_by_key(|&(_, &b)| RARITY[usize::from(b)])
    else {
        return true;
    };
    let at_anchor = |hit: usize| {
        hit.checked_sub(anchor)
            .and_then(|start| hay.get(start..start + needle.len()))
            .is_some_and(|window| window.eq_ignore_ascii_case(needle))
    };
    if byte.is_ascii_lowercase() {
        memchr2_iter(byte, byte.to_ascii_uppercase(), hay).any(at_anchor)
    } else {
        memchr_iter(byte, hay).any(at_anchor)
    }
}

/// Whether `bytes` (UTF-8) holds U+0130 (`C4 B0`) or U+212A (`E2 84 AA`), looked for by
/// their last bytes with a vectorised search: `C4` and `E2` only ever lead a character.
fn lowers_into_ascii(bytes: &[u8]) -> bool {
    memchr2_iter(0xb0, 0xaa, bytes).any(|at| {
        if bytes[at] == 0xb0 {
            at >= 1 && bytes[at - 1] == 0xc4
        } else {
            at >= 2 && bytes[at - 2..at] == [0xe2, 0x84]
        }
    })
}

/// Lower case as Go's `strings.ToLower` gives it: character by character, without the
/// context rules of `str::to_lowercase` (a final sigma stays σ) and with U+0130 as `i`,
/// where Rust writes `i` and a combining dot.
fn go_lower(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            c if c.is_ascii() => out.push(c),
            '\u{130}' => out.push('i'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ContentBlock, Rules};

    /// The constant forms agree with the formatted ones, for every kind a rule set gives.
    #[test]
    fn stored_kinds_are_their_display() {
        let mut kinds = vec![NodeKind::Main, NodeKind::Unknown];
        for o in [
            Offshoot::PermissionCheckStage1,
            Offshoot::PermissionCheckStage2,
            Offshoot::Probe,
            Offshoot::Suggestion,
            Offshoot::TitleGen,
            Offshoot::PlanNameGen,
            Offshoot::WebSummary,
            Offshoot::Compaction,
        ] {
            kinds.push(NodeKind::Offshoot(o));
        }
        for rules in Rules::ALL {
            for (_, name) in rules.injected.prefixes {
                kinds.push(NodeKind::Injected(name));
                assert!(
                    matches!(NodeKind::Injected(name).stored(), Cow::Borrowed(_)),
                    "{name}"
                );
            }
        }
        kinds.push(NodeKind::Injected("other"));
        for kind in kinds {
            assert_eq!(kind.stored(), kind.to_string());
        }
    }

    fn message(role: &str, texts: &[&str]) -> Message {
        Message {
            role: role.into(),
            content: Some(texts.iter().map(|t| ContentBlock::text(*t)).collect()),
        }
    }

    fn request(system: &str, messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            system: system.into(),
            messages,
            ..ChatRequest::default()
        }
    }

    fn answer(text: &str) -> Message {
        message("assistant", &[text])
    }

    #[test]
    fn kinds_are_stored_by_their_names() {
        assert_eq!(NodeKind::Main.to_string(), "main");
        assert_eq!(NodeKind::Unknown.to_string(), "unknown");
        assert_eq!(
            NodeKind::Offshoot(Offshoot::PermissionCheckStage1).to_string(),
            "offshoot:permission-check:stage1"
        );
        assert_eq!(
            NodeKind::Injected("mode-banner").to_string(),
            "injected:mode-banner"
        );
    }

    #[test]
    fn the_security_monitor_stage_follows_max_tokens_or_its_last_instruction() {
        let mut req = request(
            "You are a Security Monitor for agents.",
            vec![message("user", &["check this"])],
        );
        req.max_tokens = Some(64);
        let kind = |req: &ChatRequest| classify(req, &answer("ok"));
        assert_eq!(
            kind(&req),
            NodeKind::Offshoot(Offshoot::PermissionCheckStage1)
        );
        req.max_tokens = Some(4096);
        assert_eq!(
            kind(&req),
            NodeKind::Offshoot(Offshoot::PermissionCheckStage2)
        );
        req.messages = vec![message("user", &["ERR ON THE SIDE OF BLOCKING. <block>"])];
        assert_eq!(
            kind(&req),
            NodeKind::Offshoot(Offshoot::PermissionCheckStage1)
        );
    }

    #[test]
    fn parameters_decide_before_texts() {
        let mut probe = request("", vec![message("user", &["quota"])]);
        probe.max_tokens = Some(1);
        assert_eq!(
            classify(&probe, &answer("x")),
            NodeKind::Offshoot(Offshoot::Probe)
        );
        probe.tools = 3;
        assert_eq!(classify(&probe, &answer("x")), NodeKind::Unknown);
        probe.stream = Some(true);
        assert_eq!(classify(&probe, &answer("x")), NodeKind::Main);
    }

    #[test]
    fn texts_tell_the_side_calls() {
        let cases = [
            (
                request("", vec![message("user", &["  [SUGGESTION MODE: x]"])]),
                "x",
                Offshoot::Suggestion,
            ),
            (
                request(r#"Reply as {"title": …}"#, vec![]),
                "x",
                Offshoot::TitleGen,
            ),
            (
                request("", vec![message("user", &["<conversation>…"])]),
                "x",
                Offshoot::PlanNameGen,
            ),
            (request("", vec![]), r#" {"title":"t"}"#, Offshoot::TitleGen),
            (
                request("", vec![]),
                r#"{"name":"n"}"#,
                Offshoot::PlanNameGen,
            ),
            (
                request("", vec![message("user", &["Web page content: …"])]),
                "x",
                Offshoot::WebSummary,
            ),
            (
                request(
                    "",
                    vec![message(
                        "user",
                        &["Write a Summary of the conversation so far"],
                    )],
                ),
                "x",
                Offshoot::Compaction,
            ),
            (
                request("", vec![]),
                "Primary Request and Intent\nPending Tasks",
                Offshoot::Compaction,
            ),
        ];
        for (req, reply, want) in cases {
            assert_eq!(
                classify(&req, &answer(reply)),
                NodeKind::Offshoot(want),
                "{want:?}"
            );
        }
        // The opening section alone is prose, not a summary.
        let quoted = classify(&request("", vec![]), &answer("Primary Request and Intent"));
        assert_eq!(quoted, NodeKind::Unknown);
    }

    #[test]
    fn a_streaming_responses_call_with_tool_routing_is_the_spine() {
        let mut req = request("sys", vec![message("user", &["go"])]);
        req.stream = Some(true);
        req.responses = true;
        assert_eq!(classify(&req, &answer("ok")), NodeKind::Unknown);
        req.tool_choice_enabled = true;
        assert_eq!(classify(&req, &answer("ok")), NodeKind::Main);
        req.responses = false;
        assert_eq!(classify(&req, &answer("ok")), NodeKind::Unknown);
    }

    #[test]
    fn injected_messages_are_whole_text_messages_of_listed_roles_and_prefixes() {
        let injection = Rules::TAPES_6EA4DFC.injected;
        let kind = |m: &Message| injected_kind(m, &injection);
        assert_eq!(
            kind(&message("user", &["# MCP Server Instructions\nx"])),
            Some("mcp-instructions")
        );
        assert_eq!(
            kind(&message("system", &["  # MCP Server", " Instructions\nx"])),
            Some("mcp-instructions")
        );
        assert_eq!(
            kind(&message("user", &["\n\t  ## Exit Plan Mode\nproceed"])),
            Some("mode-banner")
        );
        assert_eq!(
            kind(&message("user", &["## Plan Moderation"])),
            Some("mode-banner")
        );
        for ordinary in [
            message("developer", &["# MCP Server Instructions"]),
            message("assistant", &["# MCP Server Instructions"]),
            message("user", &["# mcp server instructions"]),
            message("user", &["#  MCP Server Instructions"]),
            message(
                "user",
                &["<system-reminder>r</system-reminder># MCP Server Instructions"],
            ),
            message("user", &[]),
        ] {
            assert_eq!(kind(&ordinary), None, "{ordinary:?}");
        }
        let mut mixed = message("user", &["# MCP Server Instructions"]);
        if let Some(blocks) = mixed.content.as_mut() {
            blocks.push(ContentBlock {
                kind: "tool_result".into(),
                ..ContentBlock::default()
            });
        }
        assert_eq!(kind(&mixed), None);
        assert_eq!(
            injected_kind(
                &message("user", &["# MCP Server Instructions"]),
                &Injection::NONE
            ),
            None
        );
    }

    #[test]
    fn lower_case_is_go_s() {
        assert_eq!(go_lower("ΟΔΟΣ İSTANBUL \u{212A}"), "οδοσ istanbul k");
    }

    /// The premise of [`AsciiLowered`]: no character outside ASCII but U+0130 and U+212A
    /// lowers to anything holding an ASCII byte.
    #[test]
    fn only_two_characters_outside_ascii_lower_into_it() {
        let into_ascii: Vec<char> = (0x80..=0x10_ffff)
            .filter_map(char::from_u32)
            .filter(|c| go_lower(&c.to_string()).bytes().any(|b| b.is_ascii()))
            .collect();
        assert_eq!(into_ascii, ['\u{130}', '\u{212a}']);
    }

    #[test]
    fn the_two_characters_are_found_by_their_bytes() {
        for (text, found) in [
            ("İ", true),
            ("x\u{212a}", true),
            ("\u{2129}\u{12a}\u{130}", true),
            ("°ª\u{212b}\u{131}\u{12a}", false),
            ("", false),
        ] {
            assert_eq!(lowers_into_ascii(text.as_bytes()), found, "{text:?}");
        }
    }

    #[test]
    fn ascii_lowered_texts_hold_what_go_lowered_texts_hold() {
        let needles = [
            "you are a security monitor",
            r#"{"title""#,
            "kin",
            "ik",
            "σ",
        ];
        for text in [
            "YOU ARE A SECURITY MONITOR",
            "Naïve — You Are a Security Monitor…",
            r#"Reply as {"TITLE": "x"}"#,
            "K\u{212A}İN İK",
            "SKİN",
            "ΟΔΟΣ",
            "",
        ] {
            // Short as it is, and long (searched with case ignored).
            let long = format!("{}{text}", "Naïve, Security-Monitor. ".repeat(200));
            for text in [text, long.as_str()] {
                let lowered = AsciiLowered::new(text);
                assert_eq!(
                    matches!(lowered, AsciiLowered::CaseIgnored(_)),
                    text.len() >= LONG_TEXT && !lowers_into_ascii(text.as_bytes())
                );
                for needle in needles.iter().filter(|n| n.is_ascii()) {
                    assert_eq!(
                        lowered.contains(&Needle::new(needle)),
                        go_lower(text).contains(needle),
                        "{text:?} {needle:?}"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn ascii_lowered_agrees_with_go_lower(
            text in "[aAkKiIsSyY {\u{130}\u{212a}\u{131}\u{3a3}\u{e9}\u{c9}-]{0,40}",
            needle in "[aksiy {-]{1,6}",
        ) {
            // Ignoring case holds for texts without the two characters only.
            if !lowers_into_ascii(text.as_bytes()) {
                proptest::prop_assert_eq!(
                    contains_ignoring_ascii_case(text.as_bytes(), &needle),
                    go_lower(&text).contains(&needle)
                );
            }
            proptest::prop_assert_eq!(
                AsciiLowered::new(&text).contains(&Needle::new(&needle)),
                go_lower(&text).contains(&needle)
            );
        }
    }

    /// The system prompt of an Anthropic request, as a chain under the later rules parses
    /// it: kept as sent where it can be.
    fn chain_system(system: &str) -> SystemPrompt {
        let body = format!(r#"{{"system":{system},"messages":[]}}"#);
        crate::llm::provider::Provider::Anthropic
            .parse_request_for_chain(Some(&body), &Rules::TAPES_6EA4DFC)
            .map(|request| request.system)
            .unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    /// What [`SystemText::contains`] answers: whether the Go-lowered prompt holds the needle.
    fn decoded_contains(prompt: &SystemPrompt, needle: &str) -> bool {
        go_lower(&prompt.text()).contains(needle)
    }

    const SYSTEM_NEEDLES: [&str; 6] = [
        "you are a security monitor",
        r#"{"title""#,
        "<conversation>",
        "ik",
        r"a\b/c",
        "x y",
    ];

    #[test]
    fn a_system_prompt_is_searched_in_place_as_decoded() {
        let cases = [
            (r#""You Are A Security Monitor""#, true),
            (
                r#"[{"type":"text","text":"Reply as {\"TITLE\": …}"}]"#,
                true,
            ),
            (
                r#"[{"type":"image","text":"you are a security monitor"}]"#,
                true,
            ),
            (
                r#"[{"type":"text","text":"x"},{"you are a security monitor":1}]"#,
                true,
            ),
            (
                r#"[{"type":"text","text":"x"},{"type":"text","text":" y"}]"#,
                true,
            ),
            (r#""a\\b\/c and a\\b/c""#, true),
            (r#""<conversation\n>\n<CONVERSATION>""#, true),
            (r#""\u0059ou are a security monitor""#, false),
            (r#""sk\u0130n""#, false),
            ("\"SK\u{130}N \u{212a}\"", true),
        ];
        for (system, kept) in cases {
            let prompt = chain_system(system);
            assert_eq!(prompt.json().is_some(), kept, "{system}");
            let searched = SystemText::new(&prompt);
            for needle in SYSTEM_NEEDLES {
                assert_eq!(
                    searched.contains(&Needle::new(needle)),
                    decoded_contains(&prompt, needle),
                    "{system} {needle:?}"
                );
            }
        }
    }

    /// Pieces of a JSON string's text: needles and their parts in either case, escapes of
    /// every kind, and the characters that lower into ASCII.
    const PIECES: [&str; 24] = [
        "you are a ",
        "SECURITY MONITOR",
        "Security ",
        "monitor",
        "{",
        r#"\"title\""#,
        r#"\"TITLE\""#,
        r"\u0022",
        "<conversation>",
        "<CONVER",
        "sation>",
        r"\n",
        r"\\",
        r"\/",
        "a",
        "b/c",
        r"\u0059ou",
        r"\u0130",
        "\u{130}",
        "K",
        "\u{212a}",
        "i",
        " ",
        "x",
    ];

    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop::collection::vec(prop::sample::select(&PIECES[..]), 0..12)
            .prop_map(|pieces| format!(r#""{}""#, pieces.concat()))
    }

    fn json_system() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let part = (
            json_text(),
            prop::sample::select(&["text", "image"][..]),
            any::<bool>(),
        )
            .prop_map(|(text, kind, type_first)| {
                if type_first {
                    format!(r#"{{"type":"{kind}","text":{text}}}"#)
                } else {
                    // The text as a key too: found in place, not in the decoded text.
                    format!(r#"{{"text":{text},"type":"{kind}",{text}:0}}"#)
                }
            });
        prop_oneof![
            json_text(),
            prop::collection::vec(part, 0..4).prop_map(|parts| format!("[{}]", parts.join(","))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn a_system_prompt_searched_in_place_agrees_with_its_decoded_text(
            system in json_system(),
            long in proptest::prelude::any::<bool>(),
        ) {
            // Long texts are searched with case ignored, short ones lowered first.
            let system = match system.strip_prefix('"') {
                Some(rest) if long => format!("\"{}{rest}", "x".repeat(LONG_TEXT)),
                _ => system,
            };
            let prompt = chain_system(&system);
            let searched = SystemText::new(&prompt);
            for needle in SYSTEM_NEEDLES {
                proptest::prop_assert_eq!(
                    searched.contains(&Needle::new(needle)),
                    decoded_contains(&prompt, needle),
                    "{} {:?}", system, needle
                );
            }
        }
    }

    /// A single text is borrowed; the classifier's tests cannot tell it from the joined form.
    #[test]
    fn one_text_is_borrowed_and_several_are_joined() {
        assert!(matches!(
            text_of(&message("user", &["", "a"])),
            Cow::Borrowed("a")
        ));
        assert_eq!(text_of(&message("user", &["a", "", "b"])), "a\nb\n");
        assert_eq!(text_of(&message("user", &[])), "");
    }
}
