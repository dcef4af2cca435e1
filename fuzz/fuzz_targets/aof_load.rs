//! Feeds arbitrary bytes to the AOF loader's parser (`parse_commands`, shared by startup
//! loading and `check-aof`) and to the manifest parser. A damaged AOF must never panic the
//! server; it loads, is trimmed, or is refused.
//!
//! Checked for every input:
//! - `Truncated { valid_up_to }`: `valid_up_to ≤ len`, and the bytes up to it parse completely
//!   to the same commands (trimming keeps exactly what was loaded);
//! - `Bad { offset }`: `offset < len`;
//! - `check::analyse` agrees: `ok_up_to ≤ size`, a format error exactly when `Bad`;
//! - a manifest that parses prints to text that parses back to the same manifest (when its
//!   escaped lines still fit the line limit).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use redsim::persistence::aof::check::analyse;
use redsim::persistence::aof::load::{parse_commands, ParseEnd};
use redsim::persistence::aof::manifest::Manifest;

fn commands(data: &[u8]) -> (Vec<Vec<Bytes>>, ParseEnd) {
    let mut out = Vec::new();
    let end = parse_commands(data, 0, &mut |argv| out.push(argv));
    (out, end)
}

fuzz_target!(|data: &[u8]| {
    let (cmds, end) = commands(data);
    match end {
        ParseEnd::Complete => {}
        ParseEnd::Truncated { valid_up_to } => {
            assert!(valid_up_to as usize <= data.len());
            let (again, end) = commands(&data[..valid_up_to as usize]);
            assert_eq!(end, ParseEnd::Complete);
            assert_eq!(again, cmds);
        }
        ParseEnd::Bad { offset } => assert!((offset as usize) < data.len()),
    }
    let a = analyse(data, 1);
    assert!(a.ok_up_to <= a.size);
    assert_eq!(a.format_error, matches!(end, ParseEnd::Bad { .. }));
    if let Ok(m) = Manifest::parse(data) {
        // Escaping can lengthen a line past the manifest's line limit; then it is refused.
        let text = m.to_text();
        if text.lines().all(|l| l.len() <= 1024) {
            assert_eq!(Manifest::parse(text.as_bytes()).as_ref(), Ok(&m));
        }
    }
});
