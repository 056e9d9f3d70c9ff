//! The HTTP surface: routes, body reading, error → status mapping, admin and health.
//!
//! Handlers parse and hash (pure CPU), then hand the turn to its session through a
//! [`SessionHandle`](crate::sessions::SessionHandle) and answer once it committed. No SQL
//! here, and no actor addresses.

mod admin;
mod auth;
mod body;
mod connection_errors;
mod conversation;
mod error;
mod ingest;
mod json;
mod nodes;
mod params;
mod request_id;
mod server;
mod sessions;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

pub use admin::AdminAuth;
pub use auth::{API_KEY_HEADER, Auth};
pub use body::{BodyLimits, min_budget as min_body_budget};
pub use error::ApiError;
pub use request_id::REQUEST_ID_HEADER;
pub use server::{ServerSettings, serve};

use crate::config::CaptureConfig;
use crate::cost::PriceBook;
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
}

/// Registers every route on an `App`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(state)
            .service(resource("/ping").route(web::get().to(ping)))
            .service(
                resource("/metrics")
                    .wrap(Compress::default())
                    .route(web::get().to(metrics)),
            )
            .service(resource("/v1/ingest").route(web::post().to(ingest::ingest)))
            .service(resource("/v1/ingest/batch").route(web::post().to(ingest::ingest_batch)))
            .service(resource("/v1/ingest/nodes").route(web::get().to(nodes::list)))
            .service(
                resource("/v1/nodes/{hash}/conversation").route(web::get().to(conversation::get)),
            )
            .service(resource("/v1/sessions").route(web::get().to(sessions::list)))
            .service(resource("/v1/sessions/{id}").route(web::get().to(sessions::get)))
            .service(resource("/v1/sessions/{id}/turns").route(web::get().to(sessions::turns)))
            .service(
                resource("/v1/sessions/{id}/transcript").route(web::get().to(sessions::transcript)),
            )
            .service(resource("/admin/actors").route(web::get().to(admin::list)))
            .service(resource("/admin/actors/{session_id}").route(web::get().to(admin::inspect)))
            .service(resource("/admin/actors/{session_id}/stop").route(web::post().to(admin::stop)))
            .service(
                resource("/admin/sessions/{session_id}/raw")
                    .route(web::get().to(admin::session_raw)),
            )
            .service(resource("/admin/raw/{id}").route(web::get().to(admin::raw_turn)))
            .default_service(web::to(not_found));
    }
}

/// Wraps the App with the request-id and access-log middleware.
pub use request_id::middleware as request_middleware;

/// A route whose other methods answer a JSON 405 (the reference's text, as JSON).
fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

async fn ping() -> HttpResponse {
    json::respond(StatusCode::OK, &Status { status: "ok" })
}

async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
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
