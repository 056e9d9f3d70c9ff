//! The OpenAI Responses reducer (docs/capture.md §6): a stream of events, or a one-shot
//! Response object, into a reduced response. A raw-only `openai` turn is always a Responses
//! body; Chat Completions bodies have no reducer.

use std::io::{self, BufRead, Read};

use chrono::{DateTime, Utc};
use serde_json::Map;

use super::raw::{Raw, decode, decode_object};
use super::{Block, ReduceError, Reduced, decode_failure, is_stream, read_body};
use crate::capture::sse::{Events, SseError};
use crate::gojson::{GoSlice, in_place_struct, pointer_fields, repair_raw};
use crate::llm::Usage;

const REDUCER: &str = "openai responses reducer";

/// How many leading bytes decide whether a body without a usable Content-Type is a stream:
/// room for some white space and `event:`.
const SNIFF_LEN: usize = 16;

/// A stream when the Content-Type says so, a one-shot body when it names JSON, else
/// whatever the first bytes look like (chatgpt.com's Codex backend sends its streams
/// without a Content-Type).
pub(super) fn reduce(content_type: &str, body: &mut dyn BufRead) -> Result<Reduced, ReduceError> {
    if is_stream(content_type) {
        return reduce_stream(body);
    }
    if content_type.to_ascii_lowercase().contains("json") {
        return reduce_one_shot(body);
    }
    let mut sniffed = Sniffed::peek(body);
    if sniffed.looks_like_sse() {
        reduce_stream(&mut sniffed)
    } else {
        reduce_one_shot(&mut sniffed)
    }
}

/// `input_tokens_details`.
#[derive(Debug, Default)]
struct InputDetails {
    cached_tokens: i64,
}

in_place_struct!(InputDetails, "an input_tokens_details object" {
    "cached_tokens" => cached_tokens,
});

#[derive(Debug, Default)]
struct WireUsage {
    input_tokens: i64,
    output_tokens: i64,
    total_tokens: i64,
    input_tokens_details: Option<InputDetails>,
}

in_place_struct!(WireUsage, "a usage object" {
    "input_tokens" => input_tokens,
    "output_tokens" => output_tokens,
    "total_tokens" => total_tokens,
    "input_tokens_details" => input_tokens_details,
});

#[derive(Debug, Default)]
struct IncompleteDetails {
    reason: String,
}

in_place_struct!(IncompleteDetails, "an incomplete_details object" {
    "reason" => reason,
});

/// A Response object, the one-shot body and the `response` of stream events.
#[derive(Debug, Default)]
struct ResponseObject {
    id: String,
    object: String,
    created_at: i64,
    status: String,
    model: String,
    output: Option<GoSlice<Raw>>,
    usage: Option<WireUsage>,
    incomplete_details: Option<IncompleteDetails>,
}

in_place_struct!(ResponseObject, "a response object" {
    "id" => id,
    "object" => object,
    "created_at" => created_at,
    "status" => status,
    "model" => model,
    "output" => output,
    "usage" => usage,
    "incomplete_details" => incomplete_details,
});

/// The data of one stream event.
#[derive(Debug, Default)]
struct Envelope {
    kind: String,
    response: Option<ResponseObject>,
    delta: String,
    item: Option<Raw>,
}

in_place_struct!(Envelope, "a stream event" {
    "type" => kind,
    "response" => response,
    "delta" => delta,
    "item" => item,
});

/// A part of a `message` item's content.
#[derive(Debug, Default)]
struct Part {
    kind: String,
    text: String,
    refusal: String,
}

in_place_struct!(Part, "a content part" {
    "type" => kind,
    "text" => text,
    "refusal" => refusal,
});

/// A part of a `reasoning` item's summary.
#[derive(Debug, Default)]
struct SummaryPart {
    kind: String,
    text: String,
}

in_place_struct!(SummaryPart, "a summary part" {
    "type" => kind,
    "text" => text,
});

