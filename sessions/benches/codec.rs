//! Encoding and decoding a 5-item `Cart`, in both codecs, against the stringly baseline.
//!
//! Run: `cargo bench -p sessions --features bincode --bench codec`.
//!
//! * `encode_full`: a new session: every field encoded, applied to an empty record, and the
//!   record written out.
//! * `encode_delta`: one request on a stored cart that bumps `visits`: only that field is encoded.
//! * `decode`: stored bytes → record → `Typed<Cart>` → `visits()`.
//! * `stringly_json`: what tower-sessions-like libraries do: a `HashMap<String, Value>` holding
//!   the cart under `"cart"`, serialized whole on every save (so its delta is the whole map
//!   again), and `from_slice` + `from_value` on load.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sessions::Format;
use sessions::prelude::*;
use sessions::store::{Changeset, Record, Registry};

#[derive(Serialize, Deserialize, Clone)]
struct Item {
    sku: String,
    qty: u32,
    price_cents: u64,
}

#[derive(Session, Default)]
#[session(name = "cart")]
struct Cart {
    user_id: Option<u64>,
    items: Vec<Item>,
    visits: u64,
    last_seen_unix: i64,
    coupon: Option<String>,
}

/// The same fields as `Cart`, as a stringly library's user would declare them.
#[derive(Serialize, Deserialize, Clone)]
struct CartPlain {
    user_id: Option<u64>,
    items: Vec<Item>,
    visits: u64,
    last_seen_unix: i64,
    coupon: Option<String>,
}

fn items() -> Vec<Item> {
    (0..5u32)
        .map(|i| Item {
            sku: format!("SKU-{:06}", 1000 + i),
            qty: i + 1,
            price_cents: 1999 + u64::from(i) * 250,
        })
        .collect()
}

fn cart() -> Cart {
    Cart {
        user_id: Some(4_200_042),
        items: items(),
        visits: 17,
        last_seen_unix: 1_767_225_600,
        coupon: Some("WELCOME10".into()),
    }
}

fn cart_plain() -> CartPlain {
    CartPlain {
        user_id: Some(4_200_042),
        items: items(),
        visits: 17,
        last_seen_unix: 1_767_225_600,
        coupon: Some("WELCOME10".into()),
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry.register::<Cart>().expect("register Cart");
    registry
}

const FORMATS: [(&str, Format); 3] = [
    ("json", Format::Json),
    ("bincode", Format::Bincode),
    ("msgpack", Format::MessagePack),
];

/// A new session: all fields encoded, applied to an empty record, the record written out.
fn sessions_encode_full(cart: &Typed<Cart>, format: Format) -> bytes::Bytes {
    let change = cart
        .changes(format)
        .expect("encode")
        .expect("a replaced cart is dirty");
    let mut record = Record::new();
    record
        .apply(&Changeset::from_iter([change]))
        .expect("apply to an empty record");
    record.to_bytes(format).expect("write record")
}

/// A stored record holding the cart in `format`.
fn stored_record(format: Format) -> Record {
    let mut fresh = Typed::new(Cart::default());
    fresh.replace(cart());
    let mut record = Record::new();
    let change = fresh.changes(format).expect("encode").expect("dirty");
    record
        .apply(&Changeset::from_iter([change]))
        .expect("apply");
    record
}

/// The stringly save: the whole session map, serialized.
fn stringly_encode(cart: &CartPlain) -> Vec<u8> {
    let mut map: HashMap<String, Value> = HashMap::new();
    map.insert(
        "cart".to_owned(),
        serde_json::to_value(cart).expect("to_value"),
    );
    serde_json::to_vec(&map).expect("to_vec")
}

/// The stringly load: the whole map parsed, then the cart taken out of it.
fn stringly_decode(bytes: &[u8]) -> CartPlain {
    let mut map: HashMap<String, Value> = serde_json::from_slice(bytes).expect("from_slice");
    let value = map.remove("cart").expect("a cart entry");
    serde_json::from_value(value).expect("from_value")
}

fn encode_full(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_full");
    let mut fresh = Typed::new(Cart::default());
    fresh.replace(cart());
    for (label, format) in FORMATS {
        eprintln!(
            "encode_full/sessions_{label}: {} bytes",
            sessions_encode_full(&fresh, format).len()
        );
        group.bench_function(format!("sessions_{label}"), |b| {
            b.iter(|| sessions_encode_full(black_box(&fresh), black_box(format)));
        });
    }
    let plain = cart_plain();
    eprintln!(
        "encode_full/stringly_json: {} bytes",
        stringly_encode(&plain).len()
    );
    group.bench_function("stringly_json", |b| {
        b.iter(|| stringly_encode(black_box(&plain)));
    });
    group.finish();
}

fn encode_delta(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_delta");
    let registry = registry();
    for (label, format) in FORMATS {
        let record = stored_record(format);
        let mut loaded = registry
            .load::<Cart>(&record)
            .expect("load")
            .expect("a stored cart");
        *loaded.visits_mut() += 1;
        let change = loaded.changes(format).expect("encode").expect("dirty");
        let sessions::store::SlotChange::Fields { fields, .. } = &change else {
            panic!("a stored cart writes only its changed fields");
        };
        assert_eq!(fields.len(), 1, "only `visits` is encoded");
        eprintln!(
            "encode_delta/sessions_{label}: {} bytes of field data",
            fields[0].1.len()
        );
        group.bench_function(format!("sessions_{label}"), |b| {
            b.iter(|| {
                black_box(&loaded)
                    .changes(black_box(format))
                    .expect("encode")
            });
        });
    }
    // A stringly library rewrites the whole session on every save.
    let mut plain = cart_plain();
    plain.visits += 1;
    group.bench_function("stringly_json", |b| {
        b.iter(|| stringly_encode(black_box(&plain)));
    });
    group.finish();
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    let registry = registry();
    for (label, format) in FORMATS {
        let bytes = stored_record(format).to_bytes(format).expect("write");
        group.bench_function(format!("sessions_{label}"), |b| {
            b.iter(|| {
                let record = Record::from_bytes(black_box(&bytes)).expect("read record");
                let cart = registry
                    .load::<Cart>(&record)
                    .expect("load")
                    .expect("a stored cart");
                *cart.visits()
            });
        });
    }
    let bytes = stringly_encode(&cart_plain());
    group.bench_function("stringly_json", |b| {
        b.iter(|| stringly_decode(black_box(&bytes)).visits);
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(60);
    targets = encode_full, encode_delta, decode
}
criterion_main!(benches);
