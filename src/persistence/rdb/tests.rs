use super::blob::listpack_build;
use super::write::{put_len, put_string};
use super::*;
use crate::engine::hash::{Hash, HashLimits};
use crate::engine::list::List;
use crate::engine::object::Str;
use crate::engine::set::Set;
use crate::engine::zset::{Limits, Zset};

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn string(v: &[u8]) -> Value {
    Value::Str(Str::from_bytes(v))
}

fn list(items: &[&[u8]]) -> Value {
    let mut l = List::new(-2);
    for i in items {
        l.push_back(i);
    }
    Value::List(Box::new(l))
}

fn set(items: &[&[u8]], max_intset: u64) -> Value {
    let mut s = Set::new_intset();
    for i in items {
        s.add(i, max_intset, 7);
    }
    Value::Set(s)
}

fn hash(pairs: &[(&[u8], &[u8])], max_entries: usize) -> Value {
    let lim = HashLimits { max_entries, max_value: 64, seed: 9 };
    let mut h = Hash::default();
    for (f, v) in pairs {
        h.set(f, v, lim);
    }
    Value::Hash(Box::new(h))
}

fn zset(pairs: &[(&[u8], f64)], max_entries: usize) -> Value {
    let lim = Limits { max_entries, max_value: 64 };
    let mut z = Zset::new_listpack();
    for (m, s) in pairs {
        z.insert(m, *s, lim, 3);
    }
    Value::Zset(Box::new(z))
}

fn obj(v: Value) -> RObj {
    RObj::new(v, 0)
}

/// Payloads captured from Redis 7.0.15's DUMP for the same values.
#[test]
fn dump_payloads_are_byte_identical_to_redis() {
    let cases: Vec<(Value, &str)> = vec![
        (string(b"hello"), "000568656c6c6f0a006372df766534200a"),
        (string(b"12345"), "00c139300a009d94ea2793fc08b9"),
        (string(b"2147483648"), "000a323134373438333634380a00e7b129a34c1d76ee"),
        (string(&[b'a'; 50]), "00c30932016161e025000161610a0009ac48b9ab15fbc9"),
        (
            list(&[b"1", b"-1", b"300", b"hello"]),
            "120102161600000004000101dfff02c12c028568656c6c6f06ff0a00f423dc63f62165d9",
        ),
        (set(&[b"1", b"2", b"70000"], 512), "0b1404000000030000000100000002000000701101000a0085d5c1065b1dd055"),
        (hash(&[(b"f", b"v"), (b"f2", b"12")], 128), "1013130000000400816602817602826632030c01ff0a00f364f98889042e20"),
        (
            zset(&[(b"a", 1.0), (b"b", 1.5), (b"c", -3.0), (b"d", 1e100), (b"e", f64::INFINITY)], 128),
            "112d2d0000000a00816302dffd02816102010181620283312e35048164028631652b3130300781650283696e6604ff0a0098e6eeccddd2023c",
        ),
    ];
    for (v, want) in cases {
        let got = dump_payload(&obj(v.clone()));
        assert_eq!(got, hex(want), "{v:?}");
        assert_eq!(restore_payload(&got, 0).unwrap(), v);
    }
}

#[test]
fn strings_use_int_encodings_only_for_canonical_integers() {
    let enc = |s: &[u8]| {
        let mut out = Vec::new();
        put_string(&mut out, s, true);
        out
    };
    assert_eq!(enc(b"-5"), [0xC0, 0xFB]);
    assert_eq!(enc(b"300"), [0xC1, 0x2C, 0x01]);
    assert_eq!(enc(b"70000"), [0xC2, 0x70, 0x11, 0x01, 0x00]);
    assert_eq!(enc(b"2147483648")[0], 10, "beyond 32 bits: raw");
    assert_eq!(enc(b"007")[0], 3, "leading zeros: raw");
    assert_eq!(enc(b"-0")[0], 2, "negative zero: raw");
}

