//! `reel keys create|list|revoke`: managing the API keys of an auth-mode `keys` server.
//!
//! The secret is printed once, by `create`, and never again: the database keeps only its
//! hash, and `list` shows the prefix that names it.

use std::io::Write;

use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::store::{self, ApiKey};

/// What a `reel keys` invocation asks for.
#[derive(Debug, Clone)]
pub enum KeysAction {
    Create {
        org: Uuid,
        label: Option<String>,
        expires: Option<DateTime<Utc>>,
    },
    List {
        org: Option<Uuid>,
    },
    Revoke {
        prefix: String,
    },
}

/// Why an expiry could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid expiry {0:?}: expected RFC 3339 (2027-01-31T00:00:00Z) or a duration (30d, 12h, 45m, 90s)"
)]
pub struct ExpiryError(String);

/// Reads `--expires`: an RFC 3339 instant, or a duration from `now` in whole days, hours,
/// minutes or seconds.
pub fn parse_expiry(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ExpiryError> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let bad = || ExpiryError(text.to_owned());
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (amount, unit) = text.split_at(split);
    let amount: i64 = amount.parse().map_err(|_| bad())?;
    if amount <= 0 {
        return Err(bad());
    }
    let span = match unit {
        "d" => Duration::try_days(amount),
        "h" => Duration::try_hours(amount),
        "m" => Duration::try_minutes(amount),
        "s" => Duration::try_seconds(amount),
        _ => None,
    }
    .ok_or_else(bad)?;
    now.checked_add_signed(span).ok_or_else(bad)
}

/// Runs `action` against `db`, writing what it reports to `out`.
pub async fn run(
    db: &DatabaseConnection,
    action: KeysAction,
    out: &mut impl Write,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    match action {
        KeysAction::Create {
            org,
            label,
            expires,
        } => {
            let created = store::create_key(db, org, label, expires)
                .await
                .map_err(|e| format!("cannot create the key: {e}"))?;
            writeln!(out, "{}", created.secret.expose()).map_err(io)?;
            writeln!(
                out,
                "created key {} for org {}; the secret above is shown only once",
                created.key.prefix, created.key.org_id
            )
            .map_err(io)?;
        }
        KeysAction::List { org } => {
            let keys = store::list_keys(db, org)
                .await
                .map_err(|e| format!("cannot list the keys: {e}"))?;
            writeln!(
                out,
                "prefix\torg\tlabel\tcreated\tlast_used\texpires\trevoked"
            )
            .map_err(io)?;
            for key in keys {
                writeln!(out, "{}", line(&key)).map_err(io)?;
            }
        }
        KeysAction::Revoke { prefix } => {
            let revoked = store::revoke_key(db, &prefix)
                .await
                .map_err(|e| format!("cannot revoke the key: {e}"))?;
            if !revoked {
                return Err(format!("no active key with prefix {prefix:?}"));
            }
            writeln!(
                out,
                "revoked key {prefix}; servers refuse it once their key cache expires"
            )
            .map_err(io)?;
        }
    }
    Ok(())
}

fn line(key: &ApiKey) -> String {
    let at = |t: Option<DateTime<Utc>>| t.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339());
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}",
        key.prefix,
        key.org_id,
        key.label.as_deref().unwrap_or("-"),
        key.created_at.to_rfc3339(),
        at(key.last_used_at),
        at(key.expires_at),
        at(key.revoked_at),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_forms() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_expiry("30d", now).unwrap().to_rfc3339(),
            "2026-12-31T00:00:00+00:00"
        );
        assert_eq!(parse_expiry("2h", now).unwrap(), now + Duration::hours(2));
        assert_eq!(
            parse_expiry("2027-01-31T00:00:00Z", now)
                .unwrap()
                .to_rfc3339(),
            "2027-01-31T00:00:00+00:00"
        );
        for bad in ["", "d", "0d", "-1d", "10y", "soon", "99999999999999d"] {
            assert!(parse_expiry(bad, now).is_err(), "{bad}");
        }
    }
}
