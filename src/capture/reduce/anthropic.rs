//! The Anthropic Messages reducer (docs/capture.md §5): a stream of events, or a one-shot
//! message, into a reduced response.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::raw::{Raw, decode, decode_object};
use super::{Block, ReduceError, Reduced, is_stream};
use crate::capture::sse::{Event, Events};
use crate::gojson::{GoSlice, in_place_struct, pointer_fields, repair_raw};
use crate::llm::Usage;

const REDUCER: &str = "anthropic reducer";

/// A stream when the Content-Type says so, else a one-shot body: there is no sniffing.
pub(super) fn reduce(
    content_type: &str,
    body: &mut dyn BufRead,
    now: DateTime<Utc>,
) -> Result<Reduced, ReduceError> {
    if is_stream(content_type) {
        Ok(reduce_stream(body, now))
    } else {
        reduce_one_shot(body, now)
    }
}

/// `usage` as Anthropic sends it.
#[derive(Debug, Default)]
struct WireUsage {
    input_tokens: i64,
    output_tokens: i64,
    cache_creation_input_tokens: i64,
    cache_read_input_tokens: i64,
}

in_place_struct!(WireUsage, "a usage object" {
    "input_tokens" => input_tokens,
    "output_tokens" => output_tokens,
    "cache_creation_input_tokens" => cache_creation_input_tokens,
    "cache_read_input_tokens" => cache_read_input_tokens,
});

impl WireUsage {
    /// Anthropic counts cached input apart; the prompt is all of it. Go's `int` sums wrap.
    fn prompt_tokens(&self) -> i64 {
        self.input_tokens
            .wrapping_add(self.cache_creation_input_tokens)
            .wrapping_add(self.cache_read_input_tokens)
    }
}

/// A content block as Anthropic sends it, in a one-shot body or a `content_block_start`.
#[derive(Debug, Default)]
struct WireBlock {
    kind: String,
    text: String,
    id: String,
    name: String,
    input: Option<Map<String, Value>>,
    thinking: String,
    signature: String,
    tool_use_id: String,
    content: Option<Raw>,
}

in_place_struct!(WireBlock, "a content block object" {
    "type" => kind,
    "text" => text,
    "id" => id,
    "name" => name,
    "input" => input,
    "thinking" => thinking,
    "signature" => signature,
    "tool_use_id" => tool_use_id,
    "content" => content,
});

/// A one-shot Messages response.
#[derive(Debug, Default)]
struct OneShot {
    id: String,
    kind: String,
    role: String,
    content: Option<GoSlice<WireBlock>>,
    model: String,
    stop_reason: String,
    stop_sequence: Option<String>,
    usage: Option<WireUsage>,
}

in_place_struct!(OneShot, "a message object" {
    "id" => id,
    "type" => kind,
    "role" => role,
    "content" => content,
    "model" => model,
    "stop_reason" => stop_reason,
    "stop_sequence" => stop_sequence,
    "usage" => usage,
});

/// The `message` of `message_start`.
#[derive(Debug, Default)]
struct StreamMessage {
    id: String,
    kind: String,
    role: String,
    model: String,
    stop_reason: String,
    stop_sequence: Option<String>,
    usage: Option<WireUsage>,
}

in_place_struct!(StreamMessage, "a message object" {
    "id" => id,
    "type" => kind,
    "role" => role,
    "model" => model,
    "stop_reason" => stop_reason,
    "stop_sequence" => stop_sequence,
    "usage" => usage,
});

#[derive(Debug, Default)]
struct MessageStart {
    kind: String,
    message: StreamMessage,
}

in_place_struct!(MessageStart, "a message_start event" {
    "type" => kind,
    "message" => message,
});

#[derive(Debug, Default)]
struct BlockStart {
    kind: String,
    index: i64,
    content_block: WireBlock,
}

in_place_struct!(BlockStart, "a content_block_start event" {
    "type" => kind,
    "index" => index,
    "content_block" => content_block,
});

#[derive(Debug, Default)]
struct Delta {
    kind: String,
    text: String,
    partial_json: String,
    thinking: String,
    signature: String,
}