#[test]
fn lzf_only_past_20_bytes_and_only_when_it_shrinks() {
    let enc = |s: &[u8], compress| {
        let mut out = Vec::new();
        put_string(&mut out, s, compress);
        out
    };
    assert_eq!(enc(&[b'a'; 20], true)[0], 20, "20 bytes are stored raw");
    assert_eq!(enc(&[b'a'; 21], true)[0], 0xC3, "21 compressible bytes are LZF");
    assert_eq!(enc(&[b'a'; 21], false)[0], 21, "rdbcompression no");
    let noise: Vec<u8> = (0..40u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert_eq!(enc(&noise, true)[0], 40, "incompressible stays raw");
}

fn sample_db(id: usize) -> Db {
    let mut db = Db::new(id, 1);
    let big: Vec<Vec<u8>> = (0..300).map(|i| format!("element-{i}-{}", "x".repeat(i % 50)).into_bytes()).collect();
    let big_refs: Vec<&[u8]> = big.iter().map(|v| v.as_slice()).collect();
    let pairs: Vec<(&[u8], &[u8])> = big_refs.iter().map(|b| (*b, *b)).collect();
    let scored: Vec<(&[u8], f64)> = big_refs.iter().enumerate().map(|(i, b)| (*b, i as f64 * 0.5 - 7.0)).collect();
    let ints: Vec<Vec<u8>> = (0..600).map(|i| (i * 1000 - 5).to_string().into_bytes()).collect();
    let int_refs: Vec<&[u8]> = ints.iter().map(|v| v.as_slice()).collect();
    let entries: Vec<(&str, Value)> = vec![
        ("int", string(b"-123456789")),
        ("embstr", string(b"short string")),
        ("raw", string(&[b'q'; 100])),
        ("noise", string(&(0..200u32).map(|i| (i * 7919 % 251) as u8).collect::<Vec<_>>())),
        ("list-small", list(&[b"a", b"1", b"-70000", b""])),
        ("list-big", list(&big_refs)),
        ("set-intset", set(&[b"5", b"-1", b"9223372036854775807"], 512)),
        ("set-big-ints", set(&int_refs, 512)),
        ("set-ht", set(&[b"x", b"y", b"1"], 512)),
        ("hash-lp", hash(&[(b"f", b"v"), (b"n", b"-12")], 128)),
        ("hash-ht", hash(&pairs, 128)),
        ("zset-lp", zset(&[(b"a", 0.25), (b"b", -1e-300), (b"c", 3.0)], 128)),
        ("zset-sl", zset(&scored, 128)),
    ];
    for (k, v) in entries {
        db.add(k.as_bytes(), obj(v));
    }
    db.set_expire(b"raw", 4_000_000_000_000);
    db
}

fn round_trip(dbs: &[Db], save: &SaveOptions, load_opts: &LoadOptions) -> (Vec<u8>, Vec<Db>, Loaded) {
    let mut file = Vec::new();
    super::save(&mut file, dbs, &RdbAux { ctime: 1_700_000_000, used_mem: 1024, ..RdbAux::default() }, save).unwrap();
    let mut loaded: Vec<Db> = (0..16).map(|i| Db::new(i, 2)).collect();
    let info = load(&file, &mut loaded, load_opts).unwrap();
    (file, loaded, info)
}

#[test]
fn save_then_load_keeps_every_type_encoding_and_expiry() {
    let dbs = vec![sample_db(0), Db::new(1, 0), sample_db(3)];
    for compression in [true, false] {
        for checksum in [true, false] {
            let opts = SaveOptions { compression, checksum, key_meta: KeyMeta::None };
            let (file, loaded, info) = round_trip(&dbs, &opts, &LoadOptions::default());
            assert_eq!(info.len, file.len());
            assert_eq!(info.checksum, if checksum { Checksum::Ok } else { Checksum::Disabled });
            assert_eq!(info.keys_loaded, 26);
            assert_eq!(info.db_keys, vec![(0, 13, 1), (3, 13, 1)]);
            assert_eq!(info.aux.redis_ver, "7.0.15");
            assert_eq!(info.aux.ctime, 1_700_000_000);
            for src in [&dbs[0], &dbs[2]] {
                let dst = &loaded[src.id];
                assert_eq!(dst.len(), src.len());
                for (k, o) in src.dict.iter() {
                    let got = dst.get(k).unwrap_or_else(|| panic!("{:?} missing", String::from_utf8_lossy(k)));
                    assert_eq!(got.val, o.val, "{}", String::from_utf8_lossy(k));
                    assert_eq!(got.val.encoding(), o.val.encoding(), "{}", String::from_utf8_lossy(k));
                    assert_eq!(dst.expire_of(k), src.expire_of(k));
                }
            }
            // The list keeps its node boundaries, so a second save is byte-identical.
            let (again, _, _) = round_trip(&loaded[..4], &opts, &LoadOptions::default());
            let mut first = Vec::new();
            super::save(
                &mut first,
                &loaded[..4],
                &RdbAux { ctime: 1_700_000_000, used_mem: 1024, ..RdbAux::default() },
                &opts,
            )
            .unwrap();
            assert_eq!(again, first);
        }
    }
}

#[test]
fn loading_applies_the_configured_limits() {
    let dbs = vec![sample_db(0)];
    let mut lo = LoadOptions::default();
    lo.limits.hash_max_listpack_entries = 1;
    lo.limits.zset_max_listpack_entries = 1;
    lo.limits.set_max_intset_entries = 2;
    lo.limits.hash_max_listpack_entries = 1;
    let (_, loaded, _) = round_trip(&dbs, &SaveOptions::default(), &lo);
    let enc = |k: &str| loaded[0].get(k.as_bytes()).unwrap().val.encoding();
    assert_eq!(enc("hash-lp"), "hashtable");
    assert_eq!(enc("zset-lp"), "skiplist");
    assert_eq!(enc("set-intset"), "hashtable");
    let mut lo = LoadOptions::default();
    lo.limits.zset_max_listpack_entries = 1000;
    lo.limits.zset_max_listpack_value = 1000;
    let (_, loaded, _) = round_trip(&dbs, &SaveOptions::default(), &lo);
    assert_eq!(
        loaded[0].get(b"zset-sl").unwrap().val.encoding(),
        "listpack",
        "a skiplist that fits becomes a listpack"
    );
}

#[test]
fn expired_keys_are_skipped_only_when_asked() {
    let mut db = Db::new(0, 1);
    db.add(b"old", obj(string(b"v")));
    db.set_expire(b"old", 1000);
    db.add(b"new", obj(string(b"v")));
    db.set_expire(b"new", 5000);
    let dbs = vec![db];
    let keep = LoadOptions { now_ms: 2000, ..LoadOptions::default() };
    let (_, loaded, info) = round_trip(&dbs, &SaveOptions::default(), &keep);
    assert_eq!((info.keys_loaded, info.keys_expired, loaded[0].len()), (2, 0, 2));
    let skip = LoadOptions { now_ms: 2000, skip_expired: true, ..LoadOptions::default() };
    let (_, loaded, info) = round_trip(&dbs, &SaveOptions::default(), &skip);
    assert_eq!((info.keys_loaded, info.keys_expired, loaded[0].len()), (1, 1, 1));
    assert_eq!(loaded[0].expire_of(b"new"), Some(5000));
}

#[test]
fn idle_and_freq_are_written_and_read_under_their_policies() {
    let mut db = Db::new(0, 1);
    db.add(b"k", RObj::new(list(&[b"x"]), 1000));
    let dbs = vec![db];
    let save = SaveOptions { key_meta: KeyMeta::Idle { lru_clock: 1100 }, ..SaveOptions::default() };
    let lo = LoadOptions { now_ms: 2_000_000, ..LoadOptions::default() };
    let (file, loaded, _) = round_trip(&dbs, &save, &lo);
    assert!(file.windows(3).any(|w| w == [opcode::IDLE, 0x40, 100]));
    assert_eq!(loaded[0].get(b"k").unwrap().lru, 2000 - 100);
    let save = SaveOptions { key_meta: KeyMeta::Freq { now_ms: 180_000, lfu_decay_time: 1 }, ..SaveOptions::default() };
    let lo = LoadOptions { now_ms: 60_000 * 7, lfu: true, ..LoadOptions::default() };
    let (_, loaded, _) = round_trip(&dbs, &save, &lo);
    // lru 1000 under LFU: minutes 3, counter 232.
    assert_eq!(loaded[0].get(b"k").unwrap().lru, (7 << 8) | 232);
}

/// A file as an old Redis wrote it: `REDIS<ver>`, keys of type `ty`, EOF and, from v5, a CRC.
fn old_file(ver: u32, body: &[u8]) -> Vec<u8> {
    let mut f = format!("REDIS{ver:04}").into_bytes();
    f.push(opcode::SELECTDB);
    f.push(0);
    f.extend_from_slice(body);
    f.push(opcode::EOF);
    if ver >= 5 {
        let crc = CRC64.checksum(&f);
        f.extend_from_slice(&crc.to_le_bytes());
    }
    f
}

fn key_of(ty: RdbType, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = vec![ty as u8];
    put_string(&mut out, key, false);
    out.extend_from_slice(value);
    out
}

fn blob(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, b, false);
    out
}

