//! The `reel` binary: a thin command line over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use reel::app::{Application, shutdown_signal};
use reel::config::{Config, DEFAULT_CHAIN_RULES, DEFAULT_DATABASE_URL};
use reel::cost::PriceBook;
use reel::import_cli::{ImportOptions, Local};
use reel::keys_cli::{KeysAction, parse_expiry};
use reel::memory::Purge;
use reel::merkle::Rules;
use reel::raw_cli::RawAction;
use reel::reprocess_cli::ReprocessOptions;
use reel::sessions::{Registry, SessionSettings};
use reel::store::{CommitOptions, QuarantineFilter, RawFilter, RawOutcome, Store, StoreOptions};
use reel::telemetry::{Metrics, init_tracing};

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
    Chain {
        /// The rule set to hash by (tapes-f237b6e, tapes-6ea4dfc); default: the one a new
        /// database records.
        #[arg(long, value_name = "RULES", value_parser = parse_rules)]
        rules: Option<&'static Rules>,
    },
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
    /// Read raw turns back: every captured turn, kept verbatim, accepted or quarantined.
    ///
    /// Finds the database as `migrate` does; the schema must be migrated.
    Raw {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        action: RawCommand,
    },
    /// Delete the raw turns received before the retention period, and the request chunks
    /// no kept raw turn uses. Safe while servers ingest.
    Prune {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Delete raw turns received more than this many days ago; 0 keeps them for ever.
        /// Default: capture.retention_days of the config.
        #[arg(long, value_name = "N")]
        older_than_days: Option<u32>,
    },
    /// Run quarantined raw turns through today's parsers and commit those that pass.
    ///
    /// Oldest first, each exactly once: a row another run or a server re-derived meanwhile
    /// is skipped, a row that still fails stays quarantined, so running it again commits
    /// nothing twice. Safe while servers ingest into the same database. Prints one summary
    /// line; exits 1 when a row could not be read or committed.
    Reprocess {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        args: ReprocessArgs,
    },
    /// Rebuild every session's chains under another rule set from its raw turns, then
    /// record that rule set in the database.
    ///
    /// A session is rebuilt when its accepted raw turns hold every turn it counted; the
    /// others (history from before raw capture, a raw turn the rules reject, turns that
    /// would belong to another session) are listed and left as they are. Each session is
    /// one transaction and a killed run resumes where it stopped; a finished one answers
    /// that there is nothing to do. Stop the servers first: they hash by the database's
    /// recorded rules until the run ends.
    Rederive {
        #[command(flatten)]
        database: DatabaseArgs,
        /// The rule set to rebuild under (tapes-f237b6e, tapes-6ea4dfc).
        #[arg(long, value_name = "RULES", value_parser = parse_rules)]
        rules: &'static Rules,
    },
    /// Load existing captures through the ingest path: JSON Lines of ingest payloads and
    /// directories of wire recordings.
    ///
    /// A file is read as JSON Lines (each line a payload, or {"name":…,"payload":{…}}); a
    /// directory as wire recordings (turn-*/request.json, response.sse, meta.json), each
    /// posted as a raw-only turn. Turns are decoded, reduced, hashed, quarantined and
    /// committed as the server does it, in-process against the configured database, or
    /// posted to a running server with --url and --key.
    /// Resumable: a turn without meta.request_id gets one derived from its bytes, so a
    /// second run over the same input imports nothing. With --from-tapes it copies a
    /// database of the reference instead. Prints a summary; shows a progress bar on a
    /// terminal.
    Import {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        args: ImportArgs,
    },
}

/// What `reel import` reads and how.
#[derive(clap::Args)]
struct ImportArgs {
    /// JSON Lines files and recording directories, imported in order.
    #[arg(value_name = "PATH", required_unless_present = "from_tapes")]
    inputs: Vec<PathBuf>,
    /// Copy a database of the reference (tapes f237b6e, Postgres) instead: its sessions and
    /// nodes, every node under its own hash, linked to its session.
    #[arg(long, value_name = "URL", conflicts_with_all = ["inputs", "org", "url"])]
    from_tapes: Option<String>,
    /// Post every turn to the server at this base URL (POST /v1/ingest) instead of writing
    /// to the database: the turns land in the key's org.
    #[arg(long, value_name = "URL", conflicts_with = "org")]
    url: Option<String>,
    /// The API key to post with (Authorization: Bearer), when the server asks for keys.
    #[arg(long, value_name = "KEY", requires = "url")]
    key: Option<String>,
    /// With --url: attempts of a turn at most while the server answers 429 or 503 or
    /// cannot be reached (pausing as Retry-After asks, else 0.2 s doubling up to 10 s);
    /// a server still unavailable after them ends the import.
    #[arg(long, value_name = "N", default_value_t = 8, requires = "url")]
    attempts: u32,
    /// Import every turn into this org, as an API key of the org would (a turn whose
    /// envelope names another org is rejected).
    #[arg(long, value_name = "UUID")]
    org: Option<uuid::Uuid>,
    /// Turns waiting for their commit at most (in-process, capped by the session limits of
    /// the config).
    #[arg(long, value_name = "N", default_value_t = 64)]
    concurrency: usize,
    /// Never draw the progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Print a line per rejected turn.
    #[arg(long, short = 'v')]
    verbose: bool,
}

