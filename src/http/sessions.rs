//! The sessions read API (docs/wire.md#reading-sessions): `GET /v1/sessions`,
//! `GET /v1/sessions/{id}`, `…/turns` and `…/transcript`.
//!
//! Every read is the caller's org's (`auth::read_org`): another org's session is a 404 like
//! one that does not exist. Lists page by opaque cursors over keyset positions
//! (`store::list_sessions`), so a page costs its own rows and pages stay stable while turns
//! arrive.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, SecondsFormat, Utc};
use entity::sessions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::read_org;
use super::error::ApiError;
use super::json::respond;
use super::openapi::{ErrorBody, OrgHeader};
use super::params::{decode_cursor, encode_cursor, page_limit, parse_session_id};
use crate::llm::Usage;
use crate::store::{
    self, Direction, SessionPosition, SessionQuery, SessionSort, SortKey, TurnHead, TurnPosition,
};

/// One session as every sessions route shows it: the row's fields and its counters, named
/// as the reference's `/v1/sessions` names them where it has them.
#[derive(Serialize, ToSchema)]
pub struct SessionItem {
    pub id: Uuid,
    pub harness_id: String,
    pub harness_session_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harness_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<Uuid>,
    pub started_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub harness_metadata: Value,
    pub auth_subject: String,
    pub turn_count: i32,
    pub total_input_tokens: i64,
    pub total_output_tokens: i64,
    pub total_tokens: i64,
    pub total_cost_usd: f64,
}

impl From<sessions::Model> for SessionItem {
    fn from(row: sessions::Model) -> Self {
        SessionItem {
            id: row.id,
            harness_id: row.harness_id,
            harness_session_id: row.harness_session_id,
            name: row.name,
            cwd: row.cwd,
            harness_version: row.harness_version,
            parent_session_id: row.parent_session_id,
            started_at: row.started_at,
            last_seen_at: row.last_seen_at,
            ended_at: row.ended_at,
            harness_metadata: row.harness_metadata,
            auth_subject: row.auth_subject,
            turn_count: row.turn_count,
            total_input_tokens: row.total_input_tokens,
            total_output_tokens: row.total_output_tokens,
            total_tokens: row.total_input_tokens + row.total_output_tokens,
            total_cost_usd: f64::try_from(row.total_cost_usd).unwrap_or(0.0),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    pub items: Vec<SessionItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The parameters of `GET /v1/sessions`, kept as text so that each bad one gets its own
/// error.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Sessions per page.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// The previous page's `next_cursor`, with the same `sort` and `direction`.
    cursor: Option<String>,
    #[param(value_type = Option<SortParam>, inline)]
    sort: Option<String>,
    #[param(value_type = Option<DirectionParam>, inline)]
    direction: Option<String>,
    /// With `harness_session_id`: the one session with this natural key.
    harness_id: Option<String>,
    /// With `harness_id`: the one session with this natural key.
    harness_session_id: Option<String>,
    /// Only the sessions captured for this subject.
    auth_subject: Option<String>,
    /// Only sessions active at or after this time (`last_seen_at >= since`).
    #[param(value_type = Option<DateTime<Utc>>)]
    since: Option<String>,
    /// Only sessions last active before this time (`last_seen_at < until`).
    #[param(value_type = Option<DateTime<Utc>>)]
    until: Option<String>,
}

/// What `GET /v1/sessions` sorts by (`store::SessionSort`).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum SortParam {
    LastSeenAt,
    StartedAt,
    TurnCount,
    TotalCostUsd,
    TotalTokens,
}

#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum DirectionParam {
    Desc,
    Asc,
}

/// A sessions cursor: the position and the order it was issued for.
#[derive(Serialize, Deserialize)]
struct SessionCursor {
    sort: String,
    dir: String,
    /// The sort key: RFC 3339 text for times, decimal text for costs, an integer for counts.
    key: Value,
    id: Uuid,
}

impl SessionCursor {
    fn new(sort: SessionSort, direction: Direction, at: &SessionPosition) -> Self {
        let key = match &at.key {
            SortKey::Time(t) => Value::from(t.to_rfc3339_opts(SecondsFormat::Nanos, true)),
            SortKey::Int(n) => Value::from(*n),
            SortKey::Cost(usd) => Value::from(usd.to_string()),
        };
        SessionCursor {
            sort: sort.name().to_owned(),
            dir: direction.name().to_owned(),
            key,
            id: at.id,
        }
    }