fn load_one(file: &[u8]) -> Db {
    let mut dbs = vec![Db::new(0, 0)];
    load(file, &mut dbs, &LoadOptions::default()).unwrap();
    dbs.pop().unwrap()
}

#[test]
fn resizedb_presizes_the_dicts_but_never_past_what_the_file_can_hold() {
    let keys: Vec<u8> = (0..3).flat_map(|i| key_of(RdbType::String, format!("k{i}").as_bytes(), &blob(b"v"))).collect();
    let resizedb = |size: u64, expires: u64| {
        let mut b = vec![opcode::RESIZEDB];
        put_len(&mut b, size);
        put_len(&mut b, expires);
        b
    };
    // A size the file can hold: the dict is sized at once, as Redis's dictExpand (growing
    // for 3 keys would stop at 4 buckets).
    let db = load_one(&old_file(10, &[resizedb(5, 0), keys.clone()].concat()));
    assert_eq!((db.len(), db.dict.buckets(), db.expires.buckets()), (3, 8, 0));
    // A hostile size: capped by the bytes left (a key takes at least 3), no huge table.
    let db = load_one(&old_file(10, &[resizedb(u64::MAX, u64::MAX), keys].concat()));
    assert_eq!(db.len(), 3);
    assert!(db.dict.buckets() <= 16 && db.expires.buckets() <= 16, "{db:?} {}", db.dict.buckets());
}

