//! The `reel` binary: a thin command line over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use reel::app::{Application, shutdown_signal};
use reel::config::{Config, DEFAULT_DATABASE_URL};
use reel::keys_cli::{KeysAction, parse_expiry};
use reel::memory::Purge;
use reel::telemetry::init_tracing;

/// mimalloc instead of the system allocator: a turn allocates and frees thousands of small
/// strings, and glibc's malloc gave chain building swings of a quarter in throughput
/// depending on its heap-trimming state (see benches/chain.rs). Built with `no_thp`:
/// transparent huge pages nearly doubled the idle server's RSS.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's own C API, compiled into the allocator the `mimalloc` crate links. The crate
// binds it only behind its `extended` feature, which needs a crate of C types for this one
// function.
unsafe extern "C" {
    fn mi_collect(force: bool);
}

// glibc's, for the memory SQLite allocates: its bundled build uses the C library's malloc,
// whose per-thread arenas kept the 40 MB a 23 MB turn's statements had freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}

/// Returns memory the allocators hold but no longer use to the system. mimalloc purges freed
/// pages only after a delay (1 s) and only when it runs again, so after a burst of large
/// bodies an idle server kept hundreds of MB; a forced collection purges every arena now, a
/// normal one what has been free for the delay (ARCHITECTURE.md#memory).
fn release_memory(purge: Purge) {
    // SAFETY: `mi_collect` and `malloc_trim` take plain integers, may be called from any
    // thread at any time, and only return memory nothing refers to.
    unsafe { mi_collect(purge == Purge::Now) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if purge == Purge::Now {
        // SAFETY: as above.
        unsafe { malloc_trim(0) };
    }
}

/// Ingest server for the conversations of LLM coding agents.
///
/// Environment overrides (they win over the config file): REEL_LISTEN, REEL_WORKERS,
/// REEL_DATABASE_URL, REEL_MIGRATE, REEL_ADMIN_TOKEN, REEL_AUTH_MODE,
/// REEL_AUTH_ALLOW_ANONYMOUS, REEL_LOG, REEL_LOG_FORMAT,
/// REEL_PROJECT.
#[derive(Parser)]
#[command(name = "reel", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the ingest server until SIGTERM or SIGINT.
    ///
    /// Reads the config file when given (see config.toml in the repository for every
    /// setting), then the REEL_* environment variables. Without either it listens on
    /// 127.0.0.1:8082 and stores into sqlite://reel.db?mode=rwc, applying pending
    /// migrations at start (database.migrate_on_start / REEL_MIGRATE=false to disable).
    /// On SIGTERM or SIGINT it stops accepting, lets in-flight requests commit, drains
    /// every session actor and exits.
    Serve {
        /// Path of a TOML config file.
        #[arg(long, short = 'c', value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Print the node chain of ingest payloads, for debugging a capture.
    ///
    /// Reads one JSON payload per line from stdin (a line may also be
    /// `{"name":…,"payload":{…}}`) and prints one JSON line per input:
    /// `{"status":202,"nodes":[{"hash","parent_hash","role"}…]}` or
    /// `{"status":400|422,"error":"…"}`. Touches no database.
    Chain,
    /// Apply or inspect the database schema migrations.
    ///
    /// Runs the migrations of the `migration` crate against the database of the config
    /// file, REEL_DATABASE_URL or --database-url (the last one given wins).
    Migrate {
        /// Path of a TOML config file (for database.url).
        #[arg(long, short = 'c', value_name = "PATH")]
        config: Option<PathBuf>,
        /// Database URL, e.g. postgres://user@host:5432/reel or sqlite://reel.db?mode=rwc.
        #[arg(long, value_name = "URL")]
        database_url: Option<String>,
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Create, list or revoke the API keys that bind clients to orgs (auth.mode = "keys").
    ///
    /// Finds the database as `migrate` does; the schema must be migrated.
    Keys {
        /// Path of a TOML config file (for database.url).
        #[arg(long, short = 'c', value_name = "PATH", global = true)]
        config: Option<PathBuf>,
        /// Database URL, e.g. postgres://user@host:5432/reel or sqlite://reel.db?mode=rwc.
        #[arg(long, value_name = "URL", global = true)]
        database_url: Option<String>,
        #[command(subcommand)]
        action: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Mint a key for an org and print its secret (shown only this once).
    Create {
        /// The org the key writes and reads as.
        #[arg(long, value_name = "UUID")]
        org: uuid::Uuid,
        /// A note for `keys list`, e.g. who holds the key.
        #[arg(long)]
        label: Option<String>,
        /// When the key stops working: RFC 3339, or a duration such as 30d, 12h.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
    },
    /// List keys (prefix, org, label, created, last used, expiry, revoked); never secrets.
    List {
        /// Only this org's keys.
        #[arg(long, value_name = "UUID")]
        org: Option<uuid::Uuid>,
    },
    /// Revoke a key by its prefix; servers refuse it within auth.cache_ttl_secs.
    Revoke { prefix: String },
}

#[derive(Subcommand, Clone, Copy)]
enum MigrateAction {
    /// Apply pending migrations (the default).
    Up {
        /// Apply at most this many.
        #[arg(long, short = 'n')]
        num: Option<u32>,
    },
    /// Roll back applied migrations (destructive).
    Down {
        /// Roll back this many.
        #[arg(long, short = 'n', default_value_t = 1)]
        num: u32,
    },
    /// List applied and pending migrations.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => serve(config),
        Command::Chain => reel::chain_cli::run(std::io::stdin().lock(), std::io::stdout().lock())
            .map_err(|e| format!("chain: {e}")),
        Command::Migrate {
            config,
            database_url,
            action,
        } => migrate(
            config,
            database_url,
            action.unwrap_or(MigrateAction::Up { num: None }),
        ),
        Command::Keys {
            config,
            database_url,
            action,
        } => keys(config, database_url, action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("reel: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: Option<PathBuf>) -> Result<(), String> {
    let config = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
    init_tracing(&config.log);
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config)
            .await
            .map_err(|e| e.to_string())?
            .release_memory_with(release_memory);
        // A machine-readable line for scripts and tests started with port 0.
        tracing::info!(addr = %app.local_addr(), "listening");
        eprintln!("reel listening on http://{}", app.local_addr());
        app.run_until(shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    })
}

fn migrate(
    config: Option<PathBuf>,
    database_url: Option<String>,
    action: MigrateAction,
) -> Result<(), String> {
    use migration::{Migrator, MigratorTrait};

    let (runtime, url) = database(config, database_url)?;
    runtime.block_on(async move {
        let db = reel::store::connect(&url, &reel::store::StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let result = match action {
            // All pending: the same locked run as a server's startup, so it is safe beside
            // starting servers.
            MigrateAction::Up { num: None } => migration::up_locked(&db).await,
            MigrateAction::Up { num } => Migrator::up(&db, num).await,
            MigrateAction::Down { num } => Migrator::down(&db, Some(num)).await,
            MigrateAction::Status => Migrator::status(&db).await,
        };
        db.close().await.ok();
        result.map_err(|e| format!("migration failed: {e}"))
    })
}

fn keys(
    config: Option<PathBuf>,
    database_url: Option<String>,
    command: KeysCommand,
) -> Result<(), String> {
    let action = match command {
        KeysCommand::Create {
            org,
            label,
            expires,
        } => KeysAction::Create {
            org,
            label,
            expires: expires
                .map(|e| parse_expiry(&e, chrono::Utc::now()))
                .transpose()
                .map_err(|e| e.to_string())?,
        },
        KeysCommand::List { org } => KeysAction::List { org },
        KeysCommand::Revoke { prefix } => KeysAction::Revoke { prefix },
    };
    let (runtime, url) = database(config, database_url)?;
    runtime.block_on(async move {
        let db = reel::store::connect(&url, &reel::store::StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let result = reel::keys_cli::run(&db, action, &mut std::io::stdout().lock()).await;
        db.close().await.ok();
        result
    })
}

/// The database URL of the config file, REEL_DATABASE_URL or --database-url (the last one
/// given wins), and a runtime to reach it on; tracing is set up from the same config.
fn database(
    config: Option<PathBuf>,
    database_url: Option<String>,
) -> Result<(tokio::runtime::Runtime, String), String> {
    let mut config = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(url) = database_url {
        config.database.url = url;
    }
    init_tracing(&config.log);
    let url = if config.database.url.is_empty() {
        DEFAULT_DATABASE_URL.to_owned()
    } else {
        config.database.url
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok((runtime, url))
}
