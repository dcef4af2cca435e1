//! Feeds arbitrary bytes to `rdb::load`, the loader of dump.rdb files, AOF preambles and full
//! syncs from a master. A file can be truncated, corrupted on disk or sent by a hostile peer,
//! so the loader must never panic nor allocate from an unchecked length field.
//!
//! Checked for every input that loads:
//! - it consumed at most the input (`len ≤ input length`);
//! - what it loaded saves (`rdb::save`) to a file that loads again into equal values with the
//!   same encodings and expiries, the same key count, consuming exactly that file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redsim::engine::db::Db;
use redsim::persistence::rdb::{self, LoadOptions, RdbAux, SaveOptions};

/// Dbs a fuzzed file may select; more is a load error, as with a server of 16.
const DATABASES: usize = 16;

fn dbs() -> Vec<Db> {
    (0..DATABASES).map(|i| Db::new(i, 1)).collect()
}

fuzz_target!(|data: &[u8]| {
    let opts = LoadOptions { verify_checksum: false, ..LoadOptions::default() };
    let mut first = dbs();
    let Ok(loaded) = rdb::load(data, &mut first, &opts) else {
        return;
    };
    assert!(loaded.len <= data.len(), "consumed {} of {}", loaded.len, data.len());

    let mut file = Vec::new();
    rdb::save(&mut file, &first, &RdbAux::default(), &SaveOptions::default()).expect("save to a Vec");
    let mut second = dbs();
    let again = rdb::load(&file, &mut second, &LoadOptions::default()).expect("our own file loads");
    assert_eq!(again.len, file.len());
    assert_eq!(again.keys_loaded, loaded.keys_loaded);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.len(), b.len());
        for (key, obj) in a.dict.iter() {
            let other = b.get(key).expect("key survives a save/load");
            assert_eq!(other.val, obj.val);
            assert_eq!(other.val.encoding(), obj.val.encoding());
            assert_eq!(b.expire_of(key), a.expire_of(key));
        }
    }
});