in_place_struct!(Delta, "a delta object" {
    "type" => kind,
    "text" => text,
    "partial_json" => partial_json,
    "thinking" => thinking,
    "signature" => signature,
});

#[derive(Debug, Default)]
struct BlockDelta {
    kind: String,
    index: i64,
    delta: Delta,
}

in_place_struct!(BlockDelta, "a content_block_delta event" {
    "type" => kind,
    "index" => index,
    "delta" => delta,
});

#[derive(Debug, Default)]
struct BlockStop {
    kind: String,
    index: i64,
}

in_place_struct!(BlockStop, "a content_block_stop event" {
    "type" => kind,
    "index" => index,
});

#[derive(Debug, Default)]
struct MessageDeltaBody {
    stop_reason: String,
    stop_sequence: Option<String>,
}

in_place_struct!(MessageDeltaBody, "a delta object" {
    "stop_reason" => stop_reason,
    "stop_sequence" => stop_sequence,
});

#[derive(Debug, Default)]
struct MessageDelta {
    kind: String,
    delta: MessageDeltaBody,
    usage: Option<WireUsage>,
}

in_place_struct!(MessageDelta, "a message_delta event" {
    "type" => kind,
    "delta" => delta,
    "usage" => usage,
});

#[derive(Debug, Default)]
struct ErrorBody {
    kind: String,
    message: String,
}

in_place_struct!(ErrorBody, "an error object" {
    "type" => kind,
    "message" => message,
});

#[derive(Debug, Default)]
struct ErrorEvent {
    kind: String,
    error: ErrorBody,
}

in_place_struct!(ErrorEvent, "an error event" {
    "type" => kind,
    "error" => error,
});

/// What an event without `event:` field names in its data.
#[derive(Debug, Default)]
struct TypeProbe {
    kind: String,
}

in_place_struct!(TypeProbe, "an event object" {
    "type" => kind,
});

pointer_fields!(WireUsage);

/// The message a one-shot body holds.
fn reduce_one_shot(body: &mut dyn BufRead, now: DateTime<Utc>) -> Result<Reduced, ReduceError> {
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes)
        .map_err(|source| ReduceError::Read {
            reducer: REDUCER,
            source,
        })?;
    let (text, replacements) = repair_raw(&bytes);
    let parse = |message| ReduceError::Parse {
        reducer: REDUCER,
        message,
    };
    let message: OneShot = decode(&text).map_err(parse)?;
    let raw_response: Value =
        serde_json::from_str(&text).map_err(|e| parse(crate::gojson::message_of(&e)))?;
    let content = message
        .content
        .map(GoSlice::into_vec)
        .unwrap_or_default()
        .into_iter()
        .map(one_shot_block)
        .collect();
    let usage = message.usage.unwrap_or_default();
    let prompt_tokens = usage.prompt_tokens();
    let mut extra = Map::new();
    extra.insert("id".into(), message.id.into());
    extra.insert("type".into(), or_default(message.kind, "message").into());
    Ok(Reduced {
        model: message.model,
        created_at: Some(now),
        role: or_default(message.role, "assistant"),
        content,
        done: true,
        stop_reason: message.stop_reason,
        usage: Some(Usage {
            prompt_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: prompt_tokens.wrapping_add(usage.output_tokens),
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            ..Usage::default()
        }),
        extra,
        raw_response: Some(raw_response),
        replacements,
    })
}

/// One block of a one-shot body (§5.2): only the members of its kind are kept.
fn one_shot_block(block: WireBlock) -> Block {
    let mut out = Block::new(block.kind);
    match out.kind.as_str() {
        "text" => out.text = block.text,
        "tool_use" | "server_tool_use" => {
            out.tool_use_id = block.id;
            out.tool_name = block.name;
            out.tool_input = block.input;
        }
        "thinking" => {
            out.thinking = block.thinking;
            out.thinking_signature = block.signature;
        }
        "web_search_tool_result" => {
            out.tool_result_id = block.tool_use_id;
            out.content = block.content.map(|raw| raw.value);
        }
        _ => {}
    }
    out
}

fn or_default(value: String, default: &str) -> String {
    if value.is_empty() {
        default.to_owned()
    } else {
        value
    }
}

