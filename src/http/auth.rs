//! Who is calling an ingest or read route, and which org they act as.
//!
//! In `keys` mode a request carries an API key (`Authorization: Bearer …` or `X-Api-Key`);
//! its org is the request's org, whatever the body or query says
//! (docs/divergences.md#org-from-the-credential). Keys are looked up by the SHA-256 of the
//! secret, through a small cache so a turn costs no extra database round trip: an entry is
//! reused for `cache_ttl_secs`, then read again, which is how a revocation reaches every
//! replica. `last_used_at` is written at most once a minute per key, off the request path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use actix_web::http::header;
use chrono::Utc;
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use crate::config::{AuthConfig, AuthMode};
use crate::store::{self, ApiKey, Secret, SecretHash};
use crate::turn::Turn;
use crate::wire::parse_org_id;

/// The header a key may also come in, for clients that cannot set `Authorization`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// How often one key's `last_used_at` is written at most.
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

/// The org a request acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tenant {
    /// `none` mode: the org is what the request names, as before keys existed.
    Anonymous,
    /// Authenticated by a key of this org.
    Org(Uuid),
}

impl Tenant {
    /// Checks an org the request names (envelope, query, header) against the key's: empty,
    /// absent or equal is fine, another org is 403. An org that does not parse is left to
    /// the caller's own validation.
    pub fn check_named(self, named: Option<&str>) -> Result<(), ApiError> {
        let (Tenant::Org(org), Some(named)) = (self, named) else {
            return Ok(());
        };
        match parse_org_id(named.trim()) {
            Ok(id) if named.trim().is_empty() || id == org => Ok(()),
            Ok(_) => Err(ApiError::Forbidden(
                "the request names another org than its key",
            )),
            Err(_) => Ok(()),
        }
    }

    /// Binds a prepared turn to the key's org: refused (403) when its envelope names another
    /// org, else its session is the key's org's even when the envelope names none.
    pub fn claim(self, turn: &mut Turn) -> Result<(), ApiError> {
        self.check_named(turn.envelope.as_ref().map(|e| e.org_id.as_str()))?;
        turn.key.org_id = self.org_or(turn.key.org_id);
        Ok(())
    }

    /// The org the request acts as, given the one it named (already parsed).
    pub fn org_or(self, named: Uuid) -> Uuid {
        match self {
            Tenant::Anonymous => named,
            Tenant::Org(org) => org,
        }
    }
}

struct Cached {
    /// `None`: no key has this hash (remembered too, so unknown keys cost no query each).
    key: Option<ApiKey>,
    loaded: Instant,
}

/// The auth mode and its key cache; one per server, shared by every worker.
pub struct Auth {
    mode: AuthMode,
    ttl: Duration,
    capacity: usize,
    keys: Mutex<HashMap<SecretHash, Cached>>,
    /// When each key's `last_used_at` was last written by this server.
    touched: Mutex<HashMap<String, Instant>>,
}

impl Auth {
    pub fn new(config: &AuthConfig) -> Self {
        Auth {
            mode: config.mode,
            ttl: Duration::from_secs(config.cache_ttl_secs),
            capacity: config.cache_capacity,
            keys: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, hash: &SecretHash) -> Option<Option<ApiKey>> {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(hash)
            .filter(|c| c.loaded.elapsed() < self.ttl)
            .map(|c| c.key.clone())
    }

    fn remember(&self, hash: SecretHash, key: Option<ApiKey>) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= self.capacity {
            let ttl = self.ttl;
            keys.retain(|_, c| c.loaded.elapsed() < ttl);
            // Still full of live entries (e.g. a flood of made-up keys): start over rather
            // than grow; the cost is one query per key afterwards.
            if keys.len() >= self.capacity {
                keys.clear();
            }
        }
        keys.insert(
            hash,
            Cached {
                key,
                loaded: Instant::now(),
            },
        );
    }

    /// True when this server should write `key`'s `last_used_at` now.
    fn due_for_touch(&self, key: &ApiKey) -> bool {
        let recent = key
            .last_used_at
            .is_some_and(|at| (Utc::now() - at).to_std().is_ok_and(|d| d < TOUCH_INTERVAL));
        let mut touched = self.touched.lock().unwrap_or_else(|e| e.into_inner());
        if touched
            .get(&key.prefix)
            .is_some_and(|t| t.elapsed() < TOUCH_INTERVAL)
            || recent
        {
            return false;
        }
        if touched.len() >= self.capacity {
            touched.retain(|_, t| t.elapsed() < TOUCH_INTERVAL);
            if touched.len() >= self.capacity {
                touched.clear();
            }
        }
        touched.insert(key.prefix.clone(), Instant::now());
        true
    }
}

