//! The reducers: a provider's response bytes, as they came off the wire (decoded from their
//! content-encoding), turned into a reduced response in the reference's JSON shape
//! (docs/capture.md §5–§8), for a raw-only turn.
//!
//! A reducer reads a [`BufRead`], normally a [`super::encoding::Decoding`]: a stream line by
//! line ([`super::sse`]), a one-shot body whole (the caller's reader bounds it). Whatever a
//! stream yields, even nothing, is a reduction. A one-shot body that does not decode, a
//! content-coding that does not, and a provider without a reducer are a [`ReduceError`];
//! the turn then goes on without a response.

mod anthropic;
mod openai;
mod raw;

use std::io::{self, BufRead};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::encoding::{EncodingError, error_of};
use super::stamps::{CreatedAtSource, DurationSource, SkippedStamp, Stamps};
use crate::gojson::format_rfc3339_nano;
use crate::llm::Usage;

/// A successful reduction, stamped (§8).
#[derive(Debug, Clone, PartialEq)]
pub struct Reduction {
    /// The reduced response, in the reference's JSON shape (what `expect.reduced_response`
    /// holds). It may have no content; the caller answers that later (422).
    pub response: Value,
    pub duration_source: DurationSource,
    pub created_at_source: CreatedAtSource,
    /// U+FFFD put in place of bytes that were not UTF-8 and of lone surrogate escapes in the
    /// body (a stream's event data) and in the JSON texts inside it (§13.5), for the
    /// replacement metric.
    pub replacements: usize,
    /// Stamps that were present but did not parse, for the log.
    pub skipped_stamps: Vec<SkippedStamp>,
}

/// Why there is no reduction (§7).
///
/// The body's reader may fail. When its error carries an [`EncodingError`] (a
/// [`super::encoding::Decoding`] that could not undo the content-coding), the reduction
/// fails whatever was read before, as the reference decodes the whole body before it
/// reduces. Any other reader error ends a stream, which still gives a reduction
/// (`extra.reducer_error`), and fails a one-shot body ([`ReduceError::Read`]).
#[derive(Debug, thiserror::Error)]
pub enum ReduceError {
    #[error("no reducer for provider {0:?}")]
    NoReducer(String),
    #[error(transparent)]
    Decode(EncodingError),
    #[error("{reducer}: read oneshot body: {source}")]
    Read {
        reducer: &'static str,
        source: io::Error,
    },
    #[error("{reducer}: parse oneshot body: {message}")]
    Parse {
        reducer: &'static str,
        message: String,
    },
    #[error("openai responses reducer: unexpected object {0:?}")]
    NotAResponse(String),
}

/// Reduces `body`, the plaintext of a `provider` response whose Content-Type was
/// `content_type`, and lays the stamps of `meta` onto it. `now` is the reducer's clock, the
/// `created_at` of an Anthropic reduction that no stamp dates.
pub fn reduce(
    provider: &str,
    content_type: &str,
    body: &mut dyn BufRead,
    stamps: &Stamps<'_>,
    now: DateTime<Utc>,
) -> Result<Reduction, ReduceError> {
    let mut reduced = match provider {
        "anthropic" => anthropic::reduce(content_type, body, now)?,
        "openai" => openai::reduce(content_type, body)?,
        _ => return Err(ReduceError::NoReducer(provider.to_owned())),
    };
    let duration_source = match stamps.duration_ns() {
        Some(ns) => {
            reduced
                .usage
                .get_or_insert_with(Usage::default)
                .total_duration_ns = ns;
            DurationSource::ElapsedSeconds
        }
        None => DurationSource::Fallback,
    };
    let created = stamps.created_at();
    if let Some(at) = created.at {
        reduced.created_at = Some(at);
    }
    Ok(Reduction {
        replacements: reduced.replacements,
        response: reduced.into_value(),
        duration_source,
        created_at_source: created.source,
        skipped_stamps: created.skipped,
    })
}

