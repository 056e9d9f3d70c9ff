//! Settings: built-in defaults, overlaid by a TOML file, overlaid by environment variables.
//!
//! Every field has a default, so an empty file (or none at all) runs a server on SQLite at
//! `127.0.0.1:8082`. The root `config.toml` documents each setting; deploy-time values
//! (where to listen, which database, the admin token) can be set from the environment so a
//! container image needs no file at all.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::cost::Rates;
use crate::merkle::Rules;

/// The default database: a SQLite file in the working directory, created when missing.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://reel.db?mode=rwc";
/// The reference's default ingest address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8082";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value for {var}: {reason}")]
    Env { var: &'static str, reason: String },
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

/// All of reel's settings. See the root `config.toml` for what each one means.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub sessions: SessionsConfig,
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub capture: CaptureConfig,
    pub chain: ChainConfig,
    /// Per-model prices, merged over the shipped defaults (`cost::PriceBook`).
    pub pricing: BTreeMap<String, Rates>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `host:port` to listen on; port 0 picks a free port.
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Largest accepted request body after Content-Encoding decoding, in bytes.
    pub body_limit_bytes: usize,
    /// Total bytes of request bodies held in memory at once, across all requests: decoded
    /// bytes, the capacity they grow into and their decoders' state.
    pub body_budget_bytes: usize,
    /// How long a graceful shutdown waits for in-flight requests, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Idle keep-alive of client connections, in seconds.
    pub keep_alive_secs: u64,
    /// Seconds a client has to send a request's head (line and headers); 0 disables it.
    pub client_request_timeout_secs: u64,
    /// Seconds a client has to send a whole body, from the end of its head.
    pub body_timeout_secs: u64,
    /// Client connections open at once, across HTTP workers; more wait to be accepted.
    pub max_connections: usize,
    /// Rows returned by `GET /v1/ingest/nodes` when the request names no `limit`.
    pub nodes_default_limit: u64,
    /// Largest `limit` accepted by `GET /v1/ingest/nodes`.
    pub nodes_max_limit: u64,
    /// Stamped into the non-hashed `project` column of every node this server stores (the
    /// reference's `Project`); empty or blank stores NULL.
    pub project: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.to_owned(),
            workers: 0,
            body_limit_bytes: 64 * 1024 * 1024,
            body_budget_bytes: 256 * 1024 * 1024,
            shutdown_timeout_secs: 30,
            keep_alive_secs: 5,
            client_request_timeout_secs: 5,
            body_timeout_secs: 60,
            max_connections: 1024,
            nodes_default_limit: 1000,
            nodes_max_limit: 10_000,
            project: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc` or `postgres://user@host:port/db`.
    pub url: String,
    /// Apply pending migrations when the server starts.
    pub migrate_on_start: bool,
    /// Largest number of pooled connections.
    pub max_connections: u32,
    /// Seconds to wait for a new connection before the database counts as unreachable.
    pub connect_timeout_secs: u64,
    /// Seconds to wait for a pooled connection before the database counts as unreachable.
    pub acquire_timeout_secs: u64,
    /// Postgres: transactions committing turns at once; the sessions' turns waiting
    /// meanwhile share the next one (group commit). 0 = one per two CPU cores. SQLite
    /// always has one writer.
    pub group_writers: usize,
}