#[test]
fn old_encodings_load_and_convert() {
    let zl = super::blob::tests::sample_ziplist(); // a, 12, 300
    let zipmap = b"\x02\x03foo\x03\x01bar!\x01k\x01\x00v\xff";
    let mut linked = Vec::new();
    put_len(&mut linked, 2);
    linked.extend(blob(b"x"));
    linked.extend(blob(b"y"));
    let mut old_zset = Vec::new();
    put_len(&mut old_zset, 3);
    old_zset.extend(blob(b"m1"));
    old_zset.extend_from_slice(b"\x031.5");
    old_zset.extend(blob(b"m2"));
    old_zset.push(254);
    old_zset.extend(blob(b"m3"));
    old_zset.push(255);
    let mut quicklist1 = Vec::new();
    put_len(&mut quicklist1, 2);
    quicklist1.extend(blob(&zl));
    quicklist1.extend(blob(&zl));
    // A ziplist of 4 entries for a hash/zset: field a -> 12, field 300 -> ... use pairs.
    let mut body = Vec::new();
    body.push(opcode::EXPIRETIME);
    body.extend_from_slice(&4_000_000u32.to_le_bytes());
    body.extend(key_of(RdbType::ListZiplist, b"zl", &blob(&zl)));
    body.extend(key_of(RdbType::HashZipmap, b"zm", &blob(zipmap)));
    body.extend(key_of(RdbType::List, b"linked", &linked));
    body.extend(key_of(RdbType::Zset, b"oldz", &old_zset));
    body.extend(key_of(RdbType::ListQuicklist, b"ql1", &quicklist1));
    for ver in [3, 6, 9] {
        let db = load_one(&old_file(ver, &body));
        let vals = |k: &[u8]| match &db.get(k).unwrap().val {
            Value::List(l) => l.iter().map(|e| e.to_vec()).collect::<Vec<_>>(),
            v => panic!("{v:?}"),
        };
        assert_eq!(vals(b"zl"), vec![b"a".to_vec(), b"12".to_vec(), b"300".to_vec()]);
        assert_eq!(db.expire_of(b"zl"), Some(4_000_000_000));
        assert_eq!(vals(b"linked"), vec![b"x".to_vec(), b"y".to_vec()]);
        assert_eq!(vals(b"ql1").len(), 6);
        match &db.get(b"zm").unwrap().val {
            Value::Hash(h) => {
                assert_eq!(h.get(b"foo"), Some(&b"bar"[..]));
                assert_eq!(h.encoding(), "listpack");
            }
            v => panic!("{v:?}"),
        }
        match &db.get(b"oldz").unwrap().val {
            Value::Zset(z) => assert_eq!(
                z.all(),
                vec![(b"m3".to_vec(), f64::NEG_INFINITY), (b"m1".to_vec(), 1.5), (b"m2".to_vec(), f64::INFINITY)]
            ),
            v => panic!("{v:?}"),
        }
    }
}

