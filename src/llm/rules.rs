//! The chain rules of a reference version, as values: which request fields the parsers read,
//! which harness tags the projection strips, which messages are injected, and so on. One
//! parser, one projection and one chain builder serve every version; a [`Rules`] value tells
//! them where the versions differ (docs/hashing.md#rule-sets).
//!
//! Every difference is data where it can be: tag lists, block-type gates, role and prefix
//! tables. Only what is a decision procedure (the node-kind classifier, the OpenAI Responses
//! parser) is code, switched on by a field.

/// A version of the reference's rules for turning a turn into nodes. Compared by value; two
/// rule sets with the same data are the same rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// The name the conformance vectors and the database use (`tapes-f237b6e`).
    pub name: &'static str,
    /// The tags whose spans are cut from projected text, in strip order.
    pub harness_tags: &'static [&'static str],
    /// Whether `tool_output` is projected like text (tags stripped, whitespace folded).
    pub project_tool_output: bool,
    /// Whether blocks keep a raw `content` member (stored and hashed). When not, a reduced
    /// response's `content` members are dropped before the chain is built.
    pub raw_content: bool,
    /// Which Anthropic request blocks the parser reads which members of.
    pub anthropic: AnthropicBlocks,
    /// Whether an OpenAI request with `input` and no `messages` is a Responses request.
    pub openai_responses: bool,
    /// Whether `tools` must be absent, `null` or an array on every provider.
    pub typed_tools: bool,
    /// Response blocks of provider `openai` that are rewritten from the Responses item in
    /// their raw `content` before hashing.
    pub rewritten_response_items: &'static [&'static str],
    /// Which request messages are injected context: kept as nodes, off the chain's spine.
    pub injected: Injection,
    /// Whether nodes carry a kind and the turn's thread id (neither is hashed).
    pub node_metadata: bool,
}

/// The members an Anthropic request block is probed for, by block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnthropicBlocks {
    /// `id`, `name` and `input` (object) become the tool use's id, name and input.
    pub tool_use: BlockGate,
    /// `thinking` and `signature` (strings) become the thinking text and signature.
    pub thinking: BlockGate,
    /// `tool_use_id` and `content` become the result id and the raw `content`.
    pub raw_result: BlockGate,
}

/// The gates of the rules reel parses by until a caller picks others.
impl Default for AnthropicBlocks {
    fn default() -> Self {
        Rules::default().anthropic
    }
}

/// Which block types a probe applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockGate {
    Never,
    Every,
    Only(&'static [&'static str]),
}

impl BlockGate {
    pub fn admits(self, kind: &str) -> bool {
        match self {
            BlockGate::Never => false,
            BlockGate::Every => true,
            BlockGate::Only(kinds) => kinds.contains(&kind),
        }
    }

    /// Whether any block type is admitted at all.
    pub fn is_open(self) -> bool {
        self != BlockGate::Never
    }
}

/// What makes a request message injected context: its role, the types of all its blocks,
/// and the prefix of its raw text (blocks concatenated, then trimmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    pub roles: &'static [&'static str],
    pub block_types: &'static [&'static str],
    /// Each prefix with the name of the kind it gives (`injected:<name>`), tried in order.
    pub prefixes: &'static [(&'static str, &'static str)],
}

impl Injection {
    /// Nothing is injected.
    pub const NONE: Injection = Injection {
        roles: &[],
        block_types: &[],
        prefixes: &[],
    };
}

/// Statics, not constants: every rule set value then points at one list, which lets the
/// projection find the tag index built for it by address.
static TAGS_F237B6E: [&str; 7] = [
    "system-reminder",
    "command-name",
    "command-message",
    "command-args",
    "local-command-stdout",
    "local-command-stderr",
    "local-command-caveat",
];

static TAGS_6EA4DFC: [&str; 19] = [
    "system-reminder",
    "command-name",
    "command-message",
    "command-args",
    "local-command-stdout",
    "local-command-stderr",
    "local-command-caveat",
    "session",
    "conversation",
    "new-diagnostics",
    "task-notification",
    "status",
    "summary",
    "transcript",
    "event",
    "tool-use-id",
    "output-file",
    "task-id",
    "environment_context",
];

