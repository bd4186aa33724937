//! The callback receive path, piece by piece and whole, on the shared fixture (a 312-byte text
//! message with Chinese content, as WeCom sends it): signature check, base64 + AES-256-CBC
//! decrypt, and the whole path from the POST body to a typed callback.
//!
//! `cargo bench --bench callback_path`; results in docs/performance.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use serde::Deserialize;
use wecom_scrm::wecom::callback::{parse_callback, parse_envelope};
use wecom_scrm::wecom::crypto::WecomCrypto;
use wecom_scrm::wecom::xml::parse_fields;

#[derive(Deserialize)]
struct Fixture {
    token: String,
    encoding_aes_key: String,
    corp_id: String,
    msg_signature: String,
    timestamp: String,
    nonce: String,
    encrypt: String,
    body: String,
    plaintext: String,
}

fn fixture() -> Fixture {
    serde_json::from_str(include_str!("data/callback-fixture.json")).expect("the fixture parses")
}

fn callback_path(c: &mut Criterion) {
    let f = fixture();
    let crypto = WecomCrypto::new(
        SecretString::from(f.token.clone()),
        &f.encoding_aes_key,
        f.corp_id.clone(),
    )
    .expect("the fixture's key is valid");
    // The fixture must decrypt to its plaintext, or the figures mean nothing.
    assert_eq!(
        crypto
            .verify_and_decrypt(&f.msg_signature, &f.timestamp, &f.nonce, &f.encrypt)
            .expect("the fixture verifies"),
        f.plaintext
    );

    let mut group = c.benchmark_group("callback");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signature", |b| {
        b.iter(|| {
            crypto
                .verify_signature(
                    black_box(&f.msg_signature),
                    &f.timestamp,
                    &f.nonce,
                    black_box(&f.encrypt),
                )
                .expect("verifies")
        })
    });
    group.bench_function("decrypt", |b| {
        b.iter(|| crypto.decrypt(black_box(&f.encrypt)).expect("decrypts"))
    });
    group.bench_function("envelope", |b| {
        b.iter(|| parse_envelope(black_box(&f.body)).expect("an envelope"))
    });
    group.bench_function("inner xml fields", |b| {
        b.iter(|| parse_fields(black_box(&f.plaintext)).expect("parses"))
    });
    group.bench_function("parse inner xml", |b| {
        b.iter(|| parse_callback(black_box(&f.plaintext)).expect("parses"))
    });
    group.bench_function("full: body to typed callback", |b| {
        b.iter(|| {
            let envelope = parse_envelope(black_box(&f.body)).expect("an envelope");
            let xml = crypto
                .verify_and_decrypt(&f.msg_signature, &f.timestamp, &f.nonce, &envelope.encrypt)
                .expect("verifies and decrypts");
            parse_callback(&xml).expect("parses")
        })
    });
    group.finish();
}

criterion_group!(benches, callback_path);
criterion_main!(benches);