/// A block being streamed.
#[derive(Debug, Default)]
struct StreamBlock {
    kind: String,
    text: String,
    thinking: String,
    signature: String,
    tool_id: String,
    tool_name: String,
    tool_input: Option<Map<String, Value>>,
    tool_use_id: String,
    content: Option<Value>,
}

impl StreamBlock {
    fn is_tool(&self) -> bool {
        matches!(self.kind.as_str(), "tool_use" | "server_tool_use")
    }

    /// The block as it is emitted (§5.4).
    fn finish(self) -> Block {
        let mut out = Block::new(self.kind);
        match out.kind.as_str() {
            "text" => out.text = self.text,
            "tool_use" | "server_tool_use" => {
                out.tool_use_id = self.tool_id;
                out.tool_name = self.tool_name;
                out.tool_input = self.tool_input;
            }
            "thinking" => {
                out.thinking = self.thinking;
                out.thinking_signature = self.signature;
            }
            "web_search_tool_result" => {
                out.tool_result_id = self.tool_use_id;
                out.content = self.content;
            }
            _ => {}
        }
        out
    }
}

/// What the events of a stream have said so far.
#[derive(Debug, Default)]
struct Turn {
    id: String,
    model: String,
    role: String,
    stop_reason: String,
    stop_sequence: Option<String>,
    /// By `index`; negative indices are kept but never emitted.
    blocks: BTreeMap<i64, StreamBlock>,
    /// The `input_json_delta` text of each index, parsed at its `content_block_stop`.
    fragments: HashMap<i64, String>,
    usage: Usage,
    error_type: String,
    error_message: String,
    tool_input_errors: Vec<Value>,
    seen_stop: bool,
    replacements: usize,
}

/// The events of a stream, in order (§5.3). Never fails: a malformed event is recorded and
/// skipped, a reader error ends the stream with what it gave.
fn reduce_stream(body: &mut dyn BufRead, now: DateTime<Utc>) -> Reduced {
    let mut turn = Turn::default();
    for event in Events::new(body) {
        match event {
            Ok(event) => turn.take(&event),
            Err(e) => {
                let mut reduced = turn.finish(now);
                reduced
                    .extra
                    .insert("reducer_error".into(), e.to_string().into());
                return reduced;
            }
        }
    }
    turn.finish(now)
}

impl Turn {
    fn take(&mut self, event: &Event) {
        let (data, replaced) = repair_raw(&event.data);
        self.replacements += replaced;
        let kind = if event.event.is_empty() {
            // An unreadable probe leaves the type empty: the event is ignored.
            decode::<TypeProbe>(&data)
                .map(|p| p.kind)
                .unwrap_or_default()
        } else {
            // A name that is not UTF-8 matches no event type, however it is read.
            String::from_utf8_lossy(&event.event).into_owned()
        };
        let outcome = match kind.as_str() {
            "message_start" => decode(&data).map(|e| self.message_start(e)),
            "content_block_start" => decode(&data).map(|e| self.block_start(e)),
            "content_block_delta" => decode(&data).map(|e| self.block_delta(e)),
            "content_block_stop" => decode(&data).map(|e| self.block_stop(e)),
            "message_delta" => decode(&data).map(|e| self.message_delta(e)),
            "message_stop" => {
                self.seen_stop = true;
                Ok(())
            }
            "error" => decode(&data).map(|e| self.error(e)),
            _ => Ok(()),
        };
        if let Err(message) = outcome
            && self.error_message.is_empty()
        {
            self.error_message = format!("{REDUCER}: parse {kind}: {message}");
            self.error_type = "reducer_parse_error".into();
        }
    }

    fn message_start(&mut self, event: MessageStart) {
        let message = event.message;
        self.id = message.id;
        self.model = message.model;
        self.role = message.role;
        if let Some(usage) = message.usage {
            self.usage.prompt_tokens = usage.prompt_tokens();
            self.usage.cache_creation_input_tokens = usage.cache_creation_input_tokens;
            self.usage.cache_read_input_tokens = usage.cache_read_input_tokens;
        }
    }