/// An output item, as far as the mapping reads it (§6.3).
#[derive(Debug, Default)]
struct Item {
    kind: String,
    role: String,
    content: Option<GoSlice<Part>>,
    call_id: String,
    name: String,
    arguments: String,
    summary: Option<GoSlice<SummaryPart>>,
    encrypted_content: String,
}

in_place_struct!(Item, "an output item" {
    "type" => kind,
    "role" => role,
    "content" => content,
    "call_id" => call_id,
    "name" => name,
    "arguments" => arguments,
    "summary" => summary,
    "encrypted_content" => encrypted_content,
});

pointer_fields!(InputDetails, WireUsage, IncompleteDetails, ResponseObject);

/// A one-shot body: a Response object, or nothing.
fn reduce_one_shot(body: &mut dyn BufRead) -> Result<Reduced, ReduceError> {
    let bytes = read_body(REDUCER, body)?;
    let (text, repaired) = repair_raw(&bytes);
    let response: ResponseObject = decode(&text).map_err(|message| ReduceError::Parse {
        reducer: REDUCER,
        message,
    })?;
    if response.object != "response" {
        return Err(ReduceError::NotAResponse(response.object));
    }
    let mut replacements = repaired;
    let mut reduced = complete(response, Vec::new(), &mut replacements);
    reduced.replacements = replacements;
    Ok(reduced)
}

/// The events of a stream (§6.4): the first terminal event's response, or a partial
/// reduction (§6.5). Only a content-coding that does not decode fails it.
fn reduce_stream(body: &mut dyn BufRead) -> Result<Reduced, ReduceError> {
    let mut replacements = 0;
    let mut items: Vec<Raw> = Vec::new();
    let mut text = String::new();
    let mut created: Option<ResponseObject> = None;
    for event in Events::new(body) {
        let event = match event {
            Ok(event) => event,
            Err(SseError::Read(e)) if let Some(failure) = decode_failure(&e) => {
                return Err(failure);
            }
            Err(e) => {
                let reason = e.to_string();
                return Ok(partial(created, items, text, &reason, replacements));
            }
        };
        let (data, repaired) = repair_raw(&event.data);
        replacements += repaired;
        // An event that does not decode is skipped without a trace.
        let Ok(envelope) = decode::<Envelope>(&data) else {
            continue;
        };
        match envelope.kind.as_str() {
            kind @ ("response.completed" | "response.incomplete" | "response.failed") => {
                let Some(response) = envelope.response else {
                    let reason = format!("terminal event {kind} carried no response object");
                    return Ok(partial(created, items, text, &reason, replacements));
                };
                let mut reduced = complete(response, items, &mut replacements);
                reduced.replacements = replacements;
                return Ok(reduced);
            }
            "response.created" => created = envelope.response,
            "response.output_item.done" => items.extend(envelope.item),
            "response.output_text.delta" => text.push_str(&envelope.delta),
            _ => {}
        }
    }
    Ok(partial(
        created,
        items,
        text,
        "stream ended before terminal response event",
        replacements,
    ))
}

/// A whole Response (§6.2); an empty `output` takes the items the stream collected.
fn complete(response: ResponseObject, collected: Vec<Raw>, replacements: &mut usize) -> Reduced {
    let output = response
        .output
        .map(GoSlice::into_vec)
        .filter(|output| !output.is_empty())
        .unwrap_or(collected);
    let stop_reason = match response.status.as_str() {
        "completed" => "stop".to_owned(),
        "incomplete" => response
            .incomplete_details
            .map(|details| details.reason)
            .filter(|reason| !reason.is_empty())
            .unwrap_or_else(|| "incomplete".to_owned()),
        _ => response.status.clone(),
    };
    let usage = response.usage.map(|usage| Usage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
        cache_read_input_tokens: usage
            .input_tokens_details
            .map_or(0, |details| details.cached_tokens),
        ..Usage::default()
    });
    let mut extra = Map::new();
    extra.insert("id".into(), response.id.into());
    extra.insert("object".into(), response.object.into());
    extra.insert("status".into(), response.status.into());
    Reduced {
        model: response.model,
        created_at: unix_time(response.created_at),
        role: "assistant".into(),
        content: blocks(output, replacements),
        done: true,
        stop_reason,
        usage,
        extra,
        ..Reduced::default()
    }
}