#[test]
fn ziplist_hashes_and_zsets_load() {
    // Pairs from the sample ziplist's layout: build one with "f","1" via a listpack-like
    // ziplist by hand: entries "a" and 12 as (field a, value 12) would leave 300 unpaired,
    // so take a two-entry ziplist.
    let mut zl = Vec::new();
    let entries: [&[u8]; 2] = [&[0x00, 0x01, b'a'], &[0x03, 0xFE, 12]];
    let body: Vec<u8> = entries.concat();
    zl.extend_from_slice(&((10 + body.len() + 1) as u32).to_le_bytes());
    zl.extend_from_slice(&13u32.to_le_bytes());
    zl.extend_from_slice(&2u16.to_le_bytes());
    zl.extend_from_slice(&body);
    zl.push(0xFF);
    let mut body = key_of(RdbType::HashZiplist, b"h", &blob(&zl));
    body.extend(key_of(RdbType::ZsetZiplist, b"z", &blob(&zl)));
    let db = load_one(&old_file(8, &body));
    match &db.get(b"h").unwrap().val {
        Value::Hash(h) => assert_eq!(h.get(b"a"), Some(&b"12"[..])),
        v => panic!("{v:?}"),
    }
    match &db.get(b"z").unwrap().val {
        Value::Zset(z) => assert_eq!(z.score(b"a"), Some(12.0)),
        v => panic!("{v:?}"),
    }
}

