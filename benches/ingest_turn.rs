//! `ingest_turn`: time and statements per turn, for a 20- and a 1,000-message conversation,
//! cold (the whole conversation is new: new session, every node inserted) and warm (the
//! session and its history are stored; the turn adds a user message and a reply).
//!
//! Warm comes in two flavours: `warm_known`, where the caller passes the stored hashes (what a
//! session actor remembers), and `warm_unknown`, where the store finds out by conflict.
//!
//! Each (backend, length) runs on a fresh database. SQLite always (a file in a temp dir: WAL,
//! synchronous=FULL, so each commit is an fsync; and an in-memory database, to see the cost
//! without the disk);
//! Postgres too when `REEL_BENCH_PG` or `TEST_DATABASE_URL` names a server where a database
//! may be created. Statement counts are printed before each group; they exclude BEGIN and
//! COMMIT.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use reel::merkle::Chain;
use reel::store::{self, CommitOptions, Store, StoreOptions};
use reel::turn::{KnownHashes, Turn};
use reel::wire::SessionEnvelope;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::runtime::Runtime;

#[allow(dead_code)]
#[path = "../tests/store/fixtures.rs"]
mod fixtures;

use fixtures::{Tokens, envelope, long_conversation, message_node, turn, usage};

const LENGTHS: [usize; 2] = [20, 1000];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file in a temp dir: WAL, synchronous=FULL, so each commit is an fsync.
    Sqlite,
    /// The same without a disk: what remains is the cost of encoding and SQL, without the
    /// fsync of each commit (which dominates, and is noisy on a shared machine).
    SqliteMemory,
    Postgres,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::SqliteMemory => "sqlite_memory",
            Kind::Postgres => "postgres",
        }
    }
}

/// The Postgres server benches may create databases on, if any.
fn postgres_admin_url() -> Option<String> {
    std::env::var("REEL_BENCH_PG")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh, migrated database with a statement counter.
struct Backend {
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
    /// Postgres: `(admin url, database)` to drop at the end.
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    async fn open(kind: Kind, tag: &str) -> Backend {
        let mut dir = None;
        let mut cleanup = None;
        let url = match kind {
            Kind::Sqlite => {
                let d = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}?mode=rwc", d.path().join("bench.db").display());
                dir = Some(d);
                url
            }
            Kind::SqliteMemory => "sqlite::memory:".to_owned(),
            Kind::Postgres => {
                let admin_url = postgres_admin_url().expect("a Postgres server");
                let name = format!("reel_bench_{}_{tag}", std::process::id());
                let admin = Database::connect(&admin_url).await.expect("connect admin");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create bench database");
                admin.close().await.ok();
                let base = admin_url
                    .rsplit_once('/')
                    .map_or(admin_url.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                cleanup = Some((admin_url, name));
                url
            }
        };
        let mut db = store::connect(&url, &StoreOptions::default())
            .await
            .expect("connect");
        store::migrate(&db).await.expect("migrate");
        let statements = Arc::new(AtomicU64::new(0));
        let counter = statements.clone();
        db.set_metric_callback(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        });
        Backend {
            db,
            statements,
            cleanup,
            _dir: dir,
        }
    }

    async fn close(self) {
        self.db.close().await.ok();
        if let Some((admin_url, name)) = self.cleanup
            && let Ok(admin) = Database::connect(&admin_url).await
        {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            admin.execute_unprepared(&drop).await.ok();
        }
    }
}

const TOKENS: Tokens = Tokens {
    input: 12,
    output: 8,
    cost_usd: 0.0012,
};

/// The turn of `chain` in `env`'s session, built outside the timed part.
fn turn_of(env: &SessionEnvelope, chain: &Chain) -> Turn {
    turn(Some(env), chain, TOKENS)
}

/// Commits one turn in its own transaction, as the store commits a session's single turn.
async fn ingest(store: &Store, turn: &Turn, known: &KnownHashes) {
    store
        .transaction(std::slice::from_ref(turn), known)
        .await
        .expect("ingest");
}