/// What a stream without terminal response gave (§6.5): its items, else its text.
fn partial(
    created: Option<ResponseObject>,
    items: Vec<Raw>,
    text: String,
    reason: &str,
    mut replacements: usize,
) -> Reduced {
    let mut content = blocks(items, &mut replacements);
    if content.is_empty() && !text.is_empty() {
        content.push(Block::text("text", text));
    }
    let mut extra = Map::new();
    extra.insert("partial".into(), true.into());
    extra.insert("reducer_error".into(), reason.into());
    let (model, created_at) = created.map_or((String::new(), None), |created| {
        (created.model, unix_time(created.created_at))
    });
    Reduced {
        model,
        created_at,
        role: "assistant".into(),
        content,
        extra,
        replacements,
        ..Reduced::default()
    }
}

/// `created_at` seconds as a UTC time, when above zero.
fn unix_time(seconds: i64) -> Option<DateTime<Utc>> {
    if seconds > 0 {
        DateTime::from_timestamp(seconds, 0)
    } else {
        None
    }
}

/// Output items as blocks (§6.3).
fn blocks(items: Vec<Raw>, replacements: &mut usize) -> Vec<Block> {
    let mut out = Vec::with_capacity(items.len());
    for raw in items {
        let Ok(item) = decode::<Item>(&raw.text) else {
            out.push(Block::raw("unparsed", raw.value));
            continue;
        };
        match item.kind.as_str() {
            "message" => {
                let parts = item.content.map(GoSlice::into_vec).unwrap_or_default();
                out.extend(parts.into_iter().map(|part| match part.kind.as_str() {
                    "output_text" => Block::text("text", part.text),
                    "refusal" => Block::text("refusal", part.refusal),
                    _ => Block::text(part.kind, part.text),
                }));
            }
            "function_call" => {
                let mut block = Block {
                    tool_use_id: item.call_id,
                    tool_name: item.name,
                    ..Block::new("tool_use")
                };
                if !item.arguments.is_empty() {
                    match decode_object(&item.arguments, replacements) {
                        Ok(input) => block.tool_input = input,
                        Err(_) => block.content = Some(raw.value),
                    }
                }
                out.push(block);
            }
            "reasoning" => {
                let mut thinking = String::new();
                for part in item.summary.map(GoSlice::into_vec).unwrap_or_default() {
                    if !thinking.is_empty() && !part.text.is_empty() {
                        thinking.push('\n');
                    }
                    thinking.push_str(&part.text);
                }
                out.push(Block {
                    thinking,
                    thinking_signature: item.encrypted_content,
                    ..Block::new("thinking")
                });
            }
            _ => out.push(Block::raw(item.kind, raw.value)),
        }
    }
    out
}

/// A body whose first bytes were read to sniff it, read again from its start: the bytes
/// peeked, then the error the peek met (once), then the rest, as Go's `bufio.Reader` gives
/// them back after a `Peek`.
struct Sniffed<'a> {
    head: Vec<u8>,
    at: usize,
    error: Option<io::Error>,
    rest: &'a mut dyn BufRead,
}

