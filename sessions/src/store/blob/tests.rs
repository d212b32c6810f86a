use super::*;

fn entry() -> Entry {
    let mut record = Record::new();
    record.insert(
        Slot::new(
            "cart",
            2,
            crate::Format::Json,
            vec![("items".into(), Bytes::from_static(b"[1]"))],
        )
        .with_revision(3),
    );
    record.insert(Slot::from_parts(
        "x".into(),
        "tampered".into(),
        1,
        9,
        vec![("".into(), Bytes::new())],
    ));
    let mut session = Stored::new(
        record,
        Deadline {
            created_at: UNIX_EPOCH + Duration::from_millis(5),
            expires_at: UNIX_EPOCH + Duration::from_millis(90_000),
        },
    );
    session.owner = Some(Arc::new(Owner {
        name: "42".into(),
        since: UNIX_EPOCH + Duration::from_millis(7),
        agent: Some("curl".into()),
    }));
    Entry::Live {
        version: 7,
        session,
    }
}

#[test]
fn round_trips_keeping_revisions_and_type_tags() {
    let entry = entry();
    let decoded = decode(encode(&entry).into()).expect("decodes");
    assert_eq!(decoded, entry);
    let Entry::Live { session, .. } = decoded else {
        panic!("live")
    };
    assert_eq!(session.record.revision_of("cart"), 3);
    assert_eq!(
        session.record.slot("x").map(Slot::type_tag),
        Some("tampered")
    );
}

#[test]
fn every_cut_and_every_flipped_byte_is_an_error_or_another_entry_never_a_panic() {
    let bytes = encode(&entry());
    for cut in 0..bytes.len() {
        assert!(
            decode(Bytes::copy_from_slice(&bytes[..cut])).is_err(),
            "cut at {cut}"
        );
    }
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xFF;
        let _ = decode(flipped.into());
    }
}

fn key() -> SessionKey {
    crate::id::SessionId::generate()
        .map(|id| id.key())
        .unwrap_or_else(|err| panic!("{err}"))
}

#[test]
fn a_bound_entry_reads_only_under_its_key_and_an_unbound_one_under_any() {
    let (key, other) = (key(), key());
    let mark = Entry::Moved {
        version: 3,
        to: other.clone(),
        until: UNIX_EPOCH + Duration::from_secs(9),
    };
    for entry in [entry(), mark] {
        let bound = encode_at(&key, &entry);
        assert_eq!(
            decode_at(&key, bound.clone().into()).ok(),
            Some(entry.clone())
        );
        assert_eq!(decode(bound.clone().into()).ok(), Some(entry.clone()));
        let copied = decode_at(&other, bound.into()).expect_err("bound to `key`");
        assert_eq!(copied.stored_version(), Some(entry.version()));
        let unbound = encode(&entry);
        assert_eq!(decode_at(&other, unbound.into()).ok(), Some(entry));
    }
}

#[test]
fn versions_and_revisions_at_their_maximum_are_unreadable_with_their_version() {
    let Entry::Live { session, .. } = entry() else {
        panic!("live")
    };
    let at_max = Entry::Live {
        version: u64::MAX,
        session: session.clone(),
    };
    let err = decode(encode(&at_max).into()).expect_err("version at its maximum");
    assert_eq!(err.stored_version(), Some(u64::MAX));
    let mut record = session.record.clone();
    if let Some(slot) = record.remove("cart") {
        record.insert(slot.with_revision(u64::MAX));
    }
    let revision_at_max = Entry::Live {
        version: 5,
        session: Stored { record, ..session },
    };
    let err = decode(encode(&revision_at_max).into()).expect_err("revision at its maximum");
    assert_eq!(err.stored_version(), Some(5));
}

#[test]
fn an_error_after_the_version_says_the_version() {
    let mut bytes = encode(&entry());
    bytes.truncate(bytes.len() - 1);
    assert_eq!(
        decode(bytes.into()).err().and_then(|e| e.stored_version()),
        Some(7)
    );
    assert_eq!(stored_version(&prefix(7)), Some(7));
    assert_eq!(stored_version(&prefix(7)[..8]), None);
}

#[test]
fn a_count_larger_than_the_input_is_refused_before_anything_is_allocated() {
    // A live entry with no owner that claims 4 billion slots, in 50 bytes.
    let mut bytes = prefix(1).to_vec();
    bytes.push(LIVE);
    bytes.extend_from_slice(&[0; 24]);
    bytes.extend_from_slice(&NONE.to_be_bytes());
    bytes.extend_from_slice(&(u32::MAX - 1).to_be_bytes());
    bytes.extend_from_slice(&[0; 12]);
    let err = decode(bytes.into()).expect_err("too many slots");
    assert!(err.to_string().contains("count larger"), "{err}");
}

#[test]
fn a_slot_stored_twice_is_refused() {
    let mut record = Record::new();
    record.insert(Slot::new("a", 1, crate::Format::Json, vec![]));
    record.insert(Slot::new("b", 1, crate::Format::Json, vec![]));
    let deadline = Deadline {
        created_at: UNIX_EPOCH,
        expires_at: UNIX_EPOCH,
    };
    let entry = Entry::Live {
        version: 1,
        session: Stored::new(record, deadline),
    };
    let bytes = encode(&entry);
    // Rename slot `b` to `a`: the last slot's name is 1 byte right after its length.
    let at = bytes
        .windows(5)
        .rposition(|w| w == [0, 0, 0, 1, b'b'])
        .expect("slot b");
    let mut twice = bytes.clone();
    twice[at + 4] = b'a';
    let err = decode(twice.into()).expect_err("twice");
    assert!(err.to_string().contains("twice"), "{err}");
}