    /// The position, when the cursor was issued for this order.
    fn position(
        self,
        sort: SessionSort,
        direction: Direction,
    ) -> Result<SessionPosition, ApiError> {
        if self.sort != sort.name() || self.dir != direction.name() {
            return Err(ApiError::BadRequest(format!(
                "invalid cursor: issued for sort={} direction={}, not sort={} direction={}",
                self.sort,
                self.dir,
                sort.name(),
                direction.name()
            )));
        }
        let key = match (&self.key, sort) {
            (Value::String(t), SessionSort::LastSeenAt | SessionSort::StartedAt) => {
                DateTime::parse_from_rfc3339(t)
                    .ok()
                    .map(|t| SortKey::Time(t.with_timezone(&Utc)))
            }
            (Value::Number(n), SessionSort::TurnCount | SessionSort::TotalTokens) => {
                n.as_i64().map(SortKey::Int)
            }
            (Value::String(d), SessionSort::TotalCostUsd) => SortKey::cost(d),
            _ => None,
        };
        let key =
            key.ok_or_else(|| ApiError::BadRequest("invalid cursor: malformed position".into()))?;
        Ok(SessionPosition { key, id: self.id })
    }
}

fn parse_time(name: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| {
        DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::BadRequest(format!("invalid {name}: must be an RFC 3339 timestamp"))
            })
    })
    .transpose()
}

fn query_params<T: for<'de> Deserialize<'de>>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))
}

/// One org's sessions, a page at a time, or the one with a natural key
/// (docs/wire.md#reading-sessions).
#[utoipa::path(get, path = "/v1/sessions", tag = "read",
    params(ListParams, OrgHeader),
    responses(
        (status = 200, description = "A page of sessions", body = SessionList),
        (status = 400, description = "A bad parameter, with the reason", body = ErrorBody),
    ))]
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let org_id = read_org(&req, &state).await?;
    let params: ListParams = query_params(&req)?;
    let limit = page_limit(params.limit.as_deref())?;
    let since = parse_time("since", params.since.as_deref())?;
    let until = parse_time("until", params.until.as_deref())?;
    let db = state.store.connection();
    let retry = state.retry_after_secs;

    if params.harness_id.is_some() || params.harness_session_id.is_some() {
        return by_harness(&state, org_id, &params).await;
    }
    let sort = match params.sort.as_deref() {
        None => SessionSort::LastSeenAt,
        Some(name) => SessionSort::parse(name).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "invalid sort: must be one of {}",
                SessionSort::ALL.map(SessionSort::name).join(", ")
            ))
        })?,
    };
    let direction = match params.direction.as_deref() {
        None => Direction::Desc,
        Some(name) => Direction::parse(name)
            .ok_or_else(|| ApiError::BadRequest("invalid direction: must be asc or desc".into()))?,
    };
    let after = params
        .cursor
        .as_deref()
        .map(|raw| decode_cursor::<SessionCursor>(raw)?.position(sort, direction))
        .transpose()?;
    let page = store::list_sessions(
        db,
        &SessionQuery {
            org_id,
            sort,
            direction,
            after,
            auth_subject: params.auth_subject.as_deref(),
            since,
            until,
            limit,
        },
    )
    .await
    .map_err(|e| ApiError::from_store(&e, retry))?;
    Ok(respond(
        StatusCode::OK,
        &SessionList {
            items: page.sessions.into_iter().map(SessionItem::from).collect(),
            next_cursor: page
                .next
                .map(|at| encode_cursor(&SessionCursor::new(sort, direction, &at))),
        },
    ))
}

