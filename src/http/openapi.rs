//! `GET /openapi`: the OpenAPI 3.1 document of every route, generated from the handlers'
//! `#[utoipa::path]` attributes and the response types' `ToSchema` derives, so it changes
//! with the code. `tests/http/openapi.rs` checks it against [`super::ROUTES`], the table the
//! App is registered from.
//!
//! Request bodies are decoded by hand (`wire`, with Go's leniencies), so their schemas are
//! written here ([`TurnPayloadDoc`] and its parts), as docs/wire.md describes them. The
//! error answers every route shares (401/403 of the credentials, 429, 500, 502, 503) are
//! added to each operation by [`CommonErrors`].

use std::sync::OnceLock;

use actix_web::HttpResponse;
use actix_web::http::header;
use serde_json::Value;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, HeaderBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{IntoParams, Modify, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use super::json::JSON;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "reel",
        description = "Ingest server for the conversations of LLM coding agents: capture \
            proxies post completed turns; every message is stored as a content-addressed \
            Merkle-DAG node, with one session row per harness session.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        super::ping,
        super::metrics,
        document,
        super::ingest::ingest,
        super::ingest::ingest_batch,
        super::nodes::list,
        super::conversation::get,
        super::sessions::list,
        super::sessions::get,
        super::sessions::turns,
        super::sessions::transcript,
        super::admin::list,
        super::admin::inspect,
        super::admin::stop,
        super::admin::session_raw,
        super::admin::raw_turn,
        super::console::page,
        super::console::script,
        super::console::style,
        super::console::recent,
        super::quarantine::list,
        super::quarantine::reprocess,
    ),
    components(schemas(ErrorBody)),
    modifiers(&CommonErrors),
    tags(
        (name = "health", description = "Liveness, metrics and this document"),
        (name = "ingest", description = "Turns in (docs/wire.md)"),
        (name = "read", description = "Nodes and sessions out, one org at a time"),
        (name = "admin", description = "Live actors and raw turns; the admin token, or a loopback listener without one"),
    ),
)]
pub struct ApiDoc;

/// The body of every error answer.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorBody {
    /// What went wrong, in the texts docs/wire.md lists.
    error: String,
    /// A 422 turn kept in the quarantine: its raw turn's id (docs/capture.md).
    raw_turn_id: Option<Uuid>,
}

/// `X-Tapes-Org-Id`, the org a read names without a key (the reference's header).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)]
pub struct OrgHeader {
    /// The org to read (UUID text); without it, the nil-UUID "no org" sentinel. With a key,
    /// only the key's org may be named.
    #[param(rename = "X-Tapes-Org-Id", format = Uuid)]
    x_tapes_org_id: Option<String>,
}

/// The document, rendered once.
fn rendered() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| r#"{"openapi":"3.1.0"}"#.to_owned())
    })
}

/// This document: the OpenAPI 3.1 description of every route.
#[utoipa::path(get, path = "/openapi", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub(crate) async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, JSON))
        .body(rendered())
}

/// Adds the answers every route shares, and the credentials, to each operation.
struct CommonErrors;

fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<utoipa::openapi::Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        JSON,
        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            "ErrorBody",
        )))),
    );
    for (name, text) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(String::schema())
                .description(Some(*text))
                .build(),
        );
    }
    RefOr::T(response.build())
}

fn add(operation: &mut Operation, status: &str, response: &RefOr<utoipa::openapi::Response>) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| response.clone());
}

impl Modify for CommonErrors {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
        let retry = [("Retry-After", "Seconds to wait before retrying")];
        let challenge = [("WWW-Authenticate", "`Bearer`")];
        let internal = error_response("Internal error (details are logged, not sent)", &[]);
        let unavailable = error_response(
            "The database is unreachable or the server is stopping",
            &retry,
        );
        let unauthorized = error_response(
            "Missing, unknown, revoked or expired credentials",
            &challenge,
        );
        let forbidden = error_response(
            "Another org than the key's is named, or admin is not open on this listener",
            &[],
        );
        let downstream = error_response("A database read failed", &[]);
        for (path, item) in doc.paths.paths.iter_mut() {
            let credentials = path.starts_with("/v1/") || path.starts_with("/admin/");
            let reads =
                path.starts_with("/v1/") && path != "/v1/ingest" && path != "/v1/ingest/batch"
                    || path.starts_with("/admin/");
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                add(operation, "500", &internal);
                if credentials {
                    add(operation, "401", &unauthorized);
                    add(operation, "403", &forbidden);
                    add(operation, "503", &unavailable);
                    operation.security = Some(vec![
                        utoipa::openapi::security::SecurityRequirement::default(),
                        utoipa::openapi::security::SecurityRequirement::new(
                            "bearer",
                            Vec::<String>::new(),
                        ),
                        utoipa::openapi::security::SecurityRequirement::new(
                            "api_key",
                            Vec::<String>::new(),
                        ),
                    ]);
                }
                if reads {
                    add(operation, "502", &downstream);
                }
            }
        }
    }
}

