//! What decoding a hostile stored entry (`store::blob::decode_at`, what SQLite, PostgreSQL and
//! Redis read) may cost is bounded by its size: every count an entry claims is checked against
//! the bytes left before anything is allocated, so the bytes allocated stay within a constant
//! times the input's length, whatever the input.
//!
//! This binary's allocator counts what is allocated, and it holds one test, so that nothing
//! else runs while it measures.
#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use sessions::Format;
use sessions::store::{Deadline, Entry, Owner, Record, SessionKey, Slot, Stored, blob};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static ALLOCATOR: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// What decoding `len` bytes may allocate: 64 bytes per input byte, and 16 KiB.
fn budget(len: usize) -> usize {
    64 * len + 16 * 1024
}

/// SplitMix64: seeded, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A live entry with an owner and `slots` slots of `fields` fields each.
fn entry(slots: usize, fields: usize) -> Entry {
    let mut record = Record::new();
    for s in 0..slots {
        let values = (0..fields)
            .map(|f| (format!("f{f}").into(), Bytes::from(vec![b'1'; f])))
            .collect();
        record.insert(Slot::new(format!("slot{s}"), 1, Format::Json, values).with_revision(3));
    }
    let deadline = Deadline {
        created_at: UNIX_EPOCH,
        expires_at: UNIX_EPOCH + Duration::from_secs(60),
    };
    let mut session = Stored::new(record, deadline);
    session.owner = Some(Owner::new("42", UNIX_EPOCH).into());
    Entry::Live {
        version: 9,
        session,
    }
}

/// A live entry's head: marker, version, kind, three times, no owner.
fn live_head() -> Vec<u8> {
    let mut head = blob::prefix(1).to_vec();
    head.push(1);
    head.extend_from_slice(&[0; 24]);
    head.extend_from_slice(&u32::MAX.to_be_bytes());
    head
}

/// Entries that claim far more than they hold: 4 billion slots, or a slot of 4 billion fields,
/// or names of 4 GB, in a few dozen bytes.
fn hostile() -> Vec<Vec<u8>> {
    let big = (u32::MAX - 1).to_be_bytes();
    let mut many_slots = live_head();
    many_slots.extend_from_slice(&big);
    many_slots.extend_from_slice(&[0; 32]);
    let mut many_fields = live_head();
    many_fields.extend_from_slice(&1u32.to_be_bytes());
    many_fields.extend_from_slice(&[0; 4 + 4 + 4 + 1 + 8]);
    many_fields.extend_from_slice(&big);
    many_fields.extend_from_slice(&[0; 32]);
    let mut long_name = live_head();
    long_name.extend_from_slice(&1u32.to_be_bytes());
    long_name.extend_from_slice(&big);
    long_name.extend_from_slice(&[b'a'; 32]);
    let mut long_owner = blob::prefix(1).to_vec();
    long_owner.push(1);
    long_owner.extend_from_slice(&[0; 24]);
    long_owner.extend_from_slice(&big);
    vec![many_slots, many_fields, long_name, long_owner]
}

#[test]
fn decoding_allocates_at_most_a_multiple_of_the_input_size() {
    let key = SessionKey::from_digest([7; 32]);
    let mut rng = Rng(0x5E55_1095);
    let mut inputs = hostile();
    for _ in 0..2000 {
        let len = rng.below(2048);
        inputs.push(rng.bytes(len));
    }
    // Real entries, many slots and fields (the most a valid entry allocates per byte), cut
    // and flipped at random.
    let samples = [
        entry(0, 0),
        entry(1, 3),
        entry(40, 1),
        entry(8, 30),
        entry(200, 0),
    ];
    for sample in &samples {
        let good = blob::encode_at(&key, sample);
        inputs.push(good.clone());
        for _ in 0..200 {
            let mut bad = good.clone();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(bad.len());
                bad[at] = rng.next() as u8;
            }
            bad.truncate(rng.below(bad.len() + 1));
            inputs.push(bad);
        }
    }
    let mut decoded = 0;
    let mut worst = 0.0f64;
    for bytes in inputs {
        let len = bytes.len();
        let bytes = Bytes::from(bytes);
        let region = Region::new(ALLOCATOR);
        let result = blob::decode_at(&key, bytes);
        let change = region.change();
        let cost = change.bytes_allocated + usize::try_from(change.bytes_reallocated).unwrap_or(0);
        assert!(
            cost <= budget(len),
            "decoding {len} bytes allocated {cost} (budget {})",
            budget(len)
        );
        if len >= 256 {
            worst = worst.max(cost as f64 / len as f64);
        }
        decoded += usize::from(result.is_ok());
        drop(result);
    }
    assert!(decoded >= samples.len(), "the real entries decode");
    println!("worst: {worst:.1} bytes allocated per input byte (inputs of 256 bytes and more)");
}