impl DatabaseConfig {
    /// `group_writers`, with 0 resolved to half the CPU cores, at least one and at most
    /// `max_connections`: the rest are left to the HTTP workers and the database, and
    /// fewer writers make larger groups (measured: benches/http/README.md#group-commit).
    pub fn group_writers(&self) -> usize {
        match self.group_writers {
            0 => (std::thread::available_parallelism().map_or(1, usize::from) / 2)
                .clamp(1, self.max_connections.max(1) as usize),
            n => n,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: DEFAULT_DATABASE_URL.to_owned(),
            migrate_on_start: true,
            max_connections: 16,
            connect_timeout_secs: 5,
            acquire_timeout_secs: 5,
            group_writers: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsConfig {
    /// Threads that run session actors; 0 means one per CPU core.
    pub arbiters: usize,
    /// Turns of one session accepted but not yet committed; one more answers 429.
    pub pending_per_session: usize,
    /// Turns accepted but not yet committed across all sessions; one more answers 429.
    pub max_in_flight: usize,
    /// Live session actors; a turn for a new session beyond this answers 429.
    pub max_live_actors: usize,
    /// Seconds without a turn after which a session's actor stops.
    pub idle_timeout_secs: u64,
    /// Node hashes each actor remembers as stored, so warm sessions write only new nodes.
    pub known_hashes_per_session: usize,
    /// MiB of last requests all actors keep together, so a warm turn's raw capture cuts
    /// and hashes only what follows the conversation it re-sends; 0 keeps none.
    pub remembered_requests_mib: usize,
    /// Value of the `Retry-After` header on 429 and 503, in seconds.
    pub retry_after_secs: u64,
    /// Sessions of one batch committed concurrently.
    pub batch_parallelism: usize,
    /// Seconds a shutdown waits for session actors to drain.
    pub drain_timeout_secs: u64,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            arbiters: 0,
            pending_per_session: 64,
            max_in_flight: 1024,
            max_live_actors: 100_000,
            idle_timeout_secs: 300,
            known_hashes_per_session: 4096,
            remembered_requests_mib: 64,
            retry_after_secs: 1,
            batch_parallelism: 8,
            drain_timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token for `/admin/*`. Without one, admin answers only on a loopback listener.
    pub token: Option<String>,
}

/// How ingest and read routes authenticate, and what one org may hold in flight.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// `keys`: every ingest and read route needs an API key, whose org it acts as. `none`:
    /// the org is whatever the envelope names (allowed only on loopback unless
    /// `allow_anonymous`).
    pub mode: AuthMode,
    /// Lets a `none` server listen on a non-loopback address.
    pub allow_anonymous: bool,
    /// How long a key lookup is reused; a revocation takes effect within this time.
    pub cache_ttl_secs: u64,
    /// Keys (known or not) remembered at once.
    pub cache_capacity: usize,
    /// Turns of one org accepted but not yet committed; one more answers 429.
    pub org_max_in_flight: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            allow_anonymous: false,
            cache_ttl_secs: 5,
            cache_capacity: 10_000,
            org_max_in_flight: 256,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    Keys,
    #[default]
    None,
}

/// What is kept of each captured turn (docs/capture.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// Store every decoded turn verbatim (request bytes as chunks, response, meta, envelope,
    /// raw response bytes) beside its nodes.
    pub raw: bool,
    /// Keep the turns answered 422 as quarantined raw turns, for `reel reprocess`.
    pub quarantine: bool,
    /// Bytes of quarantined turns each org may keep; beyond it a 422 is not captured.
    pub quarantine_bytes_per_org: u64,
    /// Days raw turns are kept by `reel prune`; 0 keeps them for ever.
    pub retention_days: u32,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            raw: true,
            quarantine: true,
            quarantine_bytes_per_org: 1 << 30,
            retention_days: 0,
        }
    }
}

/// Which rules turn a turn into nodes (docs/hashing.md#rule-sets).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// The rule set by name (`tapes-f237b6e`, `tapes-6ea4dfc`). A new database records it
    /// (unset: [`DEFAULT_CHAIN_RULES`]); a database that records another refuses the server.
    /// Unset, a server hashes by whatever its database records.
    pub rules: Option<String>,
}

/// The rule set a new database records when `chain.rules` is not set.
pub const DEFAULT_CHAIN_RULES: &Rules = &Rules::TAPES_6EA4DFC;