impl<'a> Sniffed<'a> {
    fn peek(rest: &'a mut dyn BufRead) -> Self {
        let mut head = Vec::with_capacity(SNIFF_LEN);
        let mut error = None;
        while head.len() < SNIFF_LEN {
            match rest.fill_buf() {
                Ok([]) => break,
                Ok(chunk) => {
                    let n = chunk.len().min(SNIFF_LEN - head.len());
                    head.extend_from_slice(&chunk[..n]);
                    rest.consume(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        Sniffed {
            head,
            at: 0,
            error,
            rest,
        }
    }

    /// SSE opens with an `event:` or `data:` field, maybe after white space.
    fn looks_like_sse(&self) -> bool {
        let start = self
            .head
            .iter()
            .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
            .unwrap_or(self.head.len());
        let head = &self.head[start..];
        head.starts_with(b"event:") || head.starts_with(b"data:")
    }
}

impl Read for Sniffed<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Sniffed<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at < self.head.len() {
            return Ok(&self.head[self.at..]);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.rest.fill_buf()
    }

    fn consume(&mut self, n: usize) {
        if self.at < self.head.len() {
            self.at += n;
        } else {
            self.rest.consume(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use serde_json::{Value, json};

    use super::*;

    fn one_shot(body: &Value) -> Result<Value, ReduceError> {
        reduce_one_shot(&mut body.to_string().as_bytes()).map(Reduced::into_value)
    }

    fn response(status: &str, output: Value) -> Value {
        json!({"id": "resp_1", "object": "response", "created_at": 1781218491,
            "status": status, "model": "gpt-5", "output": output,
            "usage": {"input_tokens": 16, "output_tokens": 6, "total_tokens": 99,
                "input_tokens_details": {"cached_tokens": 4}},
            "incomplete_details": null})
    }

    fn content_of(output: Value) -> Value {
        one_shot(&response("completed", output)).unwrap()["message"]["content"].clone()
    }

    #[test]
    fn a_one_shot_response_maps_status_usage_time_and_extra() {
        let got = one_shot(&response(
            "completed",
            json!([{"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "ok", "annotations": []}]}]),
        ))
        .unwrap();
        assert_eq!(
            got,
            json!({
                "model": "gpt-5",
                "created_at": "2026-06-11T22:54:51Z",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                "done": true,
                "stop_reason": "stop",
                // total_tokens as sent, not recomputed.
                "usage": {"prompt_tokens": 16, "completion_tokens": 6, "total_tokens": 99,
                    "cache_read_input_tokens": 4},
                "extra": {"id": "resp_1", "object": "response", "status": "completed"},
            })
        );
    }

    #[test]
    fn stop_reasons_follow_the_status() {
        let stop = |body: Value| one_shot(&body).unwrap()["stop_reason"].clone();
        let mut incomplete = response("incomplete", json!([]));
        assert_eq!(stop(incomplete.clone()), "incomplete");
        incomplete["incomplete_details"] = json!({"reason": "max_output_tokens"});
        assert_eq!(stop(incomplete.clone()), "max_output_tokens");
        incomplete["incomplete_details"] = json!({"reason": ""});
        assert_eq!(stop(incomplete), "incomplete");
        assert_eq!(stop(response("failed", json!([]))), "failed");
        assert_eq!(stop(response("cancelled", json!([]))), "cancelled");
        // An empty status gives no stop reason at all.
        assert_eq!(stop(response("", json!([]))), Value::Null);
    }

    #[test]
    fn without_usage_or_time_those_members_are_left_out() {
        let got = one_shot(&json!({"object": "response", "created_at": 0, "status": "completed"}))
            .unwrap();
        assert!(got.get("usage").is_none());
        assert!(got.get("created_at").is_none());
        assert_eq!(got["model"], "");
        assert_eq!(
            got["extra"],
            json!({"id": "", "object": "response", "status": "completed"})
        );
    }

    #[test]
    fn a_one_shot_body_that_is_no_response_fails() {
        match one_shot(&json!({"object": "chat.completion", "choices": []})) {
            Err(e @ ReduceError::NotAResponse(_)) => assert_eq!(
                e.to_string(),
                "openai responses reducer: unexpected object \"chat.completion\""
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            one_shot(&json!(null)),
            Err(ReduceError::NotAResponse(_))
        ));
        for bad in [
            json!({"object": "response", "output": {"type": "message"}}),
            json!({"object": "response", "created_at": 1.5}),
            json!({"object": "response", "usage": {"input_tokens": "3"}}),
            json!({"object": "response", "incomplete_details": {"reason": 1}}),
        ] {
            assert!(
                matches!(one_shot(&bad), Err(ReduceError::Parse { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            reduce_one_shot(&mut &b"{\"object\":"[..]),
            Err(ReduceError::Parse { .. })
        ));
    }

    #[test]
    fn message_parts_become_blocks_in_order() {
        assert_eq!(
            content_of(json!([{"type": "message", "role": "ignored", "content": [
                {"type": "output_text", "text": "a"},
                {"type": "refusal", "refusal": "no", "text": "ignored"},
                {"type": "input_text", "text": "b"},
                null,
            ]}])),
            json!([
                {"type": "text", "text": "a"},
                {"type": "refusal", "text": "no"},
                {"type": "input_text", "text": "b"},
                {"type": ""},
            ])
        );
    }

    #[test]
    fn function_calls_parse_their_arguments() {
        let call = |arguments: Value| json!({"type": "function_call", "call_id": "c1", "name": "shell", "arguments": arguments});
        let calls = json!([
            call(json!("{\"cmd\":[\"ls\"],\"n\":2.0}")),
            call(json!("null")),
            call(json!("")),
            call(json!("[1]")),
            call(json!("{\"cmd\":")),
        ]);
        let tool = |extra: Value| {
            let mut block = json!({"type": "tool_use", "tool_use_id": "c1", "tool_name": "shell"});
            block
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            block
        };
        assert_eq!(
            content_of(calls.clone()),
            json!([
                tool(json!({"tool_input": {"cmd": ["ls"], "n": 2}})),
                tool(json!({})),
                tool(json!({})),
                tool(json!({"content": calls[3]})),
                tool(json!({"content": calls[4]})),
            ])
        );
    }

    #[test]
    fn reasoning_joins_its_summary_between_non_empty_texts() {
        let reasoning = |summary: Value| json!([{"type": "reasoning", "summary": summary, "encrypted_content": "enc"}]);
        let texts = |texts: &[&str]| {
            Value::Array(
                texts
                    .iter()
                    .map(|t| json!({"type": "summary_text", "text": t}))
                    .collect(),
            )
        };
        assert_eq!(
            content_of(reasoning(texts(&["a", "", "b"]))),
            json!([{"type": "thinking", "thinking": "a\nb", "thinking_signature": "enc"}])
        );
        assert_eq!(content_of(reasoning(texts(&["", "a"])))[0]["thinking"], "a");
        assert_eq!(
            content_of(reasoning(json!([]))),
            json!([{"type": "thinking", "thinking_signature": "enc"}])
        );
    }

    #[test]
    fn other_items_stay_raw_and_undecodable_ones_are_unparsed() {
        let output = json!([
            {"type": "custom_tool_call", "call_id": "c", "name": "exec", "input": "ls"},
            {"type": "web_search_call", "action": {"query": "q"}},
            {"type": "function_call_output", "output": "x"},
            {"content": "no type"},
            {"type": "function_call", "arguments": {"a": 1}},
            {"type": "message", "content": "text"},
            "a string",
            null,
        ]);
        assert_eq!(
            content_of(output.clone()),
            json!([
                {"type": "custom_tool_call", "content": output[0]},
                {"type": "web_search_call", "content": output[1]},
                {"type": "function_call_output", "content": output[2]},
                {"type": "unparsed", "content": output[3]},
                {"type": "unparsed", "content": output[4]},
                {"type": "unparsed", "content": output[5]},
                {"type": "unparsed", "content": "a string"},
                {"type": "", "content": null},
            ])
        );
    }

    #[test]
    fn bad_bytes_in_raw_items_become_replacement_characters_and_are_counted() {
        let body = b"{\"object\":\"response\",\"output\":[{\"type\":\"web_search_call\",\
            \"q\":\"a\xff\xfe \\udc00\"},{\"type\":\"function_call\",\
            \"arguments\":\"{\\\"k\\\":\\\"\\\\ud800\\\"}\"}]}";
        let reduced = reduce_one_shot(&mut &body[..]).unwrap();
        assert_eq!(reduced.replacements, 4);
        assert_eq!(
            reduced.into_value()["message"]["content"],
            json!([
                {"type": "web_search_call",
                    "content": {"type": "web_search_call", "q": "a\u{fffd}\u{fffd} \u{fffd}"}},
                {"type": "tool_use", "tool_input": {"k": "\u{fffd}"}},
            ])
        );
    }

    fn sse(events: &[Value]) -> String {
        events
            .iter()
            .map(|data| {
                format!(
                    "event: {}\ndata: {data}\n\n",
                    data["type"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    fn stream_of(body: &str) -> Value {
        reduce_stream(&mut body.as_bytes()).unwrap().into_value()
    }

    fn created() -> Value {
        json!({"type": "response.created", "response": {"id": "resp_1", "object": "response",
            "created_at": 1781218506, "status": "in_progress", "model": "gpt-5", "output": []}})
    }

    fn item_done(item: Value) -> Value {
        json!({"type": "response.output_item.done", "item": item})
    }

    fn text_delta(text: &str) -> Value {
        json!({"type": "response.output_text.delta", "delta": text})
    }

    fn message(text: &str) -> Value {
        json!({"type": "message", "content": [{"type": "output_text", "text": text}]})
    }

    #[test]
    fn the_terminal_event_carries_the_response() {
        for terminal in [
            "response.completed",
            "response.incomplete",
            "response.failed",
        ] {
            let mut done = json!({"type": terminal, "response": response("completed",
                json!([message("full")]))});
            // The terminal response's `object` is not checked.
            done["response"]["object"] = json!("anything");
            let body = sse(&[
                created(),
                text_delta("fu"),
                item_done(message("full")),
                done,
            ]);
            let got = stream_of(&body);
            assert_eq!(
                got["message"]["content"],
                json!([{"type": "text", "text": "full"}])
            );
            assert_eq!(got["done"], true);
            assert_eq!(got["extra"]["object"], "anything");
        }
    }

    #[test]
    fn an_empty_terminal_output_takes_the_collected_items() {
        let completed = json!({"type": "response.completed",
            "response": response("completed", json!([]))});
        let body = sse(&[
            created(),
            item_done(json!({"type": "reasoning", "summary": []})),
            item_done(message("chatgpt-probe-ok")),
            completed,
        ]);
        assert_eq!(
            stream_of(&body)["message"]["content"],
            json!([{"type": "thinking"}, {"type": "text", "text": "chatgpt-probe-ok"}])
        );
    }

    #[test]
    fn the_first_terminal_event_ends_the_stream() {
        let first = json!({"type": "response.failed", "response": response("failed", json!([]))});
        let second = json!({"type": "response.completed",
            "response": response("completed", json!([message("late")]))});
        let got = stream_of(&sse(&[first, second, text_delta("x")]));
        assert_eq!(got["stop_reason"], "failed");
        assert_eq!(got["message"]["content"], json!([]));
    }

    #[test]
    fn a_terminal_event_without_response_is_a_partial() {
        let body = sse(&[
            created(),
            text_delta("so far"),
            json!({"type": "response.completed", "response": null}),
            item_done(message("never")),
        ]);
        assert_eq!(
            stream_of(&body),
            json!({
                "model": "gpt-5",
                "created_at": "2026-06-11T22:55:06Z",
                "message": {"role": "assistant", "content": [{"type": "text", "text": "so far"}]},
                "done": false,
                "extra": {"partial": true,
                    "reducer_error": "terminal event response.completed carried no response object"},
            })
        );
    }

    #[test]
    fn a_stream_without_terminal_event_is_a_partial_of_items_else_text() {
        let got = stream_of(&sse(&[
            created(),
            text_delta("loose"),
            item_done(message("item")),
        ]));
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "item"}])
        );
        assert_eq!(
            got["extra"],
            json!({"partial": true, "reducer_error": "stream ended before terminal response event"})
        );
        assert!(got.get("usage").is_none() && got.get("stop_reason").is_none());
        let got = stream_of(&sse(&[text_delta("a"), text_delta("b")]));
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "ab"}])
        );
        assert_eq!(got["model"], "");
        assert!(got.get("created_at").is_none());
        // Nothing at all is an empty partial, not a failure.
        assert_eq!(stream_of("")["message"]["content"], json!([]));
    }

    #[test]
    fn undecodable_events_and_the_event_field_are_ignored() {
        let body = format!(
            "event: response.completed\ndata: {}\n\ndata: not json\n\n{}",
            text_delta("kept"),
            "data: {\"type\":\"response.output_text.delta\",\"delta\":5}\n\n"
        );
        let got = stream_of(&body);
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "kept"}])
        );
        // A later response.created replaces the earlier one, even with null.
        let body = sse(&[
            created(),
            json!({"type": "response.created", "response": null}),
        ]);
        assert_eq!(stream_of(&body)["model"], "");
    }

    #[test]
    fn a_reader_error_is_a_partial_with_its_text() {
        let mut long = sse(&[created(), item_done(message("kept"))]).into_bytes();
        long.extend_from_slice(b"data: ");
        long.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
        let got = reduce_stream(&mut long.as_slice()).unwrap().into_value();
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "kept"}])
        );
        assert_eq!(
            got["extra"]["reducer_error"],
            "bufio.Scanner: token too long"
        );
        assert_eq!(got["model"], "gpt-5");
    }

    fn sniffed(content_type: &str, body: &str) -> Value {
        reduce(content_type, &mut body.as_bytes())
            .unwrap()
            .into_value()
    }

    #[test]
    fn a_body_without_a_usable_content_type_is_sniffed() {
        let stream = sse(&[text_delta("streamed")]);
        let oneshot = response("completed", json!([message("whole")])).to_string();
        for content_type in ["", "text/plain", "application/octet-stream"] {
            let got = sniffed(content_type, &format!(" \r\n\t{stream}"));
            assert_eq!(got["extra"]["partial"], true, "{content_type}");
            let data_first = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"d\"}\n\n";
            let got = sniffed(content_type, data_first);
            assert_eq!(got["message"]["content"][0]["text"], "d", "{content_type}");
            let got = sniffed(content_type, &oneshot);
            assert_eq!(
                got["message"]["content"][0]["text"], "whole",
                "{content_type}"
            );
        }
        // `data:` first, in a body shorter than the sniffed prefix.
        assert_eq!(sniffed("", "data: {}")["extra"]["partial"], true);
        // Past the first 16 bytes nothing is looked at.
        let late = format!("{}data: {{}}", " ".repeat(16));
        assert!(reduce("", &mut late.as_bytes()).is_err());
        // A named type is not sniffed.
        assert!(matches!(
            reduce("application/json", &mut stream.as_bytes()),
            Err(ReduceError::Parse { .. })
        ));
        assert_eq!(
            sniffed("text/event-stream", &oneshot)["extra"]["partial"],
            true
        );
    }

    /// Hands out `data`, then fails once, then has more.
    struct Hiccup {
        data: &'static [u8],
        failed: bool,
        more: &'static [u8],
    }

    impl Read for Hiccup {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.data.is_empty() {
                return self.data.read(buf);
            }
            if !self.failed {
                self.failed = true;
                return Err(io::Error::other("decoder failed"));
            }
            self.more.read(buf)
        }
    }

    #[test]
    fn a_read_error_while_sniffing_reaches_the_reducer_after_the_peeked_bytes() {
        let body = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"a\"}\n\n";
        let mut reader = BufReader::with_capacity(
            8,
            Hiccup {
                data: body.as_bytes(),
                failed: false,
                more: b"",
            },
        );
        let got = reduce("", &mut reader).unwrap().into_value();
        assert_eq!(
            got["message"]["content"],
            json!([{"type": "text", "text": "a"}])
        );
        assert_eq!(got["extra"]["reducer_error"], "decoder failed");
        // Peeked bytes come back first, then the error once, then the rest.
        let mut reader = BufReader::with_capacity(
            4,
            Hiccup {
                data: b"0123456789",
                failed: false,
                more: b"xyz",
            },
        );
        let mut sniffed = Sniffed::peek(&mut reader);
        let mut got = Vec::new();
        assert!(sniffed.read_to_end(&mut got).is_err());
        assert_eq!(got, b"0123456789");
        sniffed.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"0123456789xyz");
    }
}
