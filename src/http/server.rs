//! The HTTP server: actix's server and HTTP/1 service, put together by hand.
//!
//! `actix_web::HttpServer` does the same with its own connection type; reel builds it itself
//! to wrap each connection in [`JsonErrorBodies`], so the answers the dispatcher writes
//! without reaching a service still have JSON bodies. Everything else matches what
//! `HttpServer::listen` sets up.

use std::net::TcpListener;
use std::time::Duration;

use actix_http::{HttpService, Protocol};
use actix_server::Server;
use actix_service::{IntoServiceFactory, ServiceFactoryExt, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::middleware::from_fn;
use actix_web::rt::net::TcpStream;
use actix_web::{App, web};

use super::connection_errors::JsonErrorBodies;
use super::{AppState, configure, request_middleware};
use crate::memory::Releaser;

/// How the HTTP server runs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub workers: usize,
    /// Connections open at once, across workers.
    pub max_connections: usize,
    pub keep_alive: Duration,
    /// Time to send a request's head; zero disables it.
    pub client_request_timeout: Duration,
    /// Seconds a graceful stop waits for in-flight requests.
    pub shutdown_timeout_secs: u64,
    /// Run on every worker each second to purge memory freed there.
    pub releaser: Releaser,
}

/// Starts serving `listener` with reel's routes. Must run inside an actix `System`.
pub fn serve(
    listener: TcpListener,
    settings: &ServerSettings,
    state: web::Data<AppState>,
) -> std::io::Result<Server> {
    let addr = listener.local_addr()?;
    let builder = Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let head_timeout = settings.client_request_timeout;
    let keep_alive = settings.keep_alive;
    let workers = settings.workers.max(1);
    let releaser = settings.releaser.clone();
    builder
        .workers(workers)
        // actix bounds connections per worker.
        .max_concurrent_connections(settings.max_connections.div_ceil(workers))
        .shutdown_timeout(settings.shutdown_timeout_secs)
        // Signals are handled by `Application::run_until`'s caller: actix treats SIGINT as
        // a hard stop, and reel must drain actors after the HTTP server stopped.
        .disable_signals()
        .listen("reel", listener, move || {
            // The factory runs once on each worker, inside its runtime.
            releaser.spawn_expiry();
            let shutdown = shutdown.clone();
            let app = App::new()
                .wrap(from_fn(request_middleware))
                .configure(configure(state.clone()));
            let http = HttpService::build()
                // Idle keep-alive connections close when a graceful stop begins.
                .graceful_shutdown_signal(move || {
                    let shutdown = shutdown.clone();
                    async move { shutdown.notified().await }
                })
                .keep_alive(keep_alive)
                .client_request_timeout(head_timeout)
                .client_disconnect_timeout(Duration::from_secs(1))
                .h1_allow_half_closed(true)
                .local_addr(addr)
                .finish(map_config(
                    app.into_factory()
                        .map_err(|err: actix_web::Error| err.error_response()),
                    |_| AppConfig::default(),
                ));
            let head_timeout_secs = head_timeout.as_secs();
            fn_service(move |io: TcpStream| {
                let peer = io.peer_addr().ok();
                let io = JsonErrorBodies::new(io, head_timeout_secs);
                async move { Ok((io, Protocol::Http1, peer)) }
            })
            .and_then(http)
        })
        .map(|builder| builder.run())
}
