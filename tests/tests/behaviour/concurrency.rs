//! A hundred concurrent requests on one session, each changing a different field: all hundred
//! changes survive, because a save changes only the field its request changed, of what is
//! stored when it writes. The store yields before every call, so the requests interleave
//! between their loads and their writes (most writes lose their first compare-and-swap and
//! are made again on what the others stored). The axum target also runs this on a
//! multi-thread runtime, truly in parallel.

use sessions::{Format, Session};

use super::model::Wide;
use super::support::key_of;
use super::{App, RecordingStore, browser};

pub(crate) const FIELDS: usize = 100;

pub(crate) async fn a_hundred_concurrent_requests_changing_different_fields_all_survive<A: App>() {
    assert_eq!(Wide::FIELDS.len(), FIELDS);
    let store = RecordingStore::memory().interleaving();
    let layer = sessions::SessionLayer::new(store.clone()).register::<Wide>();
    let client = browser::<A>(&layer).await;
    assert_eq!(client.post("/wide/f00").await.status(), 200);
    let id = client.session(&layer).expect("created");
    let written = store.writes().len();

    let requests: Vec<_> = Wide::FIELDS
        .iter()
        .map(|field| {
            let client = client.clone();
            let path = format!("/wide/{field}");
            tokio::task::spawn_local(async move { client.post(&path).await })
        })
        .collect();
    for request in requests {
        let response = request.await.expect("no request panics");
        assert_eq!(response.status(), 200, "{}", response.text());
    }
    // One write per request, each changing at most one field of what was stored (f00 was 1
    // already), and every other field once.
    let writes = store.writes_since(written);
    assert_eq!(writes.len(), FIELDS);
    let mut changed: Vec<String> = writes
        .iter()
        .flat_map(|write| {
            let fields = write.fields_changed();
            assert!(fields.len() <= 1, "{fields:?}");
            fields
        })
        .collect();
    changed.sort();
    let expected: Vec<String> = Wide::FIELDS[1..]
        .iter()
        .map(|field| format!("wide.{field}"))
        .collect();
    assert_eq!(changed, expected);
    assert!(
        store.calls().update > FIELDS,
        "the requests never raced: {:?}",
        store.calls()
    );

    // What the store holds: every field is 1.
    let stored = store.stored(&id).await.expect("the session exists");
    let slot = stored.record.slot("wide").expect("the slot");
    let set = Wide::FIELDS
        .iter()
        .filter(|field| {
            let bytes = slot.field(field).expect("every field is stored");
            Format::Json.decode::<u32>(bytes).expect("a u32") == 1
        })
        .count();
    assert_eq!(set, FIELDS, "only {set} of {FIELDS} changes survived");
    assert_eq!(
        writes
            .iter()
            .filter(|write| write.key != key_of(&id))
            .count(),
        0
    );
}
