//! `Record::from_bytes` on arbitrary bytes: it never panics, and whatever it accepts writes
//! back in both formats (TSON text and the binary form) to bytes that read back as the same
//! record, and that write again to the very same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sessions::Format;
use sessions::store::Record;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = Record::from_bytes(data) else {
        return;
    };
    for format in [Format::Json, Format::Bincode] {
        let bytes = match record.to_bytes(format) {
            Ok(bytes) => bytes,
            Err(err) => panic!("a record that was read cannot be written in {format}: {err}"),
        };
        let back = match Record::from_bytes(&bytes) {
            Ok(back) => back,
            Err(err) => panic!("a record written in {format} does not read back: {err}"),
        };
        assert_eq!(back, record, "{format}: the record read back differs");
        // Writing what was read back gives the same bytes: no drift across save cycles.
        match back.to_bytes(format) {
            Ok(again) => assert_eq!(again, bytes, "{format}: a second write differs"),
            Err(err) => panic!("{format}: the record read back cannot be written: {err}"),
        }
    }
});
