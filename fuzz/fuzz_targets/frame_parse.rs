//! Feeds arbitrary bytes to `Frame::parse`, the reply parser of redsim's own clients (the
//! simulator's workload clients, a replica reading its master). Whatever a peer sends, it must
//! not panic; and a client that reads until `parse` stops saying "incomplete" must get the same
//! frame however the bytes arrived.
//!
//! Checked for every input that parses to a frame of `used` bytes:
//! - `0 < used ≤ input length`;
//! - parsing exactly those `used` bytes gives the same frame (compared by encoding, since
//!   `Frame::Double(NaN) != Frame::Double(NaN)`);
//! - a strict prefix of them is incomplete (`Ok(None)`), never an error or another frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redsim::protocol::Frame;

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode(&mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(Some((frame, used))) = Frame::parse(data) else {
        return;
    };
    assert!(
        used > 0 && used <= data.len(),
        "used {used} of {}",
        data.len()
    );

    let (again, used_again) = Frame::parse(&data[..used])
        .expect("its own bytes failed to parse")
        .expect("its own bytes were incomplete");
    assert_eq!(used_again, used);
    assert_eq!(encoded(&again), encoded(&frame));

    // Every prefix would cost O(used²); the last byte, the middle and the first byte find the
    // cases where an incomplete read is mistaken for something else.
    for cut in [used - 1, used / 2, 1.min(used - 1)] {
        match Frame::parse(&data[..cut]) {
            Ok(None) => {}
            other => panic!("prefix of {cut}/{used} bytes gave {other:?}, not incomplete"),
        }
    }
});
