//! Feeds arbitrary bytes to the cluster bus: `Framer` (cutting a link's byte stream into
//! packets) and `decode` (what `clusterProcessPacket` checks and reads). Whatever a peer sends,
//! neither may panic, and a packet that decodes must survive a round trip through `encode`.
//!
//! Checked for every input:
//! - fed to a `Framer` in two pieces (split at the first byte's value), the packets it returns
//!   are the same as when fed at once, and each is exactly `totlen` bytes;
//! - a packet that decodes, encoded again, decodes to the same message (encode writes reserved
//!   bytes as zero, so only the message, not the bytes, is compared).
#![no_main]

use libfuzzer_sys::fuzz_target;
use redsim::cluster::bus::{decode, encode, Framer};

fn packets(pieces: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut framer = Framer::new();
    let mut out = Vec::new();
    for piece in pieces {
        framer.feed(piece);
        loop {
            match framer.next() {
                Ok(Some(packet)) => out.push(packet),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let whole = packets(&[data]);
    let cut = data.first().map_or(0, |&b| usize::from(b).min(data.len()));
    let split = packets(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, split, "framing depends on how the bytes arrived (cut at {cut})");
    for packet in &whole.0 {
        let totlen = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        assert_eq!(totlen as usize, packet.len());
    }

    for packet in whole.0.iter().map(Vec::as_slice).chain([data]) {
        let Ok(msg) = decode(packet) else { continue };
        let again = decode(&encode(&msg)).expect("an encoded message failed to decode");
        assert_eq!(again, msg);
    }
});
