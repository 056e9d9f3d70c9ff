//! `ingest_turn`: time and statements per turn, for a 20- and a 1,000-message conversation,
//! cold (the whole conversation is new: new session, every node inserted) and warm (the
//! session and its history are stored; the turn adds a user message and a reply).
//!
//! Warm comes in two flavours: `warm_known`, where the caller passes the stored hashes (what a
//! session actor remembers), and `warm_unknown`, where the store finds out by conflict.
//!
//! SQLite always (a file in a temp dir: WAL, synchronous=FULL, so each commit is an fsync;
//! and an in-memory database, to see the cost without the disk);
//! Postgres too when `REEL_BENCH_PG` or `TEST_DATABASE_URL` names a server where a database
//! may be created. Statement counts are printed before each group; they exclude BEGIN and
//! COMMIT.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use reel::merkle::Chain;
use reel::sessions::SessionKey;
use reel::store::{self, StoreOptions, TurnWrite};
use reel::wire::SessionEnvelope;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tokio::runtime::Runtime;

#[allow(dead_code)]
#[path = "../tests/store/fixtures.rs"]
mod fixtures;

use fixtures::{envelope, long_conversation, message_node, usage};

const LENGTHS: [usize; 2] = [20, 1000];

struct Backend {
    label: &'static str,
    db: DatabaseConnection,
    statements: Arc<AtomicU64>,
    /// Postgres: `(admin url, database)` to drop at the end.
    cleanup: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

async fn open(url: &str) -> (DatabaseConnection, Arc<AtomicU64>) {
    let mut db = store::connect(url, &StoreOptions::default())
        .await
        .expect("connect");
    store::migrate(&db).await.expect("migrate");
    let statements = Arc::new(AtomicU64::new(0));
    let counter = statements.clone();
    db.set_metric_callback(move |_| {
        counter.fetch_add(1, Ordering::Relaxed);
    });
    (db, statements)
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("bench.db").display()
    );
    let (db, statements) = open(&url).await;
    let mut all = vec![Backend {
        label: "sqlite",
        db,
        statements,
        cleanup: None,
        _dir: Some(dir),
    }];
    // The same without a disk: what remains is the CPU cost of encoding and SQL, without the
    // fsync of each commit (which dominates, and is noisy on a shared machine).
    let (db, statements) = open("sqlite::memory:").await;
    all.push(Backend {
        label: "sqlite_memory",
        db,
        statements,
        cleanup: None,
        _dir: None,
    });
    let pg = std::env::var("REEL_BENCH_PG")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .ok()
        .filter(|u| !u.is_empty());
    if let Some(admin_url) = pg {
        let name = format!("reel_bench_{}", std::process::id());
        let admin = Database::connect(&admin_url).await.expect("connect admin");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create bench database");
        admin.close().await.ok();
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let (db, statements) = open(&format!("{base}/{name}")).await;
        all.push(Backend {
            label: "postgres",
            db,
            statements,
            cleanup: Some((admin_url, name)),
            _dir: None,
        });
    }
    all
}

async fn ingest(
    db: &DatabaseConnection,
    env: &SessionEnvelope,
    chain: &Chain,
    known: Option<&HashSet<String>>,
) -> store::IngestOutcome {
    let key = SessionKey::resolve(Some(env), chain);
    store::ingest_turn(
        db,
        TurnWrite {
            key: &key,
            envelope: Some(env),
            chain,
            input_tokens: 12,
            output_tokens: 8,
            cost_usd: 0.0012,
            known,
        },
    )
    .await
    .expect("ingest")
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
    let backends = rt.block_on(backends());
    let mut sequence = 0u64;
    let mut next = move || {
        sequence += 1;
        sequence
    };

    for backend in &backends {
        let db = &backend.db;
        let mut group = c.benchmark_group(format!("ingest_turn/{}", backend.label));
        group.sample_size(20);
        // Warm first, on a database holding only the two base conversations, so that the
        // comparison between lengths is not skewed by what the cold runs add.
        for len in LENGTHS {
            // The history is stored; each turn forks a new user message off it.
            let env = envelope("bench", &format!("warm-{len}"));
            let base = long_conversation(&format!("warm-{len}"), len);
            rt.block_on(ingest(db, &env, &base, None));
            let known: HashSet<String> = base.nodes.iter().map(|n| n.hash.clone()).collect();
            let probe = extend(&base, next());
            let n = statements_of(backend, &rt, ingest(db, &env, &probe, Some(&known)));
            println!(
                "{}: warm, {len} messages, known: {n} statements per turn",
                backend.label
            );
            let probe = extend(&base, next());
            let n = statements_of(backend, &rt, ingest(db, &env, &probe, None));
            println!(
                "{}: warm, {len} messages, unknown: {n} statements per turn",
                backend.label
            );
            // Routines hand their input back so that dropping it is not timed.
            group.bench_function(format!("warm_known/{len}"), |b| {
                b.iter_batched(
                    || extend(&base, next()),
                    |chain| {
                        rt.block_on(ingest(db, &env, &chain, Some(&known)));
                        chain
                    },
                    BatchSize::PerIteration,
                )
            });
            group.bench_function(format!("warm_unknown/{len}"), |b| {
                b.iter_batched(
                    || extend(&base, next()),
                    |chain| {
                        rt.block_on(ingest(db, &env, &chain, None));
                        chain
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        for len in LENGTHS {
            // Cold: a conversation never seen, in a session never seen.
            let tag = next();
            let probe = long_conversation(&format!("probe-{tag}"), len);
            let env = envelope("bench", &format!("cold-probe-{tag}"));
            let n = statements_of(backend, &rt, ingest(db, &env, &probe, None));
            println!(
                "{}: cold, {len} messages: {n} statements per turn",
                backend.label
            );
            group.bench_function(format!("cold/{len}"), |b| {
                b.iter_batched(
                    || {
                        let tag = next();
                        let env = envelope("bench", &format!("cold-{len}-{tag}"));
                        (env, long_conversation(&format!("cold-{tag}"), len))
                    },
                    |(env, chain)| {
                        rt.block_on(ingest(db, &env, &chain, None));
                        (env, chain)
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        group.finish();
    }

    for backend in backends {
        rt.block_on(async {
            backend.db.close().await.ok();
            if let Some((admin_url, name)) = backend.cleanup
                && let Ok(admin) = Database::connect(&admin_url).await
            {
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                admin.execute_unprepared(&drop).await.ok();
            }
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
