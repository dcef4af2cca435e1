//! Feeds arbitrary value bodies to `rdb::restore_payload`, RESTORE's decoder: any client may
//! send any payload, so a body that passes the footer check must decode or fail cleanly.
//! The input is the payload without its footer; the target appends the RDB version and the
//! right CRC64, so that the fuzzer spends its time in the value decoder rather than on
//! checksums it cannot guess.
//!
//! Checked for every body that decodes: DUMP of the value (`rdb::dump_payload`) restores to
//! an equal value with the same encoding, and (but for hashtables, whose order is the dict's)
//! dumping that gives the same bytes again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redsim::persistence::rdb;

fuzz_target!(|data: &[u8]| {
    let mut payload = data.to_vec();
    payload.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = crc::Crc::<u64>::new(&crc::CRC_64_REDIS).checksum(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let Ok(value) = rdb::restore_payload(&payload, 0) else {
        return;
    };
    let obj = redsim::engine::object::RObj::new(value, 0);
    let dumped = rdb::dump_payload(&obj);
    let again = rdb::restore_payload(&dumped, 0).expect("our own DUMP restores");
    assert_eq!(again, obj.val);
    assert_eq!(again.encoding(), obj.val.encoding());
    // A hashtable's DUMP follows its dict's order, which a restore need not reproduce (nor
    // does Redis's); every other encoding has one byte form.
    if again.encoding() != "hashtable" {
        assert_eq!(rdb::dump_payload(&redsim::engine::object::RObj::new(again, 0)), dumped);
    }
});
