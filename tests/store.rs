//! Black-box tests of `reel::store` against real databases: SQLite always, Postgres too when
//! `TEST_DATABASE_URL` is set (one fresh database per test and backend).

mod support;

#[path = "store/atomicity.rs"]
mod atomicity;
#[path = "store/backfill.rs"]
mod backfill;
#[path = "store/concurrency.rs"]
mod concurrency;
#[path = "store/connect.rs"]
mod connect;
#[path = "store/fixtures.rs"]
mod fixtures;
#[path = "store/identity.rs"]
mod identity;
#[path = "store/ingest.rs"]
mod ingest;
#[path = "store/migrations.rs"]
mod migrations;
#[path = "store/orgs.rs"]
mod orgs;
#[path = "store/parents.rs"]
mod parents;
#[path = "store/reads.rs"]
mod reads;
#[path = "store/statements.rs"]
mod statements;
