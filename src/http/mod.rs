//! The HTTP surface: routes, body reading, error → status mapping, admin and health.
//!
//! Handlers parse and hash (pure CPU), then hand the turn to its session through a
//! [`SessionHandle`](crate::sessions::SessionHandle) and answer once it committed. No SQL
//! here, and no actor addresses.

mod admin;
mod auth;
mod body;
mod connection_errors;
mod console;
mod conversation;
mod error;
mod ingest;
mod json;
mod nodes;
mod openapi;
mod params;
mod quarantine;
mod request_id;
mod server;
mod sessions;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;
use utoipa::ToSchema;

pub use admin::AdminAuth;
pub use auth::{API_KEY_HEADER, Auth};
pub use body::{BodyLimits, min_budget as min_body_budget};
pub use error::ApiError;
pub use openapi::ApiDoc;
pub use request_id::REQUEST_ID_HEADER;
pub use server::{ServerSettings, serve};

use crate::config::CaptureConfig;
use crate::cost::PriceBook;
use crate::merkle::Rules;
use crate::sessions::Registry;
use crate::store::Store;
use crate::telemetry::{METRICS_CONTENT_TYPE, Metrics};

/// What every handler shares. Built once, before the HTTP workers start.
pub struct AppState {
    pub registry: Registry,
    pub store: Store,
    pub metrics: Metrics,
    pub prices: Arc<PriceBook>,
    pub body_limits: BodyLimits,
    pub admin: AdminAuth,
    pub auth: Auth,
    pub retry_after_secs: u64,
    pub batch_parallelism: usize,
    pub nodes_default_limit: u64,
    pub nodes_max_limit: u64,
    /// What the ingest path keeps of each turn.
    pub capture: CaptureConfig,
    /// The rules every turn is hashed by: the database's.
    pub rules: &'static Rules,
}

/// The route table: every route the server answers, registered by [`configure`] from this
/// one list, which is also [`ROUTES`], the list the OpenAPI document is checked against.
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:expr $(, wrap $wrap:expr)?;)*) => {
        /// Every `(method, path)` the server answers, as registered.
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.service(resource($path)$(.wrap($wrap))?.route(web::$method().to($handler)));)*
        }
    };
}

route_table! {
    get "/ping" => ping;
    get "/metrics" => metrics, wrap Compress::default();
    get "/openapi" => openapi::document;
    post "/v1/ingest" => ingest::ingest;
    post "/v1/ingest/batch" => ingest::ingest_batch;
    get "/v1/ingest/nodes" => nodes::list;
    get "/v1/nodes/{hash}/conversation" => conversation::get;
    get "/v1/sessions" => sessions::list;
    get "/v1/sessions/{id}" => sessions::get;
    get "/v1/sessions/{id}/turns" => sessions::turns;
    get "/v1/sessions/{id}/transcript" => sessions::transcript;
    get "/admin/actors" => admin::list;
    get "/admin/actors/{session_id}" => admin::inspect;
    post "/admin/actors/{session_id}/stop" => admin::stop;
    get "/admin/sessions/{session_id}/raw" => admin::session_raw;
    get "/admin/raw/{id}" => admin::raw_turn;
    get "/admin/" => console::page;
    get "/admin/console.js" => console::script;
    get "/admin/console.css" => console::style;
    get "/admin/ingest/recent" => console::recent;
    get "/admin/quarantine" => quarantine::list;
    post "/admin/raw/{id}/reprocess" => quarantine::reprocess;
}

/// Registers every route on an `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state);
        register(cfg);
        cfg.default_service(web::to(not_found));
    }
}

/// Wraps the App with the request-id and access-log middleware.
pub use request_id::middleware as request_middleware;

/// A route whose other methods answer a JSON 405 (the reference's text, as JSON).
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

#[derive(Serialize, ToSchema)]
pub(crate) struct Status {
    /// `ok`.
    status: &'static str,
}

/// Liveness: answers as long as the server runs.
#[utoipa::path(get, path = "/ping", tag = "health",
    responses((status = 200, description = "The server runs", body = Status)))]
pub(crate) async fn ping() -> HttpResponse {
    json::respond(StatusCode::OK, &Status { status: "ok" })
}

/// The Prometheus text exposition of every metric (docs/wire.md#metrics).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text exposition, version 0.0.4",
        body = String, content_type = "text/plain")))]
pub(crate) async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.metrics.render().map_err(|e| {
        tracing::error!(error = %e, "cannot render metrics");
        ApiError::Internal
    })?;
    Ok(HttpResponse::Ok()
        .content_type(METRICS_CONTENT_TYPE)
        .body(body))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::NotFound(format!("Cannot {} {}", req.method(), req.path())).error_response()
}

async fn method_not_allowed() -> HttpResponse {
    ApiError::MethodNotAllowed.error_response()
}