/// A one-shot body, whole (the caller's reader bounds it).
fn read_body(reducer: &'static str, body: &mut dyn BufRead) -> Result<Vec<u8>, ReduceError> {
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes).map_err(|source| {
        decode_failure(&source).unwrap_or(ReduceError::Read { reducer, source })
    })?;
    Ok(bytes)
}

/// The failed reduction a reader error means, when it is the content-coding's.
fn decode_failure(error: &io::Error) -> Option<ReduceError> {
    error_of(error).map(|e| ReduceError::Decode(e.clone()))
}

/// Whether a Content-Type names a stream. Go lower-cases it first; no character outside
/// ASCII lower-cases into these needles, so ASCII lower-casing finds the same.
fn is_stream(content_type: &str) -> bool {
    let lower = content_type.to_ascii_lowercase();
    lower.contains("event-stream") || lower.contains("ndjson")
}

/// A reduction as a reducer builds it: the reference's `ChatResponse`.
#[derive(Debug, Default)]
struct Reduced {
    model: String,
    created_at: Option<DateTime<Utc>>,
    role: String,
    content: Vec<Block>,
    done: bool,
    stop_reason: String,
    usage: Option<Usage>,
    extra: Map<String, Value>,
    /// The one-shot body itself (Anthropic only).
    raw_response: Option<Value>,
    /// See [`Reduction::replacements`].
    replacements: usize,
}

/// One block of a reduced response: the reference's `ContentBlock` as the reducers fill it.
#[derive(Debug, Default)]
struct Block {
    kind: String,
    text: String,
    tool_use_id: String,
    tool_name: String,
    tool_input: Option<Map<String, Value>>,
    tool_result_id: String,
    thinking: String,
    thinking_signature: String,
    /// A value kept raw (`json.RawMessage`): present, even as `null`, when the source had it.
    content: Option<Value>,
}

impl Block {
    fn new(kind: impl Into<String>) -> Self {
        Block {
            kind: kind.into(),
            ..Block::default()
        }
    }

    fn text(kind: impl Into<String>, text: impl Into<String>) -> Self {
        Block {
            text: text.into(),
            ..Block::new(kind)
        }
    }

    fn raw(kind: impl Into<String>, content: Value) -> Self {
        Block {
            content: Some(content),
            ..Block::new(kind)
        }
    }

    /// The block as Go writes it: `type` always, every other member only when not empty
    /// (`omitempty`).
    fn into_value(self) -> Value {
        let mut out = Map::new();
        out.insert("type".into(), self.kind.into());
        put_str(&mut out, "text", self.text);
        put_str(&mut out, "tool_use_id", self.tool_use_id);
        put_str(&mut out, "tool_name", self.tool_name);
        if let Some(input) = self.tool_input.filter(|m| !m.is_empty()) {
            out.insert("tool_input".into(), Value::Object(input));
        }
        put_str(&mut out, "tool_result_id", self.tool_result_id);
        put_str(&mut out, "thinking", self.thinking);
        put_str(&mut out, "thinking_signature", self.thinking_signature);
        if let Some(content) = self.content {
            out.insert("content".into(), content);
        }
        Value::Object(out)
    }
}

impl Reduced {
    /// The response as Go writes its `ChatResponse`: `model`, `message` and `done` always;
    /// `created_at` unless zero; `stop_reason`, `extra` and `raw_response` unless empty;
    /// `usage` whenever there is one, even with every count zero (`{}`).
    fn into_value(self) -> Value {
        let mut out = Map::new();
        out.insert("model".into(), self.model.into());
        if let Some(at) = self.created_at {
            out.insert("created_at".into(), format_rfc3339_nano(&at).into());
        }
        let content = self.content.into_iter().map(Block::into_value).collect();
        let mut message = Map::new();
        message.insert("role".into(), self.role.into());
        message.insert("content".into(), Value::Array(content));
        out.insert("message".into(), Value::Object(message));
        out.insert("done".into(), self.done.into());
        put_str(&mut out, "stop_reason", self.stop_reason);
        if let Some(usage) = self.usage {
            out.insert("usage".into(), usage_value(&usage));
        }
        if !self.extra.is_empty() {
            out.insert("extra".into(), Value::Object(self.extra));
        }
        if let Some(raw) = self.raw_response {
            out.insert("raw_response".into(), raw);
        }
        Value::Object(out)
    }
}

