use super::scan::LEAVES;
use super::*;

#[test]
fn every_row_of_both_tables_is_a_leaf() {
    for version in Version::ALL {
        for row in version.fields() {
            assert!(
                LEAVES.iter().any(|l| l.path == row.path),
                "{}: {}",
                version.name(),
                row.path
            );
        }
        assert_eq!(version.fields().len(), LEAVES.len());
    }
}

#[test]
fn the_event_years_in_seconds() {
    use chrono::TimeZone;
    let first = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap();
    assert_eq!((first.timestamp(), end.timestamp()), (MIN_SECS, END_SECS));
}

#[test]
fn varint_lengths() {
    for v in [
        0u64,
        1,
        127,
        128,
        16_383,
        16_384,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut b = Vec::new();
        protobuf::varint(v, &mut b);
        assert_eq!(b.len(), protobuf::varint_len(v), "{v}");
    }
}
