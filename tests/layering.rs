//! The layering of `src/` (ARCHITECTURE.md, "Layers"), checked on the source text.
//!
//! Modules import strictly downwards, in this order:
//! `http → sessions → store → telemetry → config → turn → capture → cost → merkle → wire → llm → gojson
//! → memory` (`memory` holds only the allocator hook).
//! The binary's glue (`app`, `main`, `chain_cli`, `keys_cli`, `raw_cli`, `reprocess_cli`,
//! `rederive_cli`, `import_cli`, `lib`) sits above them all. A few names are kept out of layers that must
//! not know them: the actor layer names no database backend or SQL, the store no actix, and
//! only the store names sea-orm or sqlx.
//!
//! Comments and `#[cfg(test)]` modules are not checked: a doc link or a unit test may reach
//! across layers without making the code depend on it.

use std::fs;
use std::path::{Path, PathBuf};

/// Top first. A module may name `crate::<m>` only for modules after itself.
const LAYERS: [&str; 13] = [
    "http",
    "sessions",
    "store",
    "telemetry",
    "config",
    "turn",
    "capture",
    "cost",
    "merkle",
    "wire",
    "llm",
    "gojson",
    "memory",
];

/// Words a layer must not contain in its code, with the reason.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "sessions",
        &[
            "DbBackend",
            "Sqlite",
            "sea_orm",
            "sqlx",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
        ],
        "the actor layer leaves storage to the store",
    ),
    ("store", &["actix"], "the store knows nothing of actors"),
    (
        "http",
        &["sea_orm", "sqlx", "Addr<"],
        "HTTP talks to handles and the store",
    ),
    ("turn", &["sea_orm", "actix", "tokio"], "turn is pure"),
    (
        "capture",
        &["sea_orm", "actix", "tokio", "std::fs"],
        "capture decoding is pure",
    ),
    (
        "merkle",
        &["sea_orm", "actix", "tokio", "std::fs"],
        "hashing is pure",
    ),
    ("wire", &["sea_orm", "actix", "tokio"], "decoding is pure"),
    ("llm", &["sea_orm", "actix", "tokio"], "parsing is pure"),
    ("gojson", &["sea_orm", "actix", "tokio"], "decoding is pure"),
];

/// The module a source file belongs to: `src/<m>.rs` or `src/<m>/…`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).ok()?;
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_owned())
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code lines of a file: no comments, nothing from the first `#[cfg(test)]` on.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, line)| line.trim() != "#[cfg(test)]")
        .filter(|(_, line)| {
            let t = line.trim_start();
            !(t.starts_with("//") || t.starts_with("*"))
        })
        .map(|(i, line)| (i + 1, line))
}

/// Every `crate::<module>` a line names.
fn crate_paths(line: &str) -> impl Iterator<Item = &str> {
    line.match_indices("crate::").filter_map(move |(i, m)| {
        let rest = &line[i + m.len()..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

fn violations() -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let Some(rank) = LAYERS.iter().position(|l| *l == module) else {
            continue;
        };
        let text = fs::read_to_string(file).expect("read source file");
        let shown = file.strip_prefix(&src).unwrap_or(file).display();
        for (number, line) in code_lines(&text) {
            for target in crate_paths(line) {
                if target == module {
                    continue;
                }
                match LAYERS.iter().position(|l| *l == target) {
                    Some(target_rank) if target_rank > rank => {}
                    Some(_) => found.push(format!(
                        "src/{shown}:{number}: {module} imports crate::{target}, a layer above it"
                    )),
                    None => found.push(format!(
                        "src/{shown}:{number}: {module} imports crate::{target}, which is not a layer"
                    )),
                }
            }
            for (layer, words, why) in FORBIDDEN {
                if *layer != module {
                    continue;
                }
                for word in words.iter().filter(|w| line.contains(**w)) {
                    found.push(format!(
                        "src/{shown}:{number}: {module} names {word:?} ({why})"
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn layers_import_strictly_downwards() {
    let found = violations();
    assert!(
        found.is_empty(),
        "layering violations:\n{}",
        found.join("\n")
    );
}

#[test]
fn every_module_of_src_has_a_place() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let glue = [
        "app",
        "main",
        "chain_cli",
        "keys_cli",
        "raw_cli",
        "reprocess_cli",
        "import_cli",
        "rederive_cli",
        "lib",
        "pricing",
    ];
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unplaced: Vec<String> = files
        .iter()
        .filter_map(|f| module_of(&src, f))
        .filter(|m| !LAYERS.contains(&m.as_str()) && !glue.contains(&m.as_str()))
        .collect();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules without a layer (add them to LAYERS or to the glue): {unplaced:?}"
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let line = "use crate::sessions::Registry; // and crate::store";
    assert_eq!(crate_paths(line).collect::<Vec<_>>(), ["sessions", "store"]);
    let code: Vec<_> = code_lines("use a;\n// crate::http\n#[cfg(test)]\nuse crate::http;")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(code, ["use a;"]);
}