/// Where a database command finds its database: as `migrate` does.
#[derive(clap::Args)]
struct DatabaseArgs {
    /// Path of a TOML config file (for database.url and the settings the command reads).
    #[arg(long, short = 'c', value_name = "PATH", global = true)]
    config: Option<PathBuf>,
    /// Database URL, e.g. postgres://user@host:5432/reel or sqlite://reel.db?mode=rwc.
    #[arg(long, value_name = "URL", global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum RawCommand {
    /// Print a raw turn as the payload it was posted in, so that POSTing it again
    /// reproduces the turn.
    ///
    /// One JSON object: provider, agent_name, request (the stored bytes verbatim), response
    /// (only when the client sent one: a reduction the server made is left out),
    /// raw_response (standard base64) and raw_response_encoding when bytes are kept,
    /// raw_response_withheld when they are gone, meta and session as sent. Exits 1 for an
    /// unknown id.
    Get {
        id: uuid::Uuid,
        /// Only a raw turn of this org.
        #[arg(long, value_name = "UUID")]
        org: Option<uuid::Uuid>,
        /// Print only the request bytes, exactly as received.
        #[arg(long)]
        request: bool,
    },
    /// List raw turns in the order they were stored, one JSON line each (no bodies).
    List {
        /// Only this org's.
        #[arg(long, value_name = "UUID")]
        org: Option<uuid::Uuid>,
        /// Only this session's (its id, as the 202 answered it).
        #[arg(long, value_name = "UUID")]
        session: Option<uuid::Uuid>,
        /// Only accepted turns, or only quarantined ones.
        #[arg(long)]
        outcome: Option<OutcomeArg>,
        /// Start after this raw turn id (the last one a previous listing printed).
        #[arg(long, value_name = "ID")]
        after: Option<uuid::Uuid>,
        /// Print at most this many.
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Accepted,
    Rejected,
}

impl From<OutcomeArg> for RawOutcome {
    fn from(outcome: OutcomeArg) -> Self {
        match outcome {
            OutcomeArg::Accepted => RawOutcome::Accepted,
            OutcomeArg::Rejected => RawOutcome::Rejected,
        }
    }
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
        Command::Chain { rules } => reel::chain_cli::run(
            std::io::stdin().lock(),
            std::io::stdout().lock(),
            rules.unwrap_or(DEFAULT_CHAIN_RULES),
        )
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
        Command::Raw { database, action } => raw(database, action),
        Command::Prune {
            database,
            older_than_days,
        } => prune(database, older_than_days),
        Command::Reprocess { database, args } => reprocess(database, args),
        Command::Rederive { database, rules } => rederive(database, rules),
        Command::Import { database, args } => import(database, args),
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

    let (runtime, config) = cli_config(config, database_url)?;
    let configured = config.chain.rules().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let db = reel::store::connect(&config.database.url, &StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let result = match action {
            // All pending: the same locked run as a server's startup, so it is safe beside
            // starting servers; a new database then records its rule set, as a server would.
            MigrateAction::Up { num: None } => match migration::up_locked(&db).await {
                Ok(()) => reel::store::settle_rules(&db, configured, DEFAULT_CHAIN_RULES)
                    .await
                    .map(|rules| eprintln!("chain rules: {}", rules.name))
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("migration failed: {e}")),
            },
            MigrateAction::Up { num } => Migrator::up(&db, num)
                .await
                .map_err(|e| format!("migration failed: {e}")),
            MigrateAction::Down { num } => Migrator::down(&db, Some(num))
                .await
                .map_err(|e| format!("migration failed: {e}")),
            MigrateAction::Status => Migrator::status(&db)
                .await
                .map_err(|e| format!("migration failed: {e}")),
        };
        db.close().await.ok();
        result
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
        let db = reel::store::connect(&url, &StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let result = reel::keys_cli::run(&db, action, &mut std::io::stdout().lock()).await;
        db.close().await.ok();
        result
    })
}