/// `base` plus a new user message and a reply: a warm turn.
fn extend(base: &Chain, n: u64) -> Chain {
    let mut nodes = base.nodes.clone();
    if let Some(last) = nodes.last_mut() {
        last.stop_reason.clear();
        last.usage = None;
    }
    let user = message_node(
        Some(&nodes[nodes.len() - 1].hash),
        "user",
        &format!("follow-up {n}"),
    );
    let mut reply = message_node(Some(&user.hash), "assistant", &format!("answer {n}"));
    reply.stop_reason = "stop".into();
    reply.usage = Some(usage());
    nodes.push(user);
    nodes.push(reply);
    Chain { nodes }
}

fn statements_of<F: std::future::Future>(backend: &Backend, rt: &Runtime, f: F) -> u64 {
    let before = backend.statements.load(Ordering::Relaxed);
    rt.block_on(f);
    backend.statements.load(Ordering::Relaxed) - before
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    let mut kinds = vec![Kind::Sqlite, Kind::SqliteMemory];
    if postgres_admin_url().is_some() {
        kinds.push(Kind::Postgres);
    }
    let mut sequence = 0u64;
    let mut next = move || {
        sequence += 1;
        sequence
    };

    for kind in kinds {
        let label = kind.label();
        let mut group = c.benchmark_group(format!("ingest_turn/{label}"));
        group.sample_size(20);
        // Each length on its own fresh database, so that lengths compare fairly: a database
        // that grew during earlier runs would make later ones slower.
        for len in LENGTHS {
            let backend = rt.block_on(Backend::open(kind, &len.to_string()));
            let store = {
                let _runtime = rt.enter();
                Store::new(backend.db.clone(), CommitOptions::default())
            };
            let db = &store;
            let unknown = KnownHashes::default();

            // Warm: the history is stored; each turn forks a new user message off it.
            let env = envelope("bench", &format!("warm-{len}"));
            let base = long_conversation(&format!("warm-{len}"), len);
            rt.block_on(ingest(db, &turn_of(&env, &base), &unknown));
            let mut known = KnownHashes::with_capacity(usize::MAX);
            known.remember(&base);
            let probe = turn_of(&env, &extend(&base, next()));
            let n = statements_of(&backend, &rt, ingest(db, &probe, &known));
            println!("{label}: warm, {len} messages, known: {n} statements per turn");
            let probe = turn_of(&env, &extend(&base, next()));
            let n = statements_of(&backend, &rt, ingest(db, &probe, &unknown));
            println!("{label}: warm, {len} messages, unknown: {n} statements per turn");
            // Routines hand their input back so that dropping it is not timed.
            group.bench_function(format!("warm_known/{len}"), |b| {
                b.iter_batched(
                    || turn_of(&env, &extend(&base, next())),
                    |turn| {
                        rt.block_on(ingest(db, &turn, &known));
                        turn
                    },
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(format!("warm_unknown/{len}"), |b| {
                b.iter_batched(
                    || turn_of(&env, &extend(&base, next())),
                    |turn| {
                        rt.block_on(ingest(db, &turn, &unknown));
                        turn
                    },
                    BatchSize::PerIteration,
                )
            });

            // Cold: a conversation never seen, in a session never seen.
            let tag = next();
            let probe = long_conversation(&format!("probe-{tag}"), len);
            let env = envelope("bench", &format!("cold-probe-{tag}"));
            let n = statements_of(&backend, &rt, ingest(db, &turn_of(&env, &probe), &unknown));
            println!("{label}: cold, {len} messages: {n} statements per turn");
            group.bench_function(format!("cold/{len}"), |b| {
                b.iter_batched(
                    || {
                        let tag = next();
                        let env = envelope("bench", &format!("cold-{len}-{tag}"));
                        turn_of(&env, &long_conversation(&format!("cold-{tag}"), len))
                    },
                    |turn| {
                        rt.block_on(ingest(db, &turn, &unknown));
                        turn
                    },
                    BatchSize::PerIteration,
                )
            });
            drop(store);
            rt.block_on(backend.close());
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