impl ChainConfig {
    /// The rule set `chain.rules` names, when it is set (validated by [`Config::validate`]).
    pub fn rules(&self) -> Result<Option<&'static Rules>, ConfigError> {
        let Some(name) = self.rules.as_deref() else {
            return Ok(None);
        };
        Rules::named(name.trim())
            .map(Some)
            .ok_or_else(|| ConfigError::Invalid {
                setting: "chain.rules",
                reason: format!(
                    "unknown rule set {name:?}; expected one of {}",
                    Rules::names().collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `tracing` filter directives (`RUST_LOG` syntax).
    pub filter: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            filter: "info,sqlx=warn,sea_orm=warn,sea_orm_migration=warn".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Config {
    /// Loads `path` (or only the defaults when `None`), then applies the environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.display().to_string(),
            source: Box::new(source),
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Applies the `REEL_*` variables that `lookup` returns (README.md lists them with the
    /// setting each replaces). An empty value counts as unset, so `REEL_ADMIN_TOKEN=` does not
    /// configure an empty token.
    pub fn apply_env(
        &mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.is_empty());
        if let Some(v) = get("REEL_LISTEN") {
            self.server.listen = v;
        }
        if let Some(v) = get("REEL_PROJECT") {
            self.server.project = v;
        }
        if let Some(v) = get("REEL_WORKERS") {
            self.server.workers = v.parse().map_err(|e| ConfigError::Env {
                var: "REEL_WORKERS",
                reason: format!("{e}"),
            })?;
        }
        if let Some(v) = get("REEL_DATABASE_URL") {
            self.database.url = v;
        }
        if let Some(v) = get("REEL_MIGRATE") {
            self.database.migrate_on_start = bool_var("REEL_MIGRATE", &v)?;
        }
        if let Some(v) = get("REEL_ADMIN_TOKEN") {
            self.admin.token = Some(v);
        }
        if let Some(v) = get("REEL_AUTH_MODE") {
            self.auth.mode = choice_var(
                "REEL_AUTH_MODE",
                &v,
                &[("keys", AuthMode::Keys), ("none", AuthMode::None)],
            )?;
        }
        if let Some(v) = get("REEL_AUTH_ALLOW_ANONYMOUS") {
            self.auth.allow_anonymous = bool_var("REEL_AUTH_ALLOW_ANONYMOUS", &v)?;
        }
        if let Some(v) = get("REEL_CAPTURE_RAW") {
            self.capture.raw = bool_var("REEL_CAPTURE_RAW", &v)?;
        }
        if let Some(v) = get("REEL_CHAIN_RULES") {
            self.chain.rules = Some(v);
        }
        if let Some(v) = get("REEL_LOG") {
            self.log.filter = v;
        }
        if let Some(v) = get("REEL_LOG_FORMAT") {
            self.log.format = choice_var(
                "REEL_LOG_FORMAT",
                &v,
                &[("text", LogFormat::Text), ("json", LogFormat::Json)],
            )?;
        }
        Ok(())
    }

    /// Refuses settings that would make the server unusable rather than failing later.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("server.body_limit_bytes", self.server.body_limit_bytes),
            ("server.body_budget_bytes", self.server.body_budget_bytes),
            ("server.max_connections", self.server.max_connections),
            (
                "server.body_timeout_secs",
                usize::try_from(self.server.body_timeout_secs).unwrap_or(usize::MAX),
            ),
            (
                "sessions.pending_per_session",
                self.sessions.pending_per_session,
            ),
            ("sessions.max_in_flight", self.sessions.max_in_flight),
            ("sessions.max_live_actors", self.sessions.max_live_actors),
            (
                "sessions.batch_parallelism",
                self.sessions.batch_parallelism,
            ),
            ("auth.cache_capacity", self.auth.cache_capacity),
            ("auth.org_max_in_flight", self.auth.org_max_in_flight),
        ];
        for (setting, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    setting,
                    reason: "must be greater than 0".to_owned(),
                });
            }
        }
        if self.server.nodes_default_limit > self.server.nodes_max_limit {
            return Err(ConfigError::Invalid {
                setting: "server.nodes_default_limit",
                reason: "must not exceed server.nodes_max_limit".to_owned(),
            });
        }
        // Each writer task holds a pooled connection while it commits; more tasks than
        // connections would leave reads none.
        if self.database.group_writers() > self.database.max_connections as usize {
            return Err(ConfigError::Invalid {
                setting: "database.group_writers",
                reason: format!(
                    "must not exceed database.max_connections ({}): each writer task holds a \
                     connection while it commits",
                    self.database.max_connections
                ),
            });
        }
        if let Some(token) = &self.admin.token
            && token.trim().is_empty()
        {
            return Err(ConfigError::Invalid {
                setting: "admin.token",
                reason: "must not be blank; omit it instead".to_owned(),
            });
        }
        self.chain.rules()?;
        for (model, rates) in &self.pricing {
            rates.validate().map_err(|reason| ConfigError::Invalid {
                setting: "pricing",
                reason: format!("{model}: {reason}"),
            })?;
        }
        Ok(())
    }

    /// True when the listen address is a loopback address (admin may then run without a
    /// token). A host name that is not an IP literal counts as loopback only for `localhost`.
    pub fn listens_on_loopback(&self) -> bool {
        match self.server.listen.parse::<SocketAddr>() {
            Ok(addr) => addr.ip().is_loopback(),
            Err(_) => self
                .server
                .listen
                .rsplit_once(':')
                .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
        }
    }
}