#[test]
fn corrupt_files_fail_with_offsets_and_never_panic() {
    let (file, _, _) = round_trip(&[sample_db(0)], &SaveOptions::default(), &LoadOptions::default());
    for cut in (0..file.len()).step_by(7) {
        let mut dbs = vec![Db::new(0, 0)];
        let e = load(&file[..cut], &mut dbs, &LoadOptions::default()).unwrap_err();
        assert!(e.offset <= cut as u64, "cut {cut}: {e}");
    }
    let mut bad = file.clone();
    let n = bad.len();
    bad[n - 20] ^= 0x55;
    let mut dbs = vec![Db::new(0, 0)];
    assert!(load(&bad, &mut dbs, &LoadOptions::default()).is_err());
    let e = load(b"REDIS0011\xff", &mut [Db::new(0, 0)], &LoadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "Can't handle RDB format version 0011 (at offset 5)");
    let e = load(b"RADIS0010", &mut [Db::new(0, 0)], &LoadOptions::default()).unwrap_err();
    assert_eq!(e.offset, 0);
    // A list claiming 2^32 nodes in a few bytes is refused before anything is allocated.
    let mut body = vec![RdbType::ListQuicklist2 as u8];
    put_string(&mut body, b"k", false);
    put_len(&mut body, 1 << 32);
    let e = load(&old_file(10, &body), &mut [Db::new(0, 0)], &LoadOptions::default()).unwrap_err();
    assert_eq!(e.offset, 14, "{e}");
    assert!(e.msg.contains("larger than the remaining input"), "{e}");
    // A listpack whose header lies about its size.
    let mut lp = listpack_build([&b"a"[..]]);
    lp[0] += 1;
    let mut v = Vec::new();
    put_len(&mut v, 1);
    put_len(&mut v, 2);
    v.extend(blob(&lp));
    let e =
        load(&old_file(10, &key_of(RdbType::ListQuicklist2, b"k", &v)), &mut [Db::new(0, 0)], &LoadOptions::default())
            .unwrap_err();
    assert_eq!(e.offset, 16, "{e}");
    let e = load(b"REDIS0010\xf5\x00", &mut [Db::new(0, 0)], &LoadOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "Functions in RDB files are not supported (at offset 9)");
    let e = load(b"REDIS0010\xfe\x05\xff", &mut [Db::new(0, 0)], &LoadOptions::default()).unwrap_err();
    assert!(e.msg.contains("more than 1 databases"), "{e}");
}

#[test]
fn restore_checks_footer_then_body() {
    let good = dump_payload(&obj(string(b"hello")));
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    let lo = LoadOptions::default();
    assert!(matches!(restore_payload_with(&bad_crc, &lo), Err(RestoreError::Footer(_))));
    let mut newer = good.clone();
    let n = newer.len();
    newer[n - 10] = 11;
    assert!(matches!(restore_payload_with(&newer, &lo), Err(RestoreError::Footer(_))));
    assert!(matches!(restore_payload_with(b"short", &lo), Err(RestoreError::Footer(_))));
    // A body that is not a value, with a valid footer.
    let mut body = vec![RdbType::ZsetListpack as u8, 3, b'x', b'y', b'z'];
    body.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&body);
    body.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(restore_payload_with(&body, &lo), Err(RestoreError::Body(_))));
    // An empty set is refused.
    let mut empty = vec![RdbType::Set as u8, 0];
    empty.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&empty);
    empty.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(restore_payload_with(&empty, &lo), Err(RestoreError::Body(_))));
}

#[test]
fn options_follow_the_server_config() {
    use crate::commands::testing::{self, run};
    let mut srv = testing::server();
    run(&mut srv, &["CONFIG", "SET", "rdbcompression", "no"]);
    run(&mut srv, &["CONFIG", "SET", "hash-max-listpack-entries", "3"]);
    run(&mut srv, &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    let save = SaveOptions::for_server(&srv);
    assert!(!save.compression && save.checksum);
    assert!(matches!(save.key_meta, KeyMeta::Freq { .. }));
    let load = LoadOptions::for_server(&srv, 5);
    assert_eq!(load.limits.hash_max_listpack_entries, 3);
    assert!(load.lfu && load.skip_expired && load.verify_checksum);
    assert_eq!(load.now_ms, testing::NOW_UNIX_MS);
    let aux = RdbAux::for_server(&srv);
    assert_eq!(aux.ctime, (testing::NOW_UNIX_MS / 1000) as i64);
    assert_eq!(aux.redis_ver, "7.0.15");
}
