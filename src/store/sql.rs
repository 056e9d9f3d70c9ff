//! A small builder for the hand-written statements of the write path.
//!
//! The write path's statements are built as text rather than through sea-query's
//! expression trees: a 1,000-row node insert is one string and one value vector, with no
//! tree to build and render per row, and each statement reads as the SQL it sends
//! (`ON CONFLICT … DO NOTHING RETURNING`, additive counters, conditional head marks).
//! Values are bound in order of appearance: `$1, $2, …` on Postgres, `?` on SQLite.

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
        self.values.push(value.into());
        self.placeholder();
        self
    }

    /// Binds serialized JSON text: cast to `jsonb` on Postgres, stored as text on SQLite.
    /// Binding the text avoids re-parsing documents that were just serialized.
    pub(crate) fn bind_json(&mut self, json: impl Into<String>) -> &mut Self {
        self.values.push(Value::from(json.into()));
        match self.backend {
            DbBackend::Postgres => {
                self.text.push_str("CAST(");
                self.placeholder();
                self.text.push_str(" AS jsonb)");
            }
            _ => self.placeholder(),
        }
        self
    }

    pub(crate) fn binds(&self) -> usize {
        self.values.len()
    }

    pub(crate) fn build(self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text, self.values)
    }

    fn placeholder(&mut self) {
        match self.backend {
            DbBackend::Postgres => {
                let n = self.values.len();
                // Writing to a String cannot fail.
                let _ = write!(self.text, "${n}");
            }
            _ => self.text.push('?'),
        }
    }
}

/// A comma-separated list being appended to a statement (`SET a = …, b = …`).
pub(crate) struct List<'s> {
    sql: &'s mut Sql,
    empty: bool,
}

impl<'s> List<'s> {
    pub(crate) fn new(sql: &'s mut Sql) -> Self {
        List { sql, empty: true }
    }

    /// Starts the next item.
    pub(crate) fn item(&mut self) -> &mut Sql {
        if !self.empty {
            self.sql.push(", ");
        }
        self.empty = false;
        self.sql
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        for (backend, expected) in [
            (DbBackend::Postgres, "a = $1, b = CAST($2 AS jsonb)"),
            (DbBackend::Sqlite, "a = ?, b = ?"),
        ] {
            let mut sql = Sql::new(backend);
            let mut list = List::new(&mut sql);
            list.item().push("a = ").bind(1);
            list.item().push("b = ").bind_json("{}");
            assert_eq!(sql.build().sql, expected);
        }
    }
}