impl Config {
    /// HTTP worker threads: `server.workers`, or one per core (as actix counts them) when 0.
    pub fn http_workers(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            n => n,
        }
    }
}

impl SessionsConfig {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

/// A boolean variable's value, or the error naming it.
fn bool_var(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    parse_bool(v).ok_or(ConfigError::Env {
        var,
        reason: format!("expected true or false, got {v:?}"),
    })
}

/// The choice a variable names exactly, or the error listing the choices.
fn choice_var<T: Copy>(
    var: &'static str,
    v: &str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    choices
        .iter()
        .find(|(name, _)| *name == v)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            ConfigError::Env {
                var,
                reason: format!("expected {}, got {v:?}", names.join(" or ")),
            }
        })
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_writers_default_to_half_the_cores_and_never_exceed_the_pool() {
        let mut config = Config::default();
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(config.database.group_writers(), (cores / 2).clamp(1, 16));
        config.database.max_connections = 1;
        assert_eq!(config.database.group_writers(), 1);
        config.validate().expect("the default fits any pool");
        config.database.group_writers = 2;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("database.group_writers"), "{err}");
    }

    #[test]
    fn the_shipped_config_file_parses_and_matches_the_defaults() {
        let text = include_str!("../config.toml");
        let config = Config::from_toml(text).expect("config.toml parses");
        config.validate().expect("config.toml is valid");
        let defaults = Config::default();
        assert_eq!(config.server.listen, defaults.server.listen);
        assert_eq!(config.database.url, defaults.database.url);
        assert_eq!(
            config.server.body_limit_bytes,
            defaults.server.body_limit_bytes
        );
        assert_eq!(
            config.sessions.pending_per_session,
            defaults.sessions.pending_per_session
        );
        assert_eq!(config.admin.token, None);
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = Config::from_toml("").expect("empty parses");
        assert_eq!(config.server.listen, DEFAULT_LISTEN);
        assert_eq!(config.database.url, DEFAULT_DATABASE_URL);
        assert!(config.database.migrate_on_start);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut config =
            Config::from_toml("[server]\nlisten = \"0.0.0.0:9000\"\n").expect("parses");
        config
            .apply_env(|var| match var {
                "REEL_LISTEN" => Some("127.0.0.1:0".to_owned()),
                "REEL_DATABASE_URL" => Some("postgres://x@y/z".to_owned()),
                "REEL_ADMIN_TOKEN" => Some("s3cret".to_owned()),
                "REEL_MIGRATE" => Some("false".to_owned()),
                "REEL_LOG_FORMAT" => Some("json".to_owned()),
                "REEL_PROJECT" => Some("fleet".to_owned()),
                _ => None,
            })
            .expect("applies");
        assert_eq!(config.server.listen, "127.0.0.1:0");
        assert_eq!(config.database.url, "postgres://x@y/z");
        assert_eq!(config.admin.token.as_deref(), Some("s3cret"));
        assert!(!config.database.migrate_on_start);
        assert_eq!(config.log.format, LogFormat::Json);
        assert_eq!(config.server.project, "fleet");
    }

    #[test]
    fn empty_environment_values_count_as_unset() {
        let mut config = Config::default();
        config.apply_env(|_| Some(String::new())).expect("applies");
        assert_eq!(config.admin.token, None);
        assert_eq!(config.server.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn bad_environment_values_are_errors() {
        let mut config = Config::default();
        let err = config
            .apply_env(|var| (var == "REEL_MIGRATE").then(|| "maybe".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("REEL_MIGRATE"), "{err}");
    }

    #[test]
    fn auth_settings_from_the_file_and_the_environment() {
        let mut config =
            Config::from_toml("[auth]\nmode = \"keys\"\norg_max_in_flight = 8\n").expect("parses");
        assert_eq!(config.auth.mode, AuthMode::Keys);
        assert_eq!(config.auth.org_max_in_flight, 8);
        config
            .apply_env(|var| match var {
                "REEL_AUTH_MODE" => Some("none".to_owned()),
                "REEL_AUTH_ALLOW_ANONYMOUS" => Some("true".to_owned()),
                _ => None,
            })
            .expect("applies");
        assert_eq!(config.auth.mode, AuthMode::None);
        assert!(config.auth.allow_anonymous);
        let err = config
            .apply_env(|var| (var == "REEL_AUTH_MODE").then(|| "open".to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("REEL_AUTH_MODE"), "{err}");
        config.auth.org_max_in_flight = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn chain_rules_from_the_file_and_the_environment() {
        assert_eq!(Config::default().chain.rules().unwrap(), None);
        let mut config = Config::from_toml("[chain]\nrules = \"tapes-f237b6e\"\n").expect("parses");
        assert_eq!(
            config.chain.rules().unwrap(),
            Some(&crate::merkle::Rules::TAPES_F237B6E)
        );
        config
            .apply_env(|var| (var == "REEL_CHAIN_RULES").then(|| "tapes-6ea4dfc".to_owned()))
            .expect("applies");
        assert_eq!(config.chain.rules().unwrap(), Some(DEFAULT_CHAIN_RULES));
        config.chain.rules = Some("tapes-HEAD".to_owned());
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("chain.rules")
                && err.contains("tapes-HEAD")
                && err.contains("tapes-6ea4dfc"),
            "{err}"
        );
    }

    #[test]
    fn zero_limits_are_refused() {
        let mut config = Config::default();
        config.sessions.pending_per_session = 0;
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains("pending_per_session"), "{err}");
    }

    #[test]
    fn bad_variables_name_the_variable_and_the_choices() {
        let apply = |var: &'static str, value: &'static str| {
            let mut config = Config::default();
            config
                .apply_env(|v| (v == var).then(|| value.to_owned()))
                .unwrap_err()
                .to_string()
        };
        let err = apply("REEL_AUTH_MODE", "open");
        assert!(
            err.contains("REEL_AUTH_MODE") && err.contains(r#"expected keys or none, got "open""#),
            "{err}"
        );
        let err = apply("REEL_LOG_FORMAT", "xml");
        assert!(err.contains(r#"expected text or json, got "xml""#), "{err}");
        let err = apply("REEL_MIGRATE", "maybe");
        assert!(
            err.contains(r#"expected true or false, got "maybe""#),
            "{err}"
        );
    }

    #[test]
    fn loopback_detection() {
        let mut config = Config::default();
        assert!(config.listens_on_loopback());
        config.server.listen = "[::1]:8082".to_owned();
        assert!(config.listens_on_loopback());
        config.server.listen = "localhost:8082".to_owned();
        assert!(config.listens_on_loopback());
        config.server.listen = "0.0.0.0:8082".to_owned();
        assert!(!config.listens_on_loopback());
        config.server.listen = "ingest.internal:8082".to_owned();
        assert!(!config.listens_on_loopback());
    }
}
