use super::*;

fn key(byte: u8) -> SessionKey {
    SessionKey::from_digest([byte; 32])
}

#[test]
fn recent_writes_keep_the_highest_version_and_a_delete_needs_the_primary() {
    let recent = Recent::new();
    assert_eq!(
        recent.get(&key(1)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::None
    );
    recent.note(&key(1), Some(4), 10);
    recent.note(&key(1), Some(3), 11);
    assert_eq!(
        recent.get(&key(1)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::AtLeast(4)
    );
    recent.note(&key(1), None, 12);
    recent.note(&key(1), Some(9), 13);
    assert_eq!(
        recent.get(&key(1)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::Latest
    );
    recent.note(&key(2), Some(1), 20);
    recent.forget_before(13);
    assert_eq!(
        recent.get(&key(1)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::Latest
    );
    recent.forget_before(14);
    assert_eq!(
        recent.get(&key(1)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::None
    );
    assert_eq!(
        recent.get(&key(2)).map_or(ReadMark::None, |(mark, _)| mark),
        ReadMark::AtLeast(1)
    );
}

#[tokio::test]
async fn a_replica_is_fresh_up_to_the_last_primary_sample_it_replayed() {
    let pool = PostgresStore::pool_options()
        .connect_lazy("postgres://127.0.0.1:1/none")
        .expect("a lazy pool");
    let replicas = Replicas::new(vec![pool], Duration::from_secs(2));
    lock(&replicas.samples).extend([(10, 100), (20, 200), (30, 300)]);
    assert_eq!(replicas.fresh_point(99), None);
    assert_eq!(replicas.fresh_point(100), Some(10));
    assert_eq!(replicas.fresh_point(299), Some(20));
    assert_eq!(replicas.fresh_point(1000), Some(30));
}