fn raw(database: DatabaseArgs, command: RawCommand) -> Result<(), String> {
    let action = match command {
        RawCommand::Get { id, org, request } => RawAction::Get {
            id,
            org,
            request_only: request,
        },
        RawCommand::List {
            org,
            session,
            outcome,
            after,
            limit,
        } => RawAction::List {
            filter: RawFilter {
                org,
                session,
                outcome: outcome.map(Into::into),
            },
            after,
            limit,
        },
    };
    with_store(database, |store, _| async move {
        reel::raw_cli::run(&store, action, &mut std::io::stdout().lock()).await
    })
}

fn prune(database: DatabaseArgs, older_than_days: Option<u32>) -> Result<(), String> {
    with_store(database, |store, config| async move {
        let days = older_than_days.unwrap_or(config.capture.retention_days);
        let out = &mut std::io::stdout().lock();
        reel::raw_cli::prune(&store, days, chrono::Utc::now(), out).await
    })
}

/// Which quarantined rows `reel reprocess` takes, and how.
#[derive(clap::Args)]
struct ReprocessArgs {
    /// Only this org's rows.
    #[arg(long, value_name = "UUID")]
    org: Option<uuid::Uuid>,
    /// Only rows received at or after this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only rows of this error class: the stored reason (unsupported_provider,
    /// unparseable_request, invalid_response, reduction_failed, limit).
    #[arg(long, value_name = "CLASS")]
    reason: Option<String>,
    /// Examine at most this many rows.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
    /// Derive the turns but commit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print a line per row.
    #[arg(long, short = 'v')]
    verbose: bool,
}

fn parse_rules(name: &str) -> Result<&'static Rules, String> {
    Rules::named(name.trim()).ok_or_else(|| {
        format!(
            "unknown rule set (expected one of {})",
            Rules::names().collect::<Vec<_>>().join(", ")
        )
    })
}

fn parse_instant(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e} (expected RFC 3339, e.g. 2026-11-01T00:00:00Z)"))
}

fn reprocess(database: DatabaseArgs, args: ReprocessArgs) -> Result<(), String> {
    with_store(database, |store, config| async move {
        let prices =
            reel::cost::PriceBook::with_overrides(&config.pricing).map_err(|e| e.to_string())?;
        let options = ReprocessOptions {
            filter: QuarantineFilter {
                org: args.org,
                reason: args.reason,
                since: args.since,
            },
            limit: args.limit,
            dry_run: args.dry_run,
            verbose: args.verbose,
            body_limit: config.server.body_limit_bytes,
        };
        // Re-derived turns join chains hashed by the database's rules.
        let configured = config.chain.rules().map_err(|e| e.to_string())?;
        let rules = reel::store::settle_rules(store.connection(), configured, DEFAULT_CHAIN_RULES)
            .await
            .map_err(|e| e.to_string())?;
        let out = &mut std::io::stdout().lock();
        let report = reel::reprocess_cli::run(&store, &prices, rules, &options, out).await?;
        match report.errors {
            0 => Ok(()),
            n => Err(format!("{n} raw turns could not be read or committed")),
        }
    })
}

fn rederive(database: DatabaseArgs, rules: &'static Rules) -> Result<(), String> {
    with_store(database, |store, config| async move {
        let prices =
            reel::cost::PriceBook::with_overrides(&config.pricing).map_err(|e| e.to_string())?;
        let options = reel::rederive_cli::RederiveOptions {
            rules,
            stop_after: None,
            progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        };
        let out = &mut std::io::stdout().lock();
        reel::rederive_cli::run(&store, &prices, &options, out)
            .await
            .map(|_| ())
    })
}