    fn block_start(&mut self, event: BlockStart) {
        let start = event.content_block;
        let mut block = StreamBlock {
            kind: start.kind,
            ..StreamBlock::default()
        };
        match block.kind.as_str() {
            "text" => block.text = start.text,
            "tool_use" | "server_tool_use" => {
                block.tool_id = start.id;
                block.tool_name = start.name;
                // The `{}` placeholder is no input: it comes in deltas.
                block.tool_input = start.input.filter(|input| !input.is_empty());
            }
            "thinking" => {
                block.thinking = start.thinking;
                block.signature = start.signature;
            }
            "web_search_tool_result" => {
                block.tool_use_id = start.tool_use_id;
                block.content = start.content.map(|raw| raw.value);
            }
            _ => {}
        }
        self.blocks.insert(event.index, block);
    }

    fn block_delta(&mut self, event: BlockDelta) {
        // A delta for a block that never started starts a text block.
        let block = self
            .blocks
            .entry(event.index)
            .or_insert_with(|| StreamBlock {
                kind: "text".into(),
                ..StreamBlock::default()
            });
        let delta = event.delta;
        match delta.kind.as_str() {
            "text_delta" => block.text.push_str(&delta.text),
            "input_json_delta" => self
                .fragments
                .entry(event.index)
                .or_default()
                .push_str(&delta.partial_json),
            "thinking_delta" => block.thinking.push_str(&delta.thinking),
            "signature_delta" => block.signature.push_str(&delta.signature),
            _ => {}
        }
    }

    fn block_stop(&mut self, event: BlockStop) {
        let Some(block) = self.blocks.get_mut(&event.index) else {
            return;
        };
        if !block.is_tool() {
            return;
        }
        let Some(raw) = self.fragments.remove(&event.index) else {
            return;
        };
        if raw.is_empty() {
            return;
        }
        match decode_object(&raw, &mut self.replacements) {
            Ok(input) => block.tool_input = input,
            Err(error) => self.tool_input_errors.push(json!({
                "tool_use_id": block.tool_id,
                "raw": raw,
                "error": error,
            })),
        }
    }

    fn message_delta(&mut self, event: MessageDelta) {
        if !event.delta.stop_reason.is_empty() {
            self.stop_reason = event.delta.stop_reason;
        }
        if event.delta.stop_sequence.is_some() {
            self.stop_sequence = event.delta.stop_sequence;
        }
        if let Some(usage) = event.usage {
            self.usage.completion_tokens = usage.output_tokens;
        }
    }

    fn error(&mut self, event: ErrorEvent) {
        self.error_type = event.error.kind;
        self.error_message = event.error.message;
        if self.stop_reason.is_empty() {
            self.stop_reason = "error".into();
        }
    }

    /// The reduction of what was seen (§5.4).
    fn finish(self, now: DateTime<Utc>) -> Reduced {
        let content = self
            .blocks
            .into_iter()
            .filter(|(index, _)| *index >= 0)
            .map(|(_, block)| block.finish())
            .collect();
        let mut usage = self.usage;
        usage.total_tokens = usage.prompt_tokens.wrapping_add(usage.completion_tokens);
        let mut extra = Map::new();
        extra.insert("id".into(), self.id.into());
        extra.insert("type".into(), "message".into());
        if let Some(sequence) = self.stop_sequence {
            extra.insert("stop_sequence".into(), sequence.into());
        }
        if !self.tool_input_errors.is_empty() {
            extra.insert(
                "tool_input_parse_errors".into(),
                Value::Array(self.tool_input_errors),
            );
        }
        let mut stop_reason = self.stop_reason;
        if self.error_type.is_empty() {
            if !self.seen_stop {
                extra.insert("incomplete".into(), true.into());
                if stop_reason.is_empty() {
                    "incomplete".clone_into(&mut stop_reason);
                }
            }
        } else {
            extra.insert(
                "error".into(),
                json!({"type": self.error_type, "message": self.error_message}),
            );
        }
        Reduced {
            model: self.model,
            created_at: Some(now),
            role: or_default(self.role, "assistant"),
            content,
            done: self.seen_stop,
            stop_reason,
            usage: Some(usage),
            extra,
            raw_response: None,
            replacements: self.replacements,
        }
    }
}
