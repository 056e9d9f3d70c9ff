//! A small builder for the hand-written statements of the write path.
//!
//! Placeholders are numbered (`$1`, `$2`, …) on both backends: Postgres requires it and sqlx
//! binds SQLite's `$NNN` parameters by number, so one value bound once can be referenced from
//! every row of a multi-row `INSERT` (the org and session ids).

use std::fmt::Write as _;

use sea_orm::{DbBackend, Statement, Value};

/// Most bind parameters one statement may carry.
pub(crate) fn bind_limit(backend: DbBackend) -> usize {
    match backend {
        // The wire protocol counts parameters in an Int16.
        DbBackend::Postgres => 65_535,
        // SQLITE_MAX_VARIABLE_NUMBER of SQLite >= 3.32.
        _ => 32_766,
    }
}

pub(crate) struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub(crate) fn new(backend: DbBackend) -> Self {
        Sql {
            backend,
            text: String::with_capacity(256),
            values: Vec::new(),
        }
    }

    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Binds a value and appends its placeholder.
    pub(crate) fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        let placeholder = self.param(value);
        self.text.push_str(&placeholder);
        self
    }

    /// Binds a value once and returns its placeholder, to be written as often as needed.
    pub(crate) fn param(&mut self, value: impl Into<Value>) -> String {
        self.values.push(value.into());
        format!("${}", self.values.len())
    }

    /// Binds serialized JSON text: cast to `jsonb` on Postgres, stored as text on SQLite.
    /// Binding the text avoids re-parsing documents that were just serialized.
    pub(crate) fn bind_json(&mut self, json: Option<String>) -> &mut Self {
        self.values.push(json.into());
        let n = self.values.len();
        match self.backend {
            DbBackend::Postgres => write!(self.text, "CAST(${n} AS jsonb)"),
            _ => write!(self.text, "${n}"),
        }
        .ok();
        self
    }

    pub(crate) fn binds(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }
}
