//! The AEADs a seal could use: seal + open of a cookie-sized payload (400 bytes, 37 bytes of
//! associated data), each cipher's key schedule made once as the key ring does. The choice and
//! its reasoning are in SECURITY.md ("The cipher").
//!
//! Run: `cargo bench -p sessions --bench seal`. Check first that the CPU has the instructions
//! the AES ciphers are fast with: `grep -o 'aes\|pclmulqdq' /proc/cpuinfo | sort | uniq -c`
//! (the `aes` and `polyval`/`ghash` crates detect them at run time).

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use criterion::{Criterion, criterion_group, criterion_main};

const PAYLOAD: usize = 400;
const AAD: &[u8] = b"\x03\x00\x00\x00\x01sessions/cookie-name-and-more";

/// One seal and one open of `payload` under a fresh (here: fixed-pattern) nonce.
fn seal_open<A: AeadInPlace>(
    cipher: &A,
    nonce: &aes_gcm::aead::Nonce<A>,
    payload: &[u8],
    buf: &mut Vec<u8>,
) {
    buf.clear();
    buf.extend_from_slice(payload);
    let Ok(tag) = cipher.encrypt_in_place_detached(nonce, AAD, buf) else {
        panic!("seal failed");
    };
    if cipher
        .decrypt_in_place_detached(nonce, AAD, buf, &tag)
        .is_err()
    {
        panic!("open failed");
    }
}

fn aeads(c: &mut Criterion) {
    let key = [0x42u8; 32];
    let payload = vec![0x5a_u8; PAYLOAD];
    let mut buf = Vec::with_capacity(PAYLOAD + 16);
    let mut group = c.benchmark_group("seal_open_400B");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let xchacha = chacha20poly1305::XChaCha20Poly1305::new(&key.into());
    let xnonce = chacha20poly1305::XNonce::from([7u8; 24]);
    group.bench_function("xchacha20poly1305_24B_nonce", |b| {
        b.iter(|| seal_open(&xchacha, &xnonce, black_box(&payload), &mut buf));
    });

    let siv = aes_gcm_siv::Aes256GcmSiv::new(&key.into());
    let siv_nonce = aes_gcm_siv::Nonce::from([7u8; 12]);
    group.bench_function("aes256gcmsiv_12B_nonce", |b| {
        b.iter(|| seal_open(&siv, &siv_nonce, black_box(&payload), &mut buf));
    });

    let gcm = aes_gcm::Aes256Gcm::new(&key.into());
    let gcm_nonce = aes_gcm::Nonce::from([7u8; 12]);
    group.bench_function("aes256gcm_12B_nonce", |b| {
        b.iter(|| seal_open(&gcm, &gcm_nonce, black_box(&payload), &mut buf));
    });
    group.finish();
}

criterion_group!(benches, aeads);
criterion_main!(benches);