/// The body of `POST /v1/ingest` and each element of a batch (docs/wire.md#turn-payload).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TurnPayloadDoc {
    /// `anthropic`, `openai` or `ollama`; anything else is a 422.
    #[schema(value_type = ProviderDoc, inline)]
    provider: String,
    /// Copied into every node's bucket; not hashed.
    agent_name: Option<String>,
    /// The provider's own request body, parsed by that provider's parser.
    request: Option<Value>,
    /// The reduced, provider-neutral response; absent with `raw_response`, which the
    /// server reduces (docs/capture.md).
    response: Option<ReducedResponseDoc>,
    session: Option<SessionEnvelopeDoc>,
    /// The upstream response body as it arrived, in standard base64.
    raw_response: Option<String>,
    /// Its Content-Encoding (`""`, `identity`, `gzip`, `zstd`, or a list).
    raw_response_encoding: Option<String>,
    /// The client had the bytes and chose not to send them.
    raw_response_withheld: Option<bool>,
    /// The capture adapter's metadata (docs/capture.md).
    #[schema(value_type = Object)]
    meta: Option<Value>,
}

/// The providers whose requests reel parses.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum ProviderDoc {
    Anthropic,
    Openai,
    Ollama,
}

/// The reduced response (docs/wire.md#reduced-response).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ReducedResponseDoc {
    model: Option<String>,
    message: Option<MessageDoc>,
    done: Option<bool>,
    stop_reason: Option<String>,
    usage: Option<UsageDoc>,
    /// RFC 3339.
    created_at: Option<String>,
    #[schema(value_type = Object)]
    extra: Option<Value>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct MessageDoc {
    role: String,
    /// Content blocks (`type`, `text`, `tool_use_id`, `tool_input`, …).
    #[schema(value_type = Vec<Object>)]
    content: Option<Vec<Value>>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UsageDoc {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    total_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
    total_duration_ns: Option<i64>,
    prompt_duration_ns: Option<i64>,
}

/// The session envelope (docs/wire.md#session-envelope).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SessionEnvelopeDoc {
    /// UUID text; `""` is the "no org" sentinel.
    org_id: Option<String>,
    auth_subject: Option<String>,
    harness_id: Option<String>,
    harness_session_id: Option<String>,
    harness_version: Option<String>,
    cwd: Option<String>,
    name: Option<String>,
    parent_harness_session_id: Option<String>,
    parent_harness_id: Option<String>,
    #[schema(value_type = Object)]
    harness_metadata: Option<Value>,
}

/// The body of `POST /v1/ingest/batch`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchDoc {
    turns: Vec<TurnPayloadDoc>,
}

/// A raw turn as stored, without its bodies (`reel raw list`, docs/capture.md).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RawTurnSummaryDoc {
    id: Uuid,
    org_id: Uuid,
    request_id: Option<String>,
    session_id: Option<Uuid>,
    harness_id: Option<String>,
    harness_session_id: Option<String>,
    provider: String,
    agent_name: String,
    received_at: chrono::DateTime<chrono::Utc>,
    /// `accepted` or `rejected` (quarantined).
    outcome: String,
    status: u16,
    reason: Option<String>,
    head_hash: Option<String>,
    request_size: u64,
    response_reduced: bool,
    raw_response_encoding: String,
    raw_response_dropped: bool,
    truncated: bool,
    stored_bytes: u64,
}

/// The body a raw turn was posted in, rebuilt from storage.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RawPayloadDoc {
    provider: String,
    agent_name: String,
    /// The request as posted; base64 text when `request_base64`.
    request: Option<Value>,
    request_base64: Option<bool>,
    response: Option<Value>,
    raw_response: Option<String>,
    raw_response_encoding: Option<String>,
    raw_response_withheld: Option<bool>,
    /// `null` when the turn was posted with `"meta": null`.
    #[schema(value_type = Option<Object>, required = true)]
    meta: Value,
    /// Absent, or `null`, when the turn came without an envelope.
    #[schema(value_type = Option<Object>)]
    session: Option<Value>,
}