/// Authenticates `req` for an ingest or read route.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Tenant, ApiError> {
    let auth = &state.auth;
    if auth.mode == AuthMode::None {
        return Ok(Tenant::Anonymous);
    }
    let secret = presented(req).ok_or(ApiError::Unauthorized("missing API key"))?;
    let hash = secret.hash();
    let key = match auth.cached(&hash) {
        Some(key) => key,
        None => {
            let key = store::find_key(state.store.connection(), hash)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "API key lookup failed");
                    ApiError::Unavailable {
                        message: "unavailable: cannot check the API key".to_owned(),
                        retry_after: state.retry_after_secs,
                    }
                })?;
            auth.remember(hash, key.clone());
            key
        }
    };
    let key = key.ok_or(ApiError::Unauthorized("unknown API key"))?;
    let now = Utc::now();
    if key.revoked_at.is_some() {
        return Err(ApiError::Unauthorized("API key revoked"));
    }
    if !key.is_active(now) {
        return Err(ApiError::Unauthorized("API key expired"));
    }
    if auth.due_for_touch(&key) {
        let db = state.store.connection().clone();
        let prefix = key.prefix.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = store::touch_key(&db, &prefix, now).await {
                tracing::warn!(key = %prefix, error = %e, "cannot record the key's last use");
            }
        });
    }
    tracing::Span::current().record("key", tracing::field::display(&key.prefix));
    Ok(Tenant::Org(key.org_id))
}

/// The header the reference's read API takes the org from.
pub const ORG_HEADER: &str = "x-tapes-org-id";

/// Authenticates a read and returns the org it reads: the key's, else the one
/// `X-Tapes-Org-Id` names (the nil-UUID "no org" sentinel without it). A malformed header
/// is 400, and with a key, a header naming another org is 403.
pub async fn read_org(req: &HttpRequest, state: &AppState) -> Result<Uuid, ApiError> {
    let tenant = authenticate(req, state).await?;
    let named = match req.headers().get(ORG_HEADER) {
        None => Uuid::nil(),
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| ApiError::BadRequest("invalid X-Tapes-Org-Id: not text".to_owned()))?;
            tenant.check_named(Some(text))?;
            parse_org_id(text.trim())
                .map_err(|e| ApiError::BadRequest(format!("invalid X-Tapes-Org-Id: {e}")))?
        }
    };
    Ok(tenant.org_or(named))
}

/// The key of `Authorization: Bearer …`, else of `X-Api-Key`.
fn presented(req: &HttpRequest) -> Option<Secret> {
    let headers = req.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    let key = bearer.or_else(|| {
        headers
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    })?;
    (!key.is_empty()).then(|| Secret::new(key))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    const ORG: Uuid = Uuid::from_u128(7);

    #[test]
    fn a_key_comes_from_bearer_or_x_api_key() {
        let req = TestRequest::default()
            .insert_header(("authorization", "bearer  reel_a_b "))
            .to_http_request();
        assert_eq!(presented(&req), Some(Secret::new("reel_a_b")));
        let req = TestRequest::default()
            .insert_header(("x-api-key", "reel_c_d"))
            .to_http_request();
        assert_eq!(presented(&req), Some(Secret::new("reel_c_d")));
        let req = TestRequest::default()
            .insert_header(("authorization", "Basic abc"))
            .to_http_request();
        assert_eq!(presented(&req), None);
        let req = TestRequest::default()
            .insert_header(("authorization", "Bearer "))
            .to_http_request();
        assert_eq!(presented(&req), None);
    }

    #[test]
    fn a_named_org_must_be_the_keys() {
        let keyed = Tenant::Org(ORG);
        assert!(keyed.check_named(None).is_ok());
        assert!(keyed.check_named(Some("")).is_ok());
        assert!(keyed.check_named(Some(&ORG.to_string())).is_ok());
        assert!(keyed.check_named(Some(&ORG.simple().to_string())).is_ok());
        assert!(
            keyed.check_named(Some("not a uuid")).is_ok(),
            "left to validation"
        );
        let other = Uuid::from_u128(8).to_string();
        assert!(matches!(
            keyed.check_named(Some(&other)),
            Err(ApiError::Forbidden(_))
        ));
        assert!(Tenant::Anonymous.check_named(Some(&other)).is_ok());
        assert_eq!(keyed.org_or(Uuid::nil()), ORG);
        assert_eq!(Tenant::Anonymous.org_or(ORG), ORG);
    }

    #[test]
    fn the_cache_is_bounded_and_expires() {
        let auth = Auth::new(&AuthConfig {
            mode: AuthMode::Keys,
            cache_ttl_secs: 0,
            cache_capacity: 2,
            ..AuthConfig::default()
        });
        for i in 0..10 {
            auth.remember(Secret::new(format!("k{i}")).hash(), None);
            assert!(auth.keys.lock().unwrap().len() <= 2);
        }
        // A zero TTL never serves an entry: every lookup reads the database again.
        assert_eq!(auth.cached(&Secret::new("k9").hash()), None);
    }
}