impl Rules {
    /// The rules reel's hashes have matched since its first release (tapes `f237b6e`,
    /// docs/hashing.md). Frozen: every line of `chains.jsonl` holds under them.
    pub const TAPES_F237B6E: Rules = Rules {
        name: "tapes-f237b6e",
        harness_tags: &TAGS_F237B6E,
        project_tool_output: false,
        raw_content: false,
        anthropic: AnthropicBlocks {
            tool_use: BlockGate::Every,
            thinking: BlockGate::Never,
            raw_result: BlockGate::Never,
        },
        openai_responses: false,
        typed_tools: false,
        rewritten_response_items: &[],
        injected: Injection::NONE,
        node_metadata: false,
    };

    /// The rules of tapes `6ea4dfc` (docs/hashing.md#rule-set-tapes-6ea4dfc).
    pub const TAPES_6EA4DFC: Rules = Rules {
        name: "tapes-6ea4dfc",
        harness_tags: &TAGS_6EA4DFC,
        project_tool_output: true,
        raw_content: true,
        anthropic: AnthropicBlocks {
            tool_use: BlockGate::Only(&["tool_use", "server_tool_use"]),
            thinking: BlockGate::Only(&["thinking"]),
            raw_result: BlockGate::Only(&["web_search_tool_result"]),
        },
        openai_responses: true,
        typed_tools: true,
        rewritten_response_items: &["custom_tool_call", "custom_tool_call_output"],
        injected: Injection {
            roles: &["user", "system"],
            block_types: &["text", ""],
            prefixes: &[
                ("# MCP Server Instructions", "mcp-instructions"),
                ("The following skills are available", "skills-list"),
                ("Plan mode is active", "mode-banner"),
                ("Exited Plan Mode", "mode-banner"),
                ("## Exited Plan Mode", "mode-banner"),
                ("## Exit Plan Mode", "mode-banner"),
                ("## Plan Mode", "mode-banner"),
                ("[SYSTEM NOTIFICATION", "mode-banner"),
                ("<user_claude_md>", "claude-md"),
            ],
        },
        node_metadata: true,
    };

    /// Every rule set, oldest first.
    pub const ALL: [Rules; 2] = [Rules::TAPES_F237B6E, Rules::TAPES_6EA4DFC];

    /// The rule set of a name, as [`Rules::name`] spells it.
    pub fn from_name(name: &str) -> Option<Rules> {
        Rules::named(name).copied()
    }

    /// [`Rules::from_name`] as a reference that lives as long as the program, for state
    /// that hands the rules to every turn without copying them.
    pub fn named(name: &str) -> Option<&'static Rules> {
        EVERY.iter().find(|rules| rules.name == name)
    }

    /// The names of every rule set, for messages listing the choices.
    pub fn names() -> impl Iterator<Item = &'static str> {
        EVERY.iter().map(|rules| rules.name)
    }
}

/// [`Rules::ALL`] at a fixed address.
static EVERY: [Rules; 2] = Rules::ALL;

/// The rules reel hashes by until a caller picks others.
impl Default for Rules {
    fn default() -> Self {
        Rules::TAPES_F237B6E
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_their_rules() {
        for rules in Rules::ALL {
            assert_eq!(Rules::from_name(rules.name), Some(rules));
        }
        assert_eq!(Rules::from_name("tapes-HEAD"), None);
        assert_eq!(Rules::named("tapes-6ea4dfc"), Some(&Rules::TAPES_6EA4DFC));
        assert_eq!(
            Rules::names().collect::<Vec<_>>(),
            ["tapes-f237b6e", "tapes-6ea4dfc"]
        );
        assert_eq!(Rules::default(), Rules::TAPES_F237B6E);
    }

    #[test]
    fn the_later_tags_extend_the_earlier_in_order() {
        let (old, new) = (
            Rules::TAPES_F237B6E.harness_tags,
            Rules::TAPES_6EA4DFC.harness_tags,
        );
        assert_eq!(&new[..old.len()], old);
        assert_eq!(new.len(), 19);
    }

    #[test]
    fn gates_admit_what_they_list() {
        let gate = BlockGate::Only(&["tool_use", "server_tool_use"]);
        assert!(gate.admits("server_tool_use"));
        assert!(!gate.admits("mcp_tool_use"));
        assert!(BlockGate::Every.admits("text"));
        assert!(!BlockGate::Never.admits("thinking"));
        assert!(!BlockGate::Never.is_open() && gate.is_open());
    }
}
