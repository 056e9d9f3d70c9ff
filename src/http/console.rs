//! The admin console: `GET /admin/`, one page of plain HTML, CSS and JavaScript compiled
//! into the binary (`console/`), and `GET /admin/ingest/recent`, the last minutes of ingest
//! its charts draw.
//!
//! The page and its assets hold no data, so they follow only the first admin rule: with no
//! token configured they are served on a loopback listener alone. A browser cannot attach a
//! bearer token to a navigation, so the page asks for the token when an admin route answers
//! 401, keeps it in the tab's `sessionStorage`, and sends it as `Authorization: Bearer` on
//! every call (docs/wire.md#admin-console).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::json::respond;
use crate::telemetry::{INTERVAL_SECS, Interval};

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// Scripts and styles from the server itself only; the page makes no other request.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One of the console's files, when admin is enabled at all.
fn file(
    state: &AppState,
    content_type: &str,
    body: &'static str,
) -> Result<HttpResponse, ApiError> {
    state.admin.check_enabled()?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body))
}

/// The console page.
#[utoipa::path(get, path = "/admin/", tag = "admin",
    responses((status = 200, description = "The admin console",
        body = String, content_type = "text/html")))]
pub async fn page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    file(&state, "text/html; charset=utf-8", PAGE)
}

/// The console's script.
#[utoipa::path(get, path = "/admin/console.js", tag = "admin",
    responses((status = 200, description = "The console's script",
        body = String, content_type = "text/javascript")))]
pub async fn script(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    file(&state, "text/javascript; charset=utf-8", SCRIPT)
}

/// The console's style sheet.
#[utoipa::path(get, path = "/admin/console.css", tag = "admin",
    responses((status = 200, description = "The console's style sheet",
        body = String, content_type = "text/css")))]
pub async fn style(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    file(&state, "text/css; charset=utf-8", STYLE)
}

#[derive(Serialize, ToSchema)]
struct RecentIngest {
    /// Seconds each interval covers.
    interval_secs: u64,
    /// Oldest first; the last one is the current, still filling, interval.
    #[schema(value_type = Vec<IntervalDoc>)]
    intervals: Vec<Interval>,
}

/// One interval of [`RecentIngest`].
#[derive(ToSchema)]
#[allow(dead_code)]
struct IntervalDoc {
    /// Unix seconds at which the interval starts.
    start: u64,
    /// Turns answered 202.
    accepted: u64,
    /// Turns refused as bad input (400, 413, 422).
    rejected: u64,
    /// Turns that reached their session and were not committed (429, 5xx).
    failed: u64,
    /// Mean write latency of the accepted turns, in milliseconds.
    latency_mean_ms: f64,
    latency_max_ms: f64,
}

/// `GET /admin/ingest/recent`: ingest over the last ten minutes, in ten-second intervals.
#[utoipa::path(get, path = "/admin/ingest/recent", tag = "admin",
    responses((status = 200, description = "The recent intervals", body = RecentIngest)))]
pub async fn recent(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    state.admin.check(&req)?;
    Ok(respond(
        StatusCode::OK,
        &RecentIngest {
            interval_secs: INTERVAL_SECS,
            intervals: state.metrics.recent.intervals(),
        },
    ))
}