/// The natural-key lookup: both ids, alone or with `auth_subject`; nothing that orders or
/// pages, since at most one session matches.
async fn by_harness(
    state: &AppState,
    org_id: Uuid,
    params: &ListParams,
) -> Result<HttpResponse, ApiError> {
    let (Some(harness_id), Some(harness_session_id)) =
        (&params.harness_id, &params.harness_session_id)
    else {
        return Err(ApiError::BadRequest(
            "harness_id and harness_session_id must be given together".into(),
        ));
    };
    let paging: Vec<&str> = [
        ("cursor", &params.cursor),
        ("sort", &params.sort),
        ("direction", &params.direction),
        ("since", &params.since),
        ("until", &params.until),
    ]
    .into_iter()
    .filter(|(_, value)| value.is_some())
    .map(|(name, _)| name)
    .collect();
    if !paging.is_empty() {
        return Err(ApiError::BadRequest(format!(
            "{} cannot be combined with harness_id and harness_session_id",
            paging.join(", ")
        )));
    }
    let row = store::session_by_harness(
        state.store.connection(),
        org_id,
        harness_id,
        harness_session_id,
    )
    .await
    .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))?;
    let items = row
        .filter(|s| {
            params
                .auth_subject
                .as_deref()
                .is_none_or(|subject| s.auth_subject == subject)
        })
        .map(SessionItem::from)
        .into_iter()
        .collect();
    Ok(respond(
        StatusCode::OK,
        &SessionList {
            items,
            next_cursor: None,
        },
    ))
}

/// The org's session `raw`, or 404.
async fn found_session(
    state: &AppState,
    org_id: Uuid,
    raw: &str,
) -> Result<sessions::Model, ApiError> {
    let id = parse_session_id(raw)?;
    store::session(state.store.connection(), org_id, id)
        .await
        .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))?
        .ok_or_else(|| no_session(id))
}

fn no_session(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("no session {id}"))
}

#[derive(Serialize, ToSchema)]
pub struct SessionDetail {
    pub session: SessionItem,
    /// The fork parent, when the session has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<SessionItem>,
    /// Its fork children, oldest first, at most `store::MAX_CHILDREN`.
    pub children: Vec<SessionItem>,
}

/// One session, with its fork parent and children.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "read",
    params(("id" = Uuid, Path, description = "The session id"), OrgHeader),
    responses(
        (status = 200, description = "The session", body = SessionDetail),
        (status = 400, description = "Not a session id", body = ErrorBody),
        (status = 404, description = "The org holds no such session", body = ErrorBody),
    ))]
