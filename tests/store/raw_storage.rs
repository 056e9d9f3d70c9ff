//! Raw storage grows with what each turn adds, not with the conversation it re-sends
//! (docs/capture.md §13.3).

use reel::turn::RawStored;

use crate::fixtures::*;
use crate::raw::scalar;
use crate::support::each_backend;

const TURNS: usize = 200;
const PREAMBLE: usize = 120 * 1024;
const MESSAGE: usize = 2 * 1024;

/// Request `k` of the session: the fixed preamble and the first `k` messages.
fn requests() -> Vec<Vec<u8>> {
    let head = format!(
        r#"{{"model":"claude-sonnet-4-6","max_tokens":32000,"system":"{}","messages":["#,
        prose(0, PREAMBLE)
    );
    let messages: Vec<String> = (0..TURNS)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            format!(
                r#"{{"role":"{role}","content":[{{"type":"text","text":"{}"}}]}}"#,
                prose(i as u64 + 1, MESSAGE)
            )
        })
        .collect();
    (1..=TURNS)
        .map(|k| format!("{head}{}]}}", messages[..k].join(",")).into_bytes())
        .collect()
}

#[tokio::test]
async fn two_hundred_growing_requests_take_less_than_two_megabytes() {
    let requests = requests();
    let verbatim: usize = requests.iter().map(Vec::len).sum();
    assert!(verbatim > 64_000_000, "{verbatim} bytes verbatim");
    let requests = std::sync::Arc::new(requests);
    each_backend(|t| {
        let requests = requests.clone();
        async move {
            let db = t.connect().await;
            let env = envelope("claude", "long-session");
            let mut chain = session_fixture("long session");
            let mut ids = Vec::new();
            for (k, request) in requests.iter().enumerate() {
                let raw = raw_turn(&format!("turn-{k}"), request);
                let committed = try_commit(&db, &with_raw(turn(Some(&env), &chain, TOKENS), raw))
                    .await
                    .unwrap();
                let Some(RawStored::Inserted(id)) = committed.raw else {
                    panic!("turn {k} not stored");
                };
                ids.push(id);
                chain = next_turn(&chain, &format!("u{k}"), &format!("a{k}"));
            }
            let chunks = scalar(&db, "SELECT CAST(SUM(LENGTH(data)) AS BIGINT) FROM raw_chunks").await;
            let lists =
                scalar(&db, "SELECT CAST(SUM(LENGTH(request_list)) AS BIGINT) FROM raw_turns").await;
            let stored = chunks + lists;
            eprintln!(
                "{}: {} bytes verbatim stored as {stored} bytes ({chunks} of chunks, {lists} of lists)",
                t.backend,
                requests.iter().map(Vec::len).sum::<usize>()
            );
            assert!(stored < 2_000_000, "{}: {stored} bytes", t.backend);

            for k in [0, 99, TURNS - 1] {
                let back = store(&db).raw_turn(None, ids[k]).await.unwrap().unwrap();
                assert!(back.request == requests[k], "{}: turn {k} differs", t.backend);
            }
        }
    })
    .await;
}
