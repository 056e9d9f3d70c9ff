//! Postgres: the node rows of one insert as a single JSON document, which the statement
//! expands with `jsonb_to_recordset`. The statement then has one parameter and one text
//! whatever the number of rows, so each connection prepares and plans it once, instead of
//! once per row count (a warm group, a cold 1,000-message turn), and no bind limit splits
//! it. `bucket` and `content` are embedded as JSON values: Postgres parses each once, as it
//! did from a parameter of its own.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use super::node_row::NodeRow;

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
/// rows are inserted, and their keys locked, in chain order).
pub(super) fn render<'a>(rows: impl IntoIterator<Item = NodeInsert<'a>>) -> String {
    let mut doc = String::from("[");
    for (i, node) in rows.into_iter().enumerate() {
        if i > 0 {
            doc.push(',');
        }
        let row = node.row;
        let usage = row.usage;
        doc.push('{');
        // Writing to a String cannot fail.
        let _ = write!(
            doc,
            r#""o":"{}","s":"{}","h":"#,
            node.org_id, node.session_id
        );
        string(&mut doc, &row.hash);
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
                string(&mut doc, value);
            }
        }
        // Already JSON text: embedded as they are.
        doc.push_str(r#","b":"#);
        doc.push_str(&row.bucket);
        doc.push_str(r#","c":"#);
        doc.push_str(&row.content);
        if let Some(u) = usage {
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
    doc.push(']');
    doc
}

/// `value` as a JSON string.
fn string(doc: &mut String, value: &str) {
    doc.push('"');
    let mut start = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        doc.push_str(&value[start..i]);
        if escaped.is_empty() {
            let _ = write!(doc, "\\u{byte:04x}");
        } else {
            doc.push_str(escaped);
        }
        start = i + 1;
    }
    doc.push_str(&value[start..]);
    doc.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(value: &str) -> String {
        let mut doc = String::new();
        string(&mut doc, value);
        doc
    }

    #[test]
    fn strings_are_escaped_as_json_reads_them() {
        for value in [
            "plain",
            "quote \" and \\ back",
            "tab\tnew\nline\r",
            "\u{1}\u{1f}",
            "é—😀",
        ] {
            let doc = escaped(value);
            let back: String = serde_json::from_str(&doc).expect("valid JSON string");
            assert_eq!(back, value, "{doc}");
        }
    }

    #[test]
    fn a_row_renders_every_column_it_has() {
        let row = NodeRow {
            hash: "h1".into(),
            parent_hash: None,
            bucket: r#"{"type":"message","content":[1]}"#.into(),
            content: "[1]".into(),
            kind: Some("message".into()),
            role: Some("user".into()),
            model: None,
            provider: Some("anthropic".into()),
            agent_name: None,
            stop_reason: None,
            usage: None,
            node_kind: None,
            thread_id: None,
            is_head: true,
        };
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00.000001Z")
            .expect("time")
            .with_timezone(&Utc);
        let doc = render([NodeInsert {
            org_id: Uuid::nil(),
            session_id: Uuid::nil(),
            project: Some("p"),
            created_at: at,
            row: &row,
        }]);
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
