//! Assembling and running a server: database, registry, HTTP listener, graceful shutdown.
//!
//! `Application::build` binds the listener before returning, so tests configure port 0 and
//! read the chosen port back; `run_until` serves until a shutdown future resolves, then
//! stops in the one order that loses nothing acknowledged: stop accepting, let in-flight
//! requests finish (each waits for its commit), drain every session actor, close the pool.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::web;
use sea_orm::DatabaseConnection;

use crate::config::{AuthMode, Config, ConfigError, DEFAULT_CHAIN_RULES};
use crate::cost::{PriceBook, PriceTableError};
use crate::http::{self, AdminAuth, AppState, Auth, BodyLimits, ServerSettings};
use crate::memory::{Purge, Releaser};
use crate::sessions::{Registry, SessionSettings};
use crate::store::{self, CommitOptions, RulesError, Store, StoreError, StoreOptions};
use crate::telemetry::{Metrics, MetricsError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database: {0}")]
    Database(StoreError),
    #[error("cannot migrate the database: {0}")]
    Migrate(StoreError),
    #[error(transparent)]
    Rules(#[from] RulesError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot start the session arbiters: {0}")]
    Arbiters(std::io::Error),
    #[error(
        "refusing to serve without API keys on {listen}: set auth.mode = \"keys\", listen on \
         loopback, or set auth.allow_anonymous = true"
    )]
    Anonymous { listen: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Prices(#[from] PriceTableError),
}

/// A built server, listening but not yet serving.
pub struct Application {
    server: Server,
    local_addr: SocketAddr,
    registry: Registry,
    db: DatabaseConnection,
    metrics: Metrics,
    shutdown_timeout: Duration,
    releaser: Releaser,
}

impl Application {
    /// Connects (and migrates, unless disabled) the database, starts the session arbiters and
    /// binds the listener. Must run inside an actix `System` (`actix_rt::System`,
    /// `#[actix_rt::test]`).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        config.validate()?;
        check_body_budget(&config)?;
        check_anonymous(&config)?;
        let metrics = Metrics::new()?;
        let prices = PriceBook::with_overrides(&config.pricing)?;
        let options = StoreOptions {
            max_connections: config.database.max_connections,
            connect_timeout: Duration::from_secs(config.database.connect_timeout_secs),
            acquire_timeout: Duration::from_secs(config.database.acquire_timeout_secs),
            ..StoreOptions::default()
        };
        let db = store::connect(&config.database.url, &options)
            .await
            .map_err(StartupError::Database)?;
        if config.database.migrate_on_start {
            store::migrate(&db).await.map_err(StartupError::Migrate)?;
        }
        // Every turn is hashed by the database's rule set; a server configured for another
        // refuses to start rather than mixing two kinds of chains.
        let rules = store::settle_rules(&db, config.chain.rules()?, DEFAULT_CHAIN_RULES).await?;
        tracing::info!(rules = rules.name, "chain rules");

        let store = Store::new(
            db.clone(),
            CommitOptions {
                // The store stores a blank project as NULL, as the reference's TrimSpace has it.
                project: Some(Arc::from(config.server.project.as_str())),
                writer_queued: Some(metrics.writer_queued.clone()),
                group_writers: config.database.group_writers(),
            },
        );
        let releaser = Releaser::default();
        let body_limits = BodyLimits::new(
            config.server.body_limit_bytes,
            config.server.body_budget_bytes,
            Duration::from_secs(config.server.body_timeout_secs),
            releaser.clone(),
        );
        let mut settings = SessionSettings::from(&config.sessions);
        settings.org_max_in_flight = config.auth.org_max_in_flight;
        let registry = Registry::new(store.clone(), settings, metrics.clone())
            .map_err(StartupError::Arbiters)?;
        // Actors free the turns they committed on their own threads (the group writer, on
        // the system's, is covered by `run_until`).
        registry.spawn_on_arbiters(|| releaser.expiry());
        let state = web::Data::new(AppState {
            registry: registry.clone(),
            store,
            metrics: metrics.clone(),
            prices: Arc::new(prices),
            body_limits,
            admin: AdminAuth::new(config.admin.token.clone(), config.listens_on_loopback()),
            auth: Auth::new(&config.auth),
            retry_after_secs: config.sessions.retry_after_secs,
            batch_parallelism: config.sessions.batch_parallelism,
            nodes_default_limit: config.server.nodes_default_limit,
            nodes_max_limit: config.server.nodes_max_limit,
            capture: config.capture.clone(),
            rules,
        });

        let listener =
            TcpListener::bind(&config.server.listen).map_err(|source| StartupError::Bind {
                addr: config.server.listen.clone(),
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.server.listen.clone(),
            source,
        })?;
        let shutdown_timeout = Duration::from_secs(config.server.shutdown_timeout_secs);
        let settings = ServerSettings {
            workers: config.http_workers(),
            max_connections: config.server.max_connections,
            keep_alive: Duration::from_secs(config.server.keep_alive_secs),
            client_request_timeout: Duration::from_secs(config.server.client_request_timeout_secs),
            shutdown_timeout_secs: config.server.shutdown_timeout_secs,
            releaser: releaser.clone(),
        };
        let server =
            http::serve(listener, &settings, state).map_err(|source| StartupError::Bind {
                addr: config.server.listen.clone(),
                source,
            })?;

        Ok(Application {
            server,
            local_addr,
            registry,
            db,
            metrics,
            shutdown_timeout,
            releaser,
        })
    }

    /// Gives the allocator's collection to the server: it is called to purge everything
    /// free when a large request body's memory was freed, and on every HTTP worker each
    /// second to purge what has been free for the allocator's delay, so memory a burst used
    /// goes back to the system (ARCHITECTURE.md#memory).
    pub fn release_memory_with(self, collect: fn(Purge)) -> Self {
        self.releaser.set(collect);
        self
    }

    /// The address actually bound (the chosen port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves until `shutdown` resolves (or the server stops by itself), then shuts down
    /// gracefully.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Application {
            server,
            registry,
            db,
            shutdown_timeout,
            releaser,
            ..
        } = self;
        let handle: ServerHandle = server.handle();
        let mut server = actix_rt::spawn(server);
        let _expiry = AbortOnDrop(actix_rt::spawn(releaser.expiry()));
        tokio::select! {
            () = shutdown => {}
            ended = &mut server => {
                // The server stopped without being asked (e.g. the listener failed).
                registry.shutdown().await;
                db.close().await.ok();
                return ended.unwrap_or_else(|e| Err(std::io::Error::other(e)));
            }
        }
        tracing::info!(
            timeout_secs = shutdown_timeout.as_secs(),
            "shutting down: finishing in-flight requests"
        );
        // Stops accepting, waits for in-flight requests (each waits for its commit).
        handle.stop(true).await;
        let served = server
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        registry.shutdown().await;
        if let Err(e) = db.close().await {
            tracing::warn!(error = %e, "closing the database pool");
        }
        tracing::info!("shutdown complete");
        served
    }
}

