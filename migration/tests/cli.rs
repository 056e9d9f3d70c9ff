//! The `migration` binary itself: `up`, `down` to zero and `up` again, with `status` in
//! between, against a fresh SQLite file and (when `TEST_DATABASE_URL` is set) a fresh Postgres
//! database.

use std::process::Command;

use sea_orm_migration::sea_orm::{ConnectionTrait, Database};

/// Runs the CLI and returns its combined output; panics when it fails.
fn cli(url: &str, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_migration"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the migration binary");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "migration {args:?} failed:\n{text}"
    );
    text
}

fn count(text: &str, status: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("Migration '") && l.trim_end().ends_with(status))
        .count()
}

fn up_down_up(url: &str) {
    const ALL: usize = 13;
    cli(url, &["up"]);
    assert_eq!(count(&cli(url, &["status"]), "Applied"), ALL);

    cli(url, &["down", "-n", &ALL.to_string()]);
    let status = cli(url, &["status"]);
    assert_eq!(count(&status, "Pending"), ALL, "{status}");

    cli(url, &["up"]);
    cli(url, &["refresh"]);
    assert_eq!(count(&cli(url, &["status"]), "Applied"), ALL);
}

#[test]
fn up_down_to_zero_and_up_again_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("cli.db").display());
    up_down_up(&url);
}

#[test]
fn up_down_to_zero_and_up_again_on_postgres() {
    let Some(admin) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        // Straight to stderr: the harness hides `eprintln!` of passing tests, and a skip
        // must show.
        use std::io::Write;
        let line = "skipped: the Postgres CLI run needs TEST_DATABASE_URL (Postgres)\n";
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return;
    };
    let name = format!("reel_cli_{}_{}", std::process::id(), line!());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let exec = |sql: String| {
        rt.block_on(async {
            let db = Database::connect(&admin).await.expect("connect admin");
            db.execute_unprepared(&sql).await.expect("admin statement");
            db.close().await.ok();
        })
    };
    exec(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    exec(format!("CREATE DATABASE {name}"));
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    up_down_up(&format!("{base}/{name}"));
    exec(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
