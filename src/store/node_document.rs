//! Postgres: the node rows of one insert as a single JSON document, which the statement
//! expands with `jsonb_to_recordset`. The statement then has one parameter and one text
//! whatever the number of rows, so each connection prepares and plans it once, instead of
//! once per row count (a warm group, a cold 1,000-message turn), and no bind limit splits
//! it. `bucket` and `content` are embedded as JSON values: Postgres parses each once, as it
//! did from a parameter of its own.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::StoreError;
use super::node_row::NodeRow;
use crate::merkle::write_str;

/// One node row with the values its turn stamps on it.
pub(super) struct NodeInsert<'a> {
    pub org_id: Uuid,
    pub session_id: Uuid,
    pub project: Option<&'a str>,
    pub created_at: DateTime<Utc>,
    pub row: &'a NodeRow,
}

/// The statement's `SELECT … FROM jsonb_to_recordset(`, then the document, then
/// [`RECORD`]; in the column order of `INSERT INTO nodes (…)` in `ingest.rs`.
/// A JSON `null` comes out of the record as SQL NULL; `content` stores it as JSON `null`,
/// as the bound value did.
pub(super) const SELECT: &str = "SELECT o, s, h, p, b, COALESCE(c, 'null'::jsonb), t, r, m, pv, \
     a, sr, pt, ct, tt, cc, cr, td, pd, pj, ca, nk, th, hd FROM jsonb_to_recordset(";

/// The record type of the document's objects.
pub(super) const RECORD: &str = ") AS v (o uuid, s uuid, h text, p text, b jsonb, c jsonb, \
     t text, r text, m text, pv text, a text, sr text, pt integer, ct integer, tt integer, \
     cc integer, cr integer, td bigint, pd bigint, pj text, ca timestamptz, nk text, th text, \
     hd boolean)";

/// The rows as a JSON array of objects, in order (`jsonb_to_recordset` keeps it, so the
/// rows are inserted, and their keys locked, in chain order). Strings are written by the
/// canonical writer of the hash input, whose escapes any JSON reader takes.
pub(super) fn render<'a>(
    rows: impl IntoIterator<Item = NodeInsert<'a>>,
) -> Result<String, StoreError> {
    let mut doc = Vec::from(*b"[");
    for (i, node) in rows.into_iter().enumerate() {
        if i > 0 {
            doc.push(b',');
        }
        let row = node.row;
        // Writing to a Vec cannot fail.
        let _ = write!(
            doc,
            r#"{{"o":"{}","s":"{}","h":"#,
            node.org_id, node.session_id
        );
        write_str(&mut doc, &row.hash);
        for (key, value) in [
            ("p", row.parent_hash.as_deref()),
            ("t", row.kind.as_deref()),
            ("r", row.role.as_deref()),
            ("m", row.model.as_deref()),
            ("pv", row.provider.as_deref()),
            ("a", row.agent_name.as_deref()),
            ("sr", row.stop_reason.as_deref()),
            ("pj", node.project),
            ("nk", row.node_kind.as_deref()),
            ("th", row.thread_id.as_deref()),
        ] {
            if let Some(value) = value {
                let _ = write!(doc, r#","{key}":"#);
                write_str(&mut doc, value);
            }
        }
        // Already JSON text: embedded as they are.
        doc.extend_from_slice(br#","b":"#);
        doc.extend_from_slice(row.bucket.as_bytes());
        doc.extend_from_slice(br#","c":"#);
        doc.extend_from_slice(row.content.as_bytes());
        if let Some(u) = row.usage {
            let _ = write!(
                doc,
                r#","pt":{},"ct":{},"tt":{},"cc":{},"cr":{},"td":{},"pd":{}"#,
                u.prompt_tokens,
                u.completion_tokens,
                u.total_tokens,
                u.cache_creation_input_tokens,
                u.cache_read_input_tokens,
                u.total_duration_ns,
                u.prompt_duration_ns
            );
        }
        let _ = write!(
            doc,
            r#","ca":"{}","hd":{}}}"#,
            node.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            row.is_head
        );
    }
    doc.push(b']');
    // Every piece is UTF-8 (strings, JSON text, ASCII punctuation), so this cannot fail.
    String::from_utf8(doc)
        .map_err(|e| StoreError::InvalidChain(format!("node document is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(model: &str) -> NodeRow {
        NodeRow {
            hash: "h1".into(),
            parent_hash: None,
            bucket: r#"{"type":"message","content":[1]}"#.into(),
            content: "[1]".into(),
            kind: Some("message".into()),
            role: Some("user".into()),
            model: Some(model.into()),
            provider: Some("anthropic".into()),
            agent_name: None,
            stop_reason: None,
            usage: None,
            node_kind: None,
            thread_id: None,
            is_head: true,
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00.000001Z")
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn strings_come_back_as_they_were() {
        for value in [
            "plain",
            "quote \" and \\ back",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}",
            "é—😀",
        ] {
            let row = row(value);
            let doc = render([NodeInsert {
                org_id: Uuid::nil(),
                session_id: Uuid::nil(),
                project: None,
                created_at: at(),
                row: &row,
            }])
            .expect("render");
            let back: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
            assert_eq!(back[0]["m"], value, "{doc}");
        }
    }

    #[test]
    fn a_row_renders_every_column_it_has() {
        let row = row("m");
        let doc = render([NodeInsert {
            org_id: Uuid::nil(),
            session_id: Uuid::nil(),
            project: Some("p"),
            created_at: at(),
            row: &row,
        }])
        .expect("render");
        let value: serde_json::Value = serde_json::from_str(&doc).expect("valid JSON");
        let object = &value[0];
        assert_eq!(object["h"], "h1");
        assert_eq!(object["b"]["content"][0], 1);
        assert_eq!(object["c"][0], 1);
        assert_eq!(object["pj"], "p");
        assert_eq!(object["ca"], "2026-12-01T10:00:00.000001Z");
        assert_eq!(object["hd"], true);
        assert!(object.get("p").is_none() && object.get("pt").is_none());
    }
}
