//! API keys in the store: only the hash of a secret is stored, a key is found by its hash,
//! revocation and expiry are visible to the caller, listings never carry secrets.

use chrono::{Duration, Utc};
use entity::api_keys;
use reel::store::{self, Secret};
use sea_orm::EntityTrait;
use uuid::Uuid;

use crate::support::each_backend;

const ORG_A: Uuid = Uuid::from_u128(0xa);
const ORG_B: Uuid = Uuid::from_u128(0xb);

#[tokio::test]
async fn a_key_is_stored_by_hash_and_found_by_its_secret() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let created = store::create_key(&db, ORG_A, Some("ci".into()), None)
            .await
            .unwrap();
        let secret = created.secret.expose().to_owned();
        let prefix = &created.key.prefix;
        assert!(
            secret.starts_with(&format!("reel_{prefix}_")),
            "{:?}",
            t.backend
        );
        // 8 hex digits of prefix, 64 of secret: 256 random bits.
        assert_eq!(secret.len(), "reel_".len() + 8 + 1 + 64);
        assert!(!format!("{:?}", created.secret).contains(&secret));

        let rows = api_keys::Entity::find().all(&db).await.unwrap();
        assert_eq!(rows.len(), 1);
        let dump = format!("{rows:?}");
        let tail = &secret[secret.len() - 64..];
        assert!(
            !dump.contains(tail),
            "{:?}: the secret is in the row",
            t.backend
        );

        let found = store::find_key(&db, created.secret.hash())
            .await
            .unwrap()
            .expect("found by hash");
        assert_eq!(found.org_id, ORG_A);
        assert_eq!(found.label.as_deref(), Some("ci"));
        assert!(found.is_active(Utc::now()));

        let wrong = Secret::new(format!("{}x", &secret[..secret.len() - 1]));
        assert!(
            store::find_key(&db, wrong.hash()).await.unwrap().is_none(),
            "{:?}",
            t.backend
        );
    })
    .await;
}

#[tokio::test]
async fn listing_filters_by_org_and_revoking_is_final() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let a = store::create_key(&db, ORG_A, None, None).await.unwrap();
        let b = store::create_key(&db, ORG_B, None, None).await.unwrap();

        assert_eq!(store::list_keys(&db, None).await.unwrap().len(), 2);
        let only_b = store::list_keys(&db, Some(ORG_B)).await.unwrap();
        assert_eq!(only_b.len(), 1, "{:?}", t.backend);
        assert_eq!(only_b[0].prefix, b.key.prefix);

        assert!(store::revoke_key(&db, &a.key.prefix).await.unwrap());
        assert!(
            !store::revoke_key(&db, &a.key.prefix).await.unwrap(),
            "a second revocation reports nothing to do"
        );
        assert!(!store::revoke_key(&db, "00000000").await.unwrap());
        let revoked = store::find_key(&db, a.secret.hash())
            .await
            .unwrap()
            .unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(!revoked.is_active(Utc::now()), "{:?}", t.backend);
        let other = store::find_key(&db, b.secret.hash())
            .await
            .unwrap()
            .unwrap();
        assert!(other.is_active(Utc::now()));
    })
    .await;
}

#[tokio::test]
async fn expiry_and_last_use_round_trip() {
    each_backend(|t| async move {
        let db = t.connect().await;
        let soon = Utc::now() + Duration::hours(1);
        let key = store::create_key(&db, ORG_A, None, Some(soon))
            .await
            .unwrap();
        let found = store::find_key(&db, key.secret.hash())
            .await
            .unwrap()
            .unwrap();
        let expires = found.expires_at.expect("expiry stored");
        assert!(
            (expires - soon).num_milliseconds().abs() < 1,
            "{:?}",
            t.backend
        );
        assert!(found.is_active(Utc::now()));
        assert!(!found.is_active(soon + Duration::seconds(1)));
        assert!(found.last_used_at.is_none());

        let used = Utc::now();
        store::touch_key(&db, &key.key.prefix, used).await.unwrap();
        let found = store::find_key(&db, key.secret.hash())
            .await
            .unwrap()
            .unwrap();
        let last = found.last_used_at.expect("last use stored");
        assert!(
            (last - used).num_milliseconds().abs() < 1,
            "{:?}",
            t.backend
        );
    })
    .await;
}