/// How long an in-process import keeps a session's actor without a turn.
const IMPORT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn import(database: DatabaseArgs, args: ImportArgs) -> Result<(), String> {
    let (_, config) = cli_config(database.config, database.database_url)?;
    if let Some(url) = &args.url {
        let options = ImportOptions {
            inputs: args.inputs,
            concurrency: args.concurrency.max(1),
            body_limit: config.server.body_limit_bytes,
            progress: !args.no_progress,
            verbose: args.verbose,
        };
        let (url, key, attempts) = (url.clone(), args.key, args.attempts);
        return actix_web::rt::System::new().block_on(async move {
            let remote =
                reel::import_cli::Remote::new(&url, key, attempts).map_err(|e| e.to_string())?;
            let out = &mut std::io::stdout().lock();
            reel::import_cli::run_remote(&remote, &options, out)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
    }
    // The session actors run on actix arbiters, as in the server.
    actix_web::rt::System::new().block_on(async move {
        let prices = PriceBook::with_overrides(&config.pricing).map_err(|e| e.to_string())?;
        let db = reel::store::connect(&config.database.url, &StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        if config.database.migrate_on_start {
            reel::store::migrate(&db)
                .await
                .map_err(|e| format!("cannot migrate the database: {e}"))?;
        }
        let configured = config.chain.rules().map_err(|e| e.to_string())?;
        let rules = reel::store::settle_rules(&db, configured, DEFAULT_CHAIN_RULES)
            .await
            .map_err(|e| e.to_string())?;
        let store = command_store(db.clone(), &config);
        let out = &mut std::io::stdout().lock();
        if let Some(url) = &args.from_tapes {
            let result = reel::import_cli::run_tapes(&store, url, !args.no_progress, out).await;
            db.close().await.ok();
            return result.map(|_| ()).map_err(|e| e.to_string());
        }
        let mut settings = SessionSettings::from(&config.sessions);
        settings.org_max_in_flight = config.auth.org_max_in_flight;
        // An import is done with a session once the input moves past it: an actor idle for
        // the server's five minutes would only hold memory, so many that it would grow
        // with the number of sessions in the input. A later turn of it restarts its actor
        // from the session's row. (0, never stopping, is the server's choice, not an
        // import's.)
        if settings.idle_timeout.is_zero() || settings.idle_timeout > IMPORT_IDLE_TIMEOUT {
            settings.idle_timeout = IMPORT_IDLE_TIMEOUT;
        }
        // More turns in flight than a session may queue would be refused as a 429 is.
        let concurrency = args
            .concurrency
            .min(settings.pending_per_session)
            .min(settings.org_max_in_flight)
            .min(settings.max_in_flight)
            .max(1);
        let registry = Registry::new(
            store.clone(),
            settings,
            Metrics::new().map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("cannot start the session actors: {e}"))?;
        let target = Local {
            store,
            registry,
            prices: Arc::new(prices),
            rules,
            capture: config.capture.clone(),
            org: args.org,
        };
        let options = ImportOptions {
            inputs: args.inputs,
            concurrency,
            body_limit: config.server.body_limit_bytes,
            progress: !args.no_progress,
            verbose: args.verbose,
        };
        let result = reel::import_cli::run_local(target, &options, out).await;
        db.close().await.ok();
        result.map(|_| ()).map_err(|e| e.to_string())
    })
}

/// The store a one-shot command commits through: nodes are stamped as a server's would be.
fn command_store(db: sea_orm::DatabaseConnection, config: &Config) -> Store {
    Store::new(
        db,
        CommitOptions {
            project: Some(Arc::from(config.server.project.as_str())),
            writer_queued: None,
            group_writers: config.database.group_writers(),
        },
    )
}

/// Runs `command` on a [`Store`] over the database `database` names, with the config it
/// was found by; the schema must be migrated.
fn with_store<F, Fut>(database: DatabaseArgs, command: F) -> Result<(), String>
where
    F: FnOnce(Store, Config) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let (runtime, config) = cli_config(database.config, database.database_url)?;
    runtime.block_on(async move {
        let db = reel::store::connect(&config.database.url, &StoreOptions::default())
            .await
            .map_err(|e| format!("cannot open the database: {e}"))?;
        let store = command_store(db.clone(), &config);
        let result = command(store, config).await;
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
    let (runtime, config) = cli_config(config, database_url)?;
    Ok((runtime, config.database.url))
}

/// The config of a one-shot command: the file, the REEL_* overrides, then --database-url
/// (the last one given wins, an empty URL is the default), and a runtime to run it on;
/// tracing is set up from the same config.
fn cli_config(
    config: Option<PathBuf>,
    database_url: Option<String>,
) -> Result<(tokio::runtime::Runtime, Config), String> {
    let mut config = Config::load(config.as_deref()).map_err(|e| e.to_string())?;
    if let Some(url) = database_url {
        config.database.url = url;
    }
    if config.database.url.is_empty() {
        DEFAULT_DATABASE_URL.clone_into(&mut config.database.url);
    }
    init_tracing(&config.log);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    Ok((runtime, config))
}