/// `usage` with its zero counts left out, as Go's `omitempty` leaves them.
fn usage_value(usage: &Usage) -> Value {
    let mut out = Map::new();
    for (name, count) in [
        ("prompt_tokens", usage.prompt_tokens),
        ("completion_tokens", usage.completion_tokens),
        ("total_tokens", usage.total_tokens),
        (
            "cache_creation_input_tokens",
            usage.cache_creation_input_tokens,
        ),
        ("cache_read_input_tokens", usage.cache_read_input_tokens),
        ("total_duration_ns", usage.total_duration_ns),
        ("prompt_duration_ns", usage.prompt_duration_ns),
    ] {
        if count != 0 {
            out.insert(name.into(), count.into());
        }
    }
    Value::Object(out)
}

fn put_str(out: &mut Map<String, Value>, name: &str, value: String) {
    if !value.is_empty() {
        out.insert(name.into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: &str = "2030-01-02T03:04:05.5Z";

    fn now() -> DateTime<Utc> {
        NOW.parse().unwrap()
    }

    fn run(provider: &str, body: &str, stamps: Stamps<'_>) -> Result<Reduction, ReduceError> {
        reduce(
            provider,
            "text/event-stream",
            &mut body.as_bytes(),
            &stamps,
            now(),
        )
    }

    const ANTHROPIC: &str = "event: message_start\n\
        data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"role\":\"assistant\",\"usage\":{\"input_tokens\":3}}}\n\n\
        event: content_block_delta\n\
        data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n\
        event: message_stop\n\
        data: {\"type\":\"message_stop\"}\n\n";

    #[test]
    fn only_anthropic_and_openai_have_reducers() {
        for provider in ["ollama", "", "Anthropic", "bedrock"] {
            match run(provider, ANTHROPIC, Stamps::default()) {
                Err(ReduceError::NoReducer(p)) => assert_eq!(p, provider),
                other => panic!("{provider}: {other:?}"),
            }
        }
    }

    #[test]
    fn without_stamps_anthropic_is_dated_by_the_clock_and_has_no_duration() {
        let r = run("anthropic", ANTHROPIC, Stamps::default()).unwrap();
        assert_eq!(r.response["created_at"], NOW);
        assert_eq!(
            r.response["usage"],
            json!({"prompt_tokens": 3, "total_tokens": 3})
        );
        assert_eq!(r.duration_source, DurationSource::Fallback);
        assert_eq!(r.created_at_source, CreatedAtSource::Fallback);
    }

    #[test]
    fn stamps_set_the_duration_and_the_date() {
        let stamps = Stamps {
            elapsed_seconds: Some(0.75),
            ts_request: "2026-01-01T00:00:00Z",
            captured_at: "",
        };
        let r = run("anthropic", ANTHROPIC, stamps).unwrap();
        assert_eq!(r.response["created_at"], "2026-01-01T00:00:00.75Z");
        assert_eq!(r.response["usage"]["total_duration_ns"], 750_000_000);
        assert_eq!(r.duration_source, DurationSource::ElapsedSeconds);
        assert_eq!(r.created_at_source, CreatedAtSource::TsRequest);
    }

    #[test]
    fn a_duration_creates_usage_when_the_reduction_had_none() {
        // A partial Responses stream has no usage.
        let body = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n";
        let stamps = Stamps {
            elapsed_seconds: Some(1.25),
            ..Stamps::default()
        };
        let r = run("openai", body, stamps).unwrap();
        assert_eq!(
            r.response["usage"],
            json!({"total_duration_ns": 1_250_000_000})
        );
        // Without a stamp the Responses reduction stays undated.
        assert!(r.response.get("created_at").is_none());
        let r = run("openai", body, Stamps::default()).unwrap();
        assert!(r.response.get("usage").is_none());
    }

    #[test]
    fn unparseable_stamps_are_reported_not_fatal() {
        let stamps = Stamps {
            elapsed_seconds: None,
            ts_request: "",
            captured_at: "yesterday",
        };
        let r = run("anthropic", ANTHROPIC, stamps).unwrap();
        assert_eq!(r.response["created_at"], NOW);
        assert_eq!(r.skipped_stamps.len(), 1);
        assert_eq!(r.skipped_stamps[0].field, "captured_at");
    }

    #[test]
    fn go_omits_empty_members_but_not_done_model_or_content() {
        let block = Block::new("tool_use").into_value();
        assert_eq!(block, json!({"type": "tool_use"}));
        let with_empty_input = Block {
            tool_input: Some(Map::new()),
            ..Block::new("tool_use")
        };
        assert_eq!(with_empty_input.into_value(), json!({"type": "tool_use"}));
        // A raw `null` is kept: the raw bytes were there.
        assert_eq!(
            Block::raw("x", Value::Null).into_value(),
            json!({"type": "x", "content": null})
        );
        let empty = Reduced {
            role: "assistant".into(),
            usage: Some(Usage::default()),
            ..Reduced::default()
        };
        assert_eq!(
            empty.into_value(),
            json!({"model": "", "message": {"role": "assistant", "content": []}, "done": false, "usage": {}})
        );
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn through_gzip(
        provider: &str,
        content_type: &str,
        gzipped: &[u8],
    ) -> Result<Reduction, ReduceError> {
        let mut allowance = crate::capture::encoding::Unlimited;
        let mut plaintext = crate::capture::encoding::open("gzip", gzipped, &mut allowance)
            .expect("gzip is supported");
        reduce(
            provider,
            content_type,
            &mut plaintext,
            &Stamps::default(),
            now(),
        )
    }

    #[test]
    fn a_content_coding_that_fails_fails_the_reduction_even_after_whole_events() {
        let responses = "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n";
        for (provider, body) in [("anthropic", ANTHROPIC), ("openai", responses)] {
            let mut gzipped = gzip(body.as_bytes());
            // A wrong CRC-32: every event decodes, the trailer does not.
            let crc = gzipped.len() - 8;
            gzipped[crc] ^= 0xff;
            for content_type in ["text/event-stream", "application/json"] {
                match through_gzip(provider, content_type, &gzipped) {
                    Err(ReduceError::Decode(e)) => assert_eq!(e.class(), "undecodable"),
                    other => panic!("{provider} {content_type}: {other:?}"),
                }
            }
        }
        // The plain bytes claimed as gzip.
        match through_gzip("anthropic", "text/event-stream", ANTHROPIC.as_bytes()) {
            Err(ReduceError::Decode(_)) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_salvaged_cut_is_the_end_of_the_stream() {
        let gzipped = gzip(ANTHROPIC.as_bytes());
        // Without its trailer the deflate data is whole: everything but the check.
        let cut = &gzipped[..gzipped.len() - 8];
        let r = through_gzip("anthropic", "text/event-stream", cut).unwrap();
        assert_eq!(r.response["done"], true);
        assert_eq!(r.response["message"]["content"][0]["text"], "hi");
    }

    #[test]
    fn stream_content_types() {
        assert!(is_stream("text/event-stream; charset=utf-8"));
        assert!(is_stream("Text/Event-Stream"));
        assert!(is_stream("application/x-ndjson"));
        assert!(!is_stream("application/json"));
        assert!(!is_stream(""));
    }
}
