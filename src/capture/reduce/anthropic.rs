//! The Anthropic Messages reducer (docs/capture.md §5): a stream of events, or a one-shot
//! message, into a reduced response.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::raw::{Raw, decode, decode_object};
use super::{Block, ReduceError, Reduced, decode_failure, is_stream, read_body};
use crate::capture::sse::{Event, Events, SseError};
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
        reduce_stream(body, now)
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
    let bytes = read_body(REDUCER, body)?;
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

/// The events of a stream, in order (§5.3). A malformed event is recorded and skipped, a
/// reader error ends the stream with what it gave; only a content-coding that does not
/// decode fails it.
fn reduce_stream(body: &mut dyn BufRead, now: DateTime<Utc>) -> Result<Reduced, ReduceError> {
    let mut turn = Turn::default();
    for event in Events::new(body) {
        match event {
            Ok(event) => turn.take(&event),
            Err(SseError::Read(e)) if let Some(failure) = decode_failure(&e) => {
                return Err(failure);
            }
            Err(e) => {
                let mut reduced = turn.finish(now);
                reduced
                    .extra
                    .insert("reducer_error".into(), e.to_string().into());
                return Ok(reduced);
            }
        }
    }
    Ok(turn.finish(now))
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

#[cfg(test)]
mod tests {
    use std::io::{self, BufReader, Read};

    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    /// An SSE body of `(event field, data)` pairs.
    fn sse(events: &[(&str, Value)]) -> String {
        events
            .iter()
            .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
            .collect()
    }

    fn stream_of(body: &str) -> Value {
        reduce_stream(&mut body.as_bytes(), now())
            .unwrap()
            .into_value()
    }

    fn start(model: &str) -> (&'static str, Value) {
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                "role": "assistant", "model": model, "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 10, "output_tokens": 1,
                    "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3}}}),
        )
    }

    fn block_start(index: i64, block: Value) -> (&'static str, Value) {
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    }

    fn delta(index: i64, delta: Value) -> (&'static str, Value) {
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn stop(index: i64) -> (&'static str, Value) {
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        )
    }

    fn message_delta(stop_reason: &str, output_tokens: i64) -> (&'static str, Value) {
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason,
                "stop_sequence": null}, "usage": {"output_tokens": output_tokens}}),
        )
    }

    fn message_stop() -> (&'static str, Value) {
        ("message_stop", json!({"type": "message_stop"}))
    }

    #[test]
    fn a_complete_stream_with_every_block_kind() {
        let body = sse(&[
            start("claude"),
            block_start(
                0,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
            ),
            delta(0, json!({"type": "thinking_delta", "thinking": "Let me "})),
            delta(0, json!({"type": "thinking_delta", "thinking": "think."})),
            delta(0, json!({"type": "signature_delta", "signature": "sig"})),
            stop(0),
            block_start(1, json!({"type": "text", "text": "Hel"})),
            ("ping", json!({"type": "ping"})),
            delta(1, json!({"type": "text_delta", "text": "lo"})),
            stop(1),
            block_start(
                2,
                json!({"type": "tool_use", "id": "tu_1", "name": "get", "input": {}}),
            ),
            delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "{\"city\": \"S"}),
            ),
            delta(
                2,
                json!({"type": "input_json_delta", "partial_json": "F\", \"n\": 2.0}"}),
            ),
            stop(2),
            block_start(
                3,
                json!({"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}),
            ),
            delta(
                3,
                json!({"type": "input_json_delta", "partial_json": "{\"query\":\"go\"}"}),
            ),
            stop(3),
            block_start(
                4,
                json!({"type": "web_search_tool_result", "tool_use_id": "srv_1",
                "content": [{"type": "web_search_result", "url": "https://go.dev", "n": 1.5}]}),
            ),
            stop(4),
            block_start(5, json!({"type": "redacted_thinking", "data": "opaque"})),
            stop(5),
            message_delta("tool_use", 40),
            message_stop(),
        ]);
        assert_eq!(
            stream_of(&body),
            json!({
                "model": "claude",
                "created_at": "2030-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Let me think.", "thinking_signature": "sig"},
                    {"type": "text", "text": "Hello"},
                    {"type": "tool_use", "tool_use_id": "tu_1", "tool_name": "get",
                        "tool_input": {"city": "SF", "n": 2}},
                    {"type": "server_tool_use", "tool_use_id": "srv_1", "tool_name": "web_search",
                        "tool_input": {"query": "go"}},
                    {"type": "web_search_tool_result", "tool_result_id": "srv_1",
                        "content": [{"type": "web_search_result", "url": "https://go.dev", "n": 1.5}]},
                    {"type": "redacted_thinking"},
                ]},
                "done": true,
                "stop_reason": "tool_use",
                "usage": {"prompt_tokens": 15, "completion_tokens": 40, "total_tokens": 55,
                    "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3},
                "extra": {"id": "msg_1", "type": "message"},
            })
        );
    }

    #[test]
    fn the_event_type_comes_from_the_data_when_the_event_field_is_missing() {
        let body = sse(&[start("m"), message_stop()])
            .replace("event: message_start\n", "")
            .replace("event: message_stop\n", "");
        let got = stream_of(&body);
        assert_eq!(got["model"], "m");
        assert_eq!(got["done"], true);
        // The `event:` field wins over the data's type.
        let body = "event: message_stop\ndata: {\"type\":\"ping\"}\n\n";
        assert_eq!(stream_of(body)["done"], true);
    }

    #[test]
    fn a_stream_cut_short_is_incomplete() {
        let body = sse(&[
            start("m"),
            block_start(0, json!({"type": "text", "text": ""})),
            delta(0, json!({"type": "text_delta", "text": "Partial respon"})),
        ]);
        let got = stream_of(&body);
        assert_eq!(got["done"], false);
        assert_eq!(got["stop_reason"], "incomplete");
        assert_eq!(
            got["extra"],
            json!({"id": "msg_1", "type": "message", "incomplete": true})
        );
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "Partial respon"}])
        );
        // A stop reason that came before the cut stays.
        let body = sse(&[start("m"), message_delta("max_tokens", 3)]);
        assert_eq!(stream_of(&body)["stop_reason"], "max_tokens");
    }

    #[test]
    fn an_empty_stream_is_an_empty_reduction() {
        assert_eq!(
            stream_of(""),
            json!({"model": "", "created_at": "2030-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": []}, "done": false,
                "stop_reason": "incomplete", "usage": {},
                "extra": {"id": "", "type": "message", "incomplete": true}})
        );
    }

    #[test]
    fn an_error_event_keeps_the_blocks_and_is_not_incomplete() {
        let error = (
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
        let body = sse(&[
            start("m"),
            block_start(0, json!({"type": "text", "text": ""})),
            delta(0, json!({"type": "text_delta", "text": "Starting"})),
            error.clone(),
        ]);
        let got = stream_of(&body);
        assert_eq!(got["stop_reason"], "error");
        assert_eq!(got["done"], false);
        assert_eq!(
            got["extra"],
            json!({"id": "msg_1", "type": "message",
                "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        assert_eq!(got["message"]["content"][0]["text"], "Starting");
        // A stop reason set before the error stays.
        let body = sse(&[start("m"), message_delta("end_turn", 1), error]);
        assert_eq!(stream_of(&body)["stop_reason"], "end_turn");
    }

    #[test]
    fn a_malformed_event_is_skipped_and_recorded_once() {
        let body = sse(&[
            start("m"),
            block_start(0, json!({"type": "text", "text": "a"})),
            // `index` must be an integer.
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1.5,
                    "delta": {"type": "text_delta", "text": "X"}}),
            ),
            ("content_block_delta", json!("not an object")),
            delta(0, json!({"type": "text_delta", "text": "b"})),
        ]);
        let got = stream_of(&body);
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "ab"}])
        );
        let error = &got["extra"]["error"];
        assert_eq!(error["type"], "reducer_parse_error");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with("anthropic reducer: parse content_block_delta: "),
            "{message}"
        );
        // No stop reason and no incomplete flag, though message_stop never came.
        assert!(got.get("stop_reason").is_none());
        assert!(got["extra"].get("incomplete").is_none());
        assert_eq!(got["done"], false);
    }

    #[test]
    fn a_parse_error_does_not_replace_a_recorded_error_but_an_error_event_does() {
        let error = (
            "error",
            json!({"type": "error", "error": {"type": "api_error", "message": "boom"}}),
        );
        let malformed = (
            "message_delta",
            json!({"type": "message_delta", "usage": 5}),
        );
        let got = stream_of(&sse(&[error.clone(), malformed.clone()]));
        assert_eq!(
            got["extra"]["error"],
            json!({"type": "api_error", "message": "boom"})
        );
        let got = stream_of(&sse(&[malformed, error]));
        assert_eq!(
            got["extra"]["error"],
            json!({"type": "api_error", "message": "boom"})
        );
    }

    #[test]
    fn tool_input_that_does_not_parse_is_recorded_and_the_start_input_kept() {
        let body = sse(&[
            block_start(
                0,
                json!({"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": 1}}),
            ),
            delta(
                0,
                json!({"type": "input_json_delta", "partial_json": "{\"a\": "}),
            ),
            stop(0),
            block_start(
                1,
                json!({"type": "tool_use", "id": "tu_2", "name": "g", "input": {}}),
            ),
            delta(
                1,
                json!({"type": "input_json_delta", "partial_json": "[1, 2]"}),
            ),
            stop(1),
            message_stop(),
        ]);
        let got = stream_of(&body);
        assert_eq!(
            got["message"]["content"],
            json!([
                {"type": "tool_use", "tool_use_id": "tu_1", "tool_name": "f", "tool_input": {"a": 1}},
                {"type": "tool_use", "tool_use_id": "tu_2", "tool_name": "g"},
            ])
        );
        let errors = got["extra"]["tool_input_parse_errors"].as_array().unwrap();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0]["tool_use_id"], "tu_1");
        assert_eq!(errors[0]["raw"], "{\"a\": ");
        assert!(errors[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(
            errors[1]["error"],
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        );
    }

    #[test]
    fn parsed_null_input_clears_it_and_an_unstopped_block_keeps_its_start_input() {
        let body = sse(&[
            block_start(
                0,
                json!({"type": "tool_use", "id": "a", "name": "f", "input": {"x": 1}}),
            ),
            delta(
                0,
                json!({"type": "input_json_delta", "partial_json": "null"}),
            ),
            stop(0),
            block_start(
                1,
                json!({"type": "tool_use", "id": "b", "name": "g", "input": {"y": 2}}),
            ),
            delta(
                1,
                json!({"type": "input_json_delta", "partial_json": "{\"y\": 3}"}),
            ),
            message_stop(),
        ]);
        assert_eq!(
            stream_of(&body)["message"]["content"],
            json!([
                {"type": "tool_use", "tool_use_id": "a", "tool_name": "f"},
                {"type": "tool_use", "tool_use_id": "b", "tool_name": "g", "tool_input": {"y": 2}},
            ])
        );
    }

    #[test]
    fn blocks_come_in_index_order_skipping_gaps_and_negative_indices() {
        let body = sse(&[
            block_start(2, json!({"type": "text", "text": "two"})),
            block_start(-1, json!({"type": "text", "text": "negative"})),
            block_start(0, json!({"type": "text", "text": "zero"})),
            // A delta for an index that never started makes a text block.
            delta(5, json!({"type": "text_delta", "text": "five"})),
            // A later start replaces the block at its index.
            block_start(2, json!({"type": "text", "text": "TWO"})),
            message_stop(),
        ]);
        assert_eq!(
            stream_of(&body)["message"]["content"],
            json!([
                {"type": "text", "text": "zero"},
                {"type": "text", "text": "TWO"},
                {"type": "text", "text": "five"},
            ])
        );
    }

    #[test]
    fn message_delta_keeps_a_stop_sequence_and_takes_only_output_tokens() {
        let body = sse(&[
            start("m"),
            (
                "message_delta",
                json!({"type": "message_delta",
                    "delta": {"stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"},
                    "usage": {"output_tokens": 7, "input_tokens": 999}}),
            ),
            // An empty stop reason and a null sequence change nothing.
            (
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "", "stop_sequence": null}}),
            ),
            message_stop(),
        ]);
        let got = stream_of(&body);
        assert_eq!(got["stop_reason"], "stop_sequence");
        assert_eq!(got["extra"]["stop_sequence"], "\n\nHuman:");
        assert_eq!(
            got["usage"],
            json!({"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22,
                "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3})
        );
    }

    #[test]
    fn keys_match_as_go_matches_them() {
        let body = "event: message_start\n\
            data: {\"type\":\"message_start\",\"MESSAGE\":{\"Model\":\"a\",\"model\":\"b\"}}\n\n";
        assert_eq!(stream_of(body)["model"], "b");
    }

    /// Hands out `data`, then fails.
    struct FailsAfter(&'static [u8]);

    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("zstd: corrupt block"));
            }
            self.0.read(buf)
        }
    }

    #[test]
    fn a_reader_error_ends_the_stream_with_the_blocks_so_far() {
        let body = "event: content_block_delta\n\
            data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"so far\"}}\n\n\
            event: content_block_delta\n\
            data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_d";
        let mut reader = BufReader::new(FailsAfter(body.as_bytes()));
        let got = reduce_stream(&mut reader, now()).unwrap().into_value();
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "so far"}])
        );
        assert_eq!(got["extra"]["reducer_error"], "zstd: corrupt block");
        assert_eq!(got["extra"]["incomplete"], true);
        // A line over the limit is a reader error too.
        let mut long = b"data: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
        let got = reduce_stream(&mut long.as_slice(), now())
            .unwrap()
            .into_value();
        assert_eq!(
            got["extra"]["reducer_error"],
            "bufio.Scanner: token too long"
        );
    }

    #[test]
    fn bad_bytes_in_kept_values_become_replacement_characters_and_are_counted() {
        let mut body =
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\
            \"content_block\":{\"type\":\"web_search_tool_result\",\"tool_use_id\":\"s\",\
            \"content\":[{\"title\":\"a\xffb \\ud800\"}]}}\n\n"
                .to_vec();
        body.extend_from_slice(b"event: message_stop\ndata: {}\n\n");
        let reduced = reduce_stream(&mut body.as_slice(), now()).unwrap();
        assert_eq!(reduced.replacements, 2);
        assert_eq!(
            reduced.into_value()["message"]["content"][0]["content"],
            json!([{"title": "a\u{fffd}b \u{fffd}"}])
        );
    }

    fn one_shot(body: &str) -> Result<Value, ReduceError> {
        reduce_one_shot(&mut body.as_bytes(), now()).map(Reduced::into_value)
    }

    #[test]
    fn a_one_shot_message_keeps_each_block_kind_and_itself() {
        let body = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [
                {"type": "text", "text": "hi", "id": "ignored"},
                {"type": "tool_use", "id": "tu", "name": "f", "input": {"a": [1, 2.5]}},
                {"type": "server_tool_use", "id": "srv", "name": "web_search", "input": {"q": "x"}},
                {"type": "thinking", "thinking": "hmm", "signature": "sig", "text": "ignored"},
                {"type": "web_search_tool_result", "tool_use_id": "srv", "content": {"k": null}},
                {"type": "web_search_tool_result", "tool_use_id": "srv2"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "mcp_tool_use", "id": "m", "name": "n", "input": {"z": 1}},
            ],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 7,
                "cache_creation_input_tokens": 11, "cache_read_input_tokens": 13},
        });
        let got = one_shot(&body.to_string()).unwrap();
        assert_eq!(
            got,
            json!({
                "model": "claude",
                "created_at": "2030-01-01T00:00:00Z",
                "message": {"role": "assistant", "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "tool_use", "tool_use_id": "tu", "tool_name": "f", "tool_input": {"a": [1, 2.5]}},
                    {"type": "server_tool_use", "tool_use_id": "srv", "tool_name": "web_search", "tool_input": {"q": "x"}},
                    {"type": "thinking", "thinking": "hmm", "thinking_signature": "sig"},
                    {"type": "web_search_tool_result", "tool_result_id": "srv", "content": {"k": null}},
                    {"type": "web_search_tool_result", "tool_result_id": "srv2"},
                    {"type": "redacted_thinking"},
                    {"type": "mcp_tool_use"},
                ]},
                "done": true,
                "stop_reason": "end_turn",
                "usage": {"prompt_tokens": 29, "completion_tokens": 7, "total_tokens": 36,
                    "cache_creation_input_tokens": 11, "cache_read_input_tokens": 13},
                "extra": {"id": "msg_1", "type": "message"},
                "raw_response": body,
            })
        );
    }

    #[test]
    fn bad_bytes_in_a_one_shot_body_become_replacement_characters_and_are_counted() {
        let body = b"{\"content\":[{\"type\":\"text\",\"text\":\"a\xffb\\ud800\"}]}";
        let reduced = reduce_one_shot(&mut &body[..], now()).unwrap();
        assert_eq!(reduced.replacements, 2);
        let got = reduced.into_value();
        assert_eq!(got["message"]["content"][0]["text"], "a\u{fffd}b\u{fffd}");
        assert_eq!(
            got["raw_response"]["content"][0]["text"],
            "a\u{fffd}b\u{fffd}"
        );
    }

    #[test]
    fn a_bare_one_shot_message_gets_defaults() {
        let got = one_shot("{}").unwrap();
        assert_eq!(got["message"], json!({"role": "assistant", "content": []}));
        assert_eq!(got["extra"], json!({"id": "", "type": "message"}));
        assert_eq!(got["usage"], json!({}));
        assert_eq!(got["done"], true);
        assert_eq!(got["raw_response"], json!({}));
        assert!(got.get("stop_reason").is_none());
    }

    #[test]
    fn a_one_shot_body_that_does_not_decode_fails() {
        for bad in [
            "event: message_start\ndata: {}\n\n",
            r#"{"content":[{"type":"tool_use","input":[1]}]}"#,
            r#"{"usage":{"input_tokens":1.5}}"#,
            r#"{"content":{"type":"text"}}"#,
            r#"{"stop_sequence":5}"#,
            r#"{"model":"a"} trailing"#,
            "",
        ] {
            match one_shot(bad) {
                Err(ReduceError::Parse { reducer, .. }) => assert_eq!(reducer, REDUCER),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_one_shot_read_error_fails() {
        let mut reader = BufReader::new(FailsAfter(b"{\"id\":"));
        match reduce_one_shot(&mut reader, now()) {
            Err(e @ ReduceError::Read { .. }) => assert_eq!(
                e.to_string(),
                "anthropic reducer: read oneshot body: zstd: corrupt block"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_content_type_alone_chooses_stream_or_one_shot() {
        let json_body = r#"{"id":"m","model":"x","content":[{"type":"text","text":"hi"}]}"#;
        let as_stream = reduce("text/event-stream", &mut json_body.as_bytes(), now()).unwrap();
        assert!(as_stream.content.is_empty());
        let as_json = reduce("", &mut json_body.as_bytes(), now()).unwrap();
        assert_eq!(as_json.content.len(), 1);
        let sse_body = sse(&[start("m"), message_stop()]);
        assert!(matches!(
            reduce("application/json", &mut sse_body.as_bytes(), now()),
            Err(ReduceError::Parse { .. })
        ));
        assert!(reduce("application/x-ndjson", &mut sse_body.as_bytes(), now()).is_ok());
    }
}