pub async fn get(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org_id = read_org(&req, &state).await?;
    let row = found_session(&state, org_id, &path).await?;
    let db = state.store.connection();
    let retry = state.retry_after_secs;
    let parent = match row.parent_session_id {
        Some(parent) => store::session(db, org_id, parent)
            .await
            .map_err(|e| ApiError::from_store(&e, retry))?,
        None => None,
    };
    let children = store::session_children(db, org_id, row.id)
        .await
        .map_err(|e| ApiError::from_store(&e, retry))?;
    Ok(respond(
        StatusCode::OK,
        &SessionDetail {
            session: row.into(),
            parent: parent.map(SessionItem::from),
            children: children.into_iter().map(SessionItem::from).collect(),
        },
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// Turns per page.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 200, default = 50)]
    limit: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct TurnCursor {
    at: DateTime<Utc>,
    hash: String,
}

/// One turn: its head node (the response), what it used and cost.
#[derive(Serialize, ToSchema)]
pub struct TurnItem {
    pub hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_hash: Option<String>,
    pub model: String,
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cache_creation_input_tokens: i64,
    pub cache_read_input_tokens: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_duration_ns: Option<i64>,
    /// Priced by the server's current price table, as ingest priced it.
    pub cost_usd: f64,
    pub created_at: DateTime<Utc>,
}

impl TurnItem {
    fn new(head: TurnHead, state: &AppState) -> Self {
        let tokens = |n: Option<i32>| i64::from(n.unwrap_or(0));
        let usage = Usage {
            prompt_tokens: tokens(head.prompt_tokens),
            completion_tokens: tokens(head.completion_tokens),
            total_tokens: tokens(head.total_tokens),
            cache_creation_input_tokens: tokens(head.cache_creation_input_tokens),
            cache_read_input_tokens: tokens(head.cache_read_input_tokens),
            total_duration_ns: head.total_duration_ns.unwrap_or(0),
            prompt_duration_ns: 0,
        };
        let model = head.model.unwrap_or_default();
        let provider = head.provider.unwrap_or_default();
        let cost_usd = state.prices.cost(&provider, &model, Some(&usage)).usd();
        TurnItem {
            hash: head.hash,
            parent_hash: head.parent_hash,
            model,
            provider,
            agent_name: head.agent_name.filter(|a| !a.is_empty()),
            stop_reason: head.stop_reason.filter(|s| !s.is_empty()),
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.total_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            total_duration_ns: head.total_duration_ns,
            cost_usd,
            created_at: head.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TurnList {
    pub items: Vec<TurnItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// A session's turns in the order they were stored.
#[utoipa::path(get, path = "/v1/sessions/{id}/turns", tag = "read",
    params(("id" = Uuid, Path, description = "The session id"), PageParams, OrgHeader),
    responses(
        (status = 200, description = "A page of turns", body = TurnList),
        (status = 400, description = "A bad id, `limit` or `cursor`", body = ErrorBody),
        (status = 404, description = "The org holds no such session", body = ErrorBody),
    ))]
pub async fn turns(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org_id = read_org(&req, &state).await?;
    let params: PageParams = query_params(&req)?;
    let limit = page_limit(params.limit.as_deref())?;
    let after = params
        .cursor
        .as_deref()
        .map(decode_cursor::<TurnCursor>)
        .transpose()?
        .map(|c| TurnPosition {
            created_at: c.at,
            hash: c.hash,
        });
    let row = found_session(&state, org_id, &path).await?;
    let page = store::turn_heads(
        state.store.connection(),
        org_id,
        row.id,
        after.as_ref(),
        limit,
    )
    .await
    .map_err(|e| ApiError::from_store(&e, state.retry_after_secs))?;
    Ok(respond(
        StatusCode::OK,
        &TurnList {
            items: page
                .turns
                .into_iter()
                .map(|head| TurnItem::new(head, &state))
                .collect(),
            next_cursor: page.next.map(|at| {
                encode_cursor(&TurnCursor {
                    at: at.created_at,
                    hash: at.hash,
                })
            }),
        },
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct TranscriptParams {
    /// End at this node of the session instead of its latest turn head.
    #[param(pattern = "^[0-9a-f]{64}$")]
    head: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TranscriptMessage)]
pub struct Message {
    pub hash: String,
    pub role: String,
    /// The stored content blocks.
    #[schema(value_type = Vec<Object>)]
    pub content: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Transcript {
    pub session_id: Uuid,
    /// The node the transcript ends at; absent when the session stored no turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    pub messages: Vec<Message>,
}

fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A session's conversation from its root to its latest turn head (or `head`), message by
/// message.
#[utoipa::path(get, path = "/v1/sessions/{id}/transcript", tag = "read",
    params(("id" = Uuid, Path, description = "The session id"), TranscriptParams, OrgHeader),
    responses(
        (status = 200, description = "The transcript", body = Transcript),
        (status = 400, description = "A bad id or `head`", body = ErrorBody),
        (status = 404, description = "The org holds no such session, or the session no such node", body = ErrorBody),
    ))]
pub async fn transcript(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let org_id = read_org(&req, &state).await?;
    let params: TranscriptParams = query_params(&req)?;
    if let Some(head) = &params.head
        && !is_hash(head)
    {
        return Err(ApiError::BadRequest(
            "invalid head: must be a node hash (64 lowercase hex characters)".into(),
        ));
    }
    let row = found_session(&state, org_id, &path).await?;
    let db = state.store.connection();
    let retry = state.retry_after_secs;
    let head = match params.head {
        Some(head) => {
            let held = store::node_in_session(db, org_id, row.id, &head)
                .await
                .map_err(|e| ApiError::from_store(&e, retry))?;
            if !held {
                return Err(ApiError::NotFound(format!(
                    "no node {head} in session {}",
                    row.id
                )));
            }
            Some(head)
        }
        None => store::latest_head(db, org_id, row.id)
            .await
            .map_err(|e| ApiError::from_store(&e, retry))?,
    };
    let chain = match &head {
        Some(head) => store::ancestry(db, org_id, head)
            .await
            .map_err(|e| ApiError::from_store(&e, retry))?,
        None => Vec::new(),
    };
    let messages = chain
        .into_iter()
        .map(|node| Message {
            hash: node.hash,
            role: node.role.unwrap_or_default(),
            content: match node.content {
                Some(Value::Null) | None => Value::Array(Vec::new()),
                Some(content) => content,
            },
            model: node.model.filter(|m| !m.is_empty()),
        })
        .collect();
    Ok(respond(
        StatusCode::OK,
        &Transcript {
            session_id: row.id,
            head,
            messages,
        },
    ))
}