/// Without keys any client may write as any org, so that is allowed off loopback only when
/// asked for explicitly, and then loudly.
fn check_anonymous(config: &Config) -> Result<(), StartupError> {
    if config.auth.mode != AuthMode::None || config.listens_on_loopback() {
        return Ok(());
    }
    if !config.auth.allow_anonymous {
        return Err(StartupError::Anonymous {
            listen: config.server.listen.clone(),
        });
    }
    tracing::warn!(
        listen = %config.server.listen,
        "auth.mode = none on a non-loopback address: any client can write and read any org"
    );
    Ok(())
}

/// One largest body must fit the body budget, or it would be refused with a 429 forever. The
/// minimum depends on how bodies are decoded, which the HTTP layer knows (config.rs sits below
/// it and cannot ask).
fn check_body_budget(config: &Config) -> Result<(), ConfigError> {
    let min_budget = http::min_body_budget(config.server.body_limit_bytes);
    if config.server.body_budget_bytes < min_budget {
        return Err(ConfigError::Invalid {
            setting: "server.body_budget_bytes",
            reason: format!(
                "must be at least server.body_limit_bytes + 69 MiB ({min_budget} bytes): \
                 room for one largest body and its decoders"
            ),
        });
    }
    Ok(())
}

/// Aborts a background task when dropped: the task lives as long as the server runs.
struct AbortOnDrop(actix_rt::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_budget_must_admit_one_largest_body() {
        let mut config = Config::default();
        config.server.body_limit_bytes = 64 << 20;
        config.server.body_budget_bytes = (64 + 1 + 68) << 20;
        check_body_budget(&config).expect("the smallest budget for 64 MiB bodies");
        config.server.body_budget_bytes -= 1;
        let err = check_body_budget(&config).unwrap_err();
        assert!(err.to_string().contains("body_budget_bytes"), "{err}");
    }
}
