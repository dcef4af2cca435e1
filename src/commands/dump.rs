//! DUMP and RESTORE (Redis's `cluster.c` `dumpCommand`/`restoreCommand`): a value travels as
//! an RDB-encoded payload with a version and CRC64 footer (persistence::rdb), so payloads
//! move between redsim and Redis 7.0 in both directions.

use bytes::Bytes;

use super::{eq_ic, int_arg, CmdError, CmdResult, Ctx, Handler};
use crate::engine::object::{RObj, Value};
use crate::persistence::rdb::{self, LoadOptions, RestoreError};

/// RESTORE-ASKING is RESTORE (what MIGRATE sends in cluster mode); ASKING only matters to
/// cluster redirections.
pub static COMMANDS: &[(&str, Handler)] = &[("dump", dump), ("restore", restore), ("restore-asking", restore)];

fn dump(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let compression = ctx.srv.config.get("rdbcompression") != Some("no");
    match ctx.lookup_read(&a[1]).map(|o| rdb::dump_payload_with(o, compression)) {
        Some(payload) => ctx.out().bulk(&payload),
        None => ctx.out().null(),
    }
    Ok(())
}

/// RESTORE's options, as parsed before anything else is looked at.
struct RestoreOpts {
    replace: bool,
    absttl: bool,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

fn parse_restore_options(a: &[Bytes]) -> Result<RestoreOpts, CmdError> {
    let mut o = RestoreOpts { replace: false, absttl: false, idle_secs: None, freq: None };
    let mut j = 4;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq_ic(&a[j], "replace") {
            o.replace = true;
        } else if eq_ic(&a[j], "absttl") {
            o.absttl = true;
        } else if eq_ic(&a[j], "idletime") && more && o.freq.is_none() {
            let idle = int_arg(&a[j + 1])?;
            if idle < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            o.idle_secs = Some(idle.unsigned_abs());
            j += 1;
        } else if eq_ic(&a[j], "freq") && more && o.idle_secs.is_none() {
            let freq = int_arg(&a[j + 1])?;
            o.freq =
                Some(u8::try_from(freq).map_err(|_| CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"))?);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]. A relative TTL is
/// propagated as an absolute one (with ABSTTL); a TTL already in the past on a master
/// deletes the replaced key instead (propagated as DEL/UNLINK) and still replies OK.
fn restore(ctx: &mut Ctx, a: &[Bytes]) -> CmdResult {
    let key = &a[1];
    let o = parse_restore_options(a)?;
    if !o.replace && ctx.lookup_write(key).is_some() {
        return Err(CmdError::Other("BUSYKEY Target key name already exists.".into()));
    }
    let ttl = int_arg(&a[2])?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let seed = crate::env::Rng::next_u64(&mut ctx.srv.rng);
    let opts = LoadOptions { verify_checksum: true, ..LoadOptions::for_server(ctx.srv, seed) };
    let val = match rdb::restore_payload_with(&a[3], &opts) {
        Ok(v) => v,
        Err(RestoreError::Footer(_)) => return Err(CmdError::err("DUMP payload version or checksum are wrong")),
        Err(RestoreError::Body(_)) => return Err(CmdError::err("Bad data format")),
    };
    let db = ctx.db_index();
    let deleted = o.replace && ctx.srv.dbs[db].delete(key).is_some();
    let now_ms = ctx.now_ms();
    let when_ms = if ttl != 0 && !o.absttl { ttl.saturating_add(now_ms as i64) } else { ttl };
    if when_ms != 0 && when_ms <= now_ms as i64 && ctx.srv.is_master() {
        if deleted {
            let del: &'static [u8] = if ctx.srv.config.hot.lazyfree_lazy_server_del { b"UNLINK" } else { b"DEL" };
            ctx.propagate_as(vec![Bytes::from_static(del), key.clone()]);
            ctx.dirty(1);
        }
        ctx.out().ok();
        return Ok(());
    }
    let lfu = ctx.srv.config.hot.maxmemory_policy.is_lfu();
    let lru = rdb::object_lru(lfu, now_ms, o.idle_secs, o.freq, ctx.new_lru());
    let obj = match val {
        Value::Str(s) => RObj::string(&s.bytes(), lru, opts.share_ints),
        v => RObj::new(v, lru),
    };
    ctx.srv.dbs[db].add(key, obj);
    if when_ms != 0 {
        ctx.srv.dbs[db].set_expire(key, when_ms.max(0) as u64);
        if !o.absttl {
            let mut argv = a.to_vec();
            argv[2] = Bytes::from(when_ms.to_string());
            argv.push(Bytes::from_static(b"ABSTTL"));
            ctx.propagate_as(argv);
        }
    }
    ctx.dirty(1);
    ctx.out().ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::commands::testing::{self, propagating, run, take_propagated};
    use crate::server::Server;

    /// Runs a command with binary arguments for the test client.
    fn run_bin(srv: &mut Server, argv: &[&[u8]]) -> Vec<u8> {
        let id = *srv.clients.keys().next().expect("a client");
        srv.process(id, argv.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        std::mem::take(&mut srv.clients.get_mut(&id).expect("client").out.buf)
    }

    fn dump(srv: &mut Server, key: &str) -> Vec<u8> {
        let reply = run(srv, &["DUMP", key]);
        let start = reply.iter().position(|&b| b == b'\n').expect("bulk header") + 1;
        reply[start..reply.len() - 2].to_vec()
    }

    #[test]
    fn restore_checks_options_key_ttl_then_payload_as_redis() {
        let mut srv = testing::server();
        run(&mut srv, &["RPUSH", "l", "a", "1", "hello"]);
        let p = dump(&mut srv, "l");
        assert_eq!(run(&mut srv, &["DUMP", "nokey"]), b"$-1\r\n");
        let r = |srv: &mut Server, args: &[&[u8]]| {
            let mut argv: Vec<&[u8]> = vec![b"RESTORE"];
            argv.extend_from_slice(args);
            run_bin(srv, &argv)
        };
        assert_eq!(r(&mut srv, &[b"l", b"0", &p]), b"-BUSYKEY Target key name already exists.\r\n");
        assert_eq!(r(&mut srv, &[b"l", b"0", &p, b"bogus"]), b"-ERR syntax error\r\n");
        assert_eq!(r(&mut srv, &[b"l2", b"-1", &p]), b"-ERR Invalid TTL value, must be >= 0\r\n");
        assert_eq!(r(&mut srv, &[b"l2", b"0", b"xx"]), b"-ERR DUMP payload version or checksum are wrong\r\n");
        let freq = r(&mut srv, &[b"l2", b"0", &p, b"FREQ", b"256"]);
        assert_eq!(freq, b"-ERR Invalid FREQ value, must be >= 0 and <= 255\r\n");
        let idle = r(&mut srv, &[b"l2", b"0", &p, b"IDLETIME", b"-1"]);
        assert_eq!(idle, b"-ERR Invalid IDLETIME value, must be >= 0\r\n");
        assert_eq!(r(&mut srv, &[b"l2", b"0", &p, b"FREQ", b"1", b"IDLETIME", b"1"]), b"-ERR syntax error\r\n");
        assert_eq!(r(&mut srv, &[b"l2", b"0", &p, b"IDLETIME", b"100"]), b"+OK\r\n");
        assert_eq!(run(&mut srv, &["OBJECT", "IDLETIME", "l2"]), b":100\r\n");
        assert_eq!(run(&mut srv, &["LRANGE", "l2", "0", "-1"]), b"*3\r\n$1\r\na\r\n$1\r\n1\r\n$5\r\nhello\r\n");
        assert_eq!(r(&mut srv, &[b"l", b"1000", &p, b"REPLACE"]), b"+OK\r\n");
        assert_eq!(run(&mut srv, &["PTTL", "l"]), b":1000\r\n");
        assert_eq!(dump(&mut srv, "l"), p, "a restored value dumps to the same bytes");
    }

    #[test]
    fn restore_propagates_absolute_ttl_and_an_expired_replace_as_del() {
        let mut srv = propagating();
        run(&mut srv, &["SET", "s", "v"]);
        let p = dump(&mut srv, "s");
        take_propagated(&mut srv);
        run_bin(&mut srv, &[b"RESTORE", b"k", b"5000", &p]);
        run_bin(&mut srv, &[b"RESTORE", b"a", b"0", &p]);
        assert_eq!(run_bin(&mut srv, &[b"RESTORE", b"s", b"1", &p, b"REPLACE", b"ABSTTL"]), b"+OK\r\n");
        assert_eq!(run_bin(&mut srv, &[b"RESTORE", b"n", b"1", &p, b"ABSTTL"]), b"+OK\r\n");
        let got = take_propagated(&mut srv);
        let when = (testing::NOW_UNIX_MS + 5000).to_string();
        let payload = String::from_utf8_lossy(&p).into_owned();
        assert_eq!(
            got,
            vec![
                vec!["RESTORE".to_string(), "k".into(), when, payload.clone(), "ABSTTL".into()],
                vec!["RESTORE".to_string(), "a".into(), "0".into(), payload],
                vec!["DEL".to_string(), "s".into()],
            ]
        );
        assert_eq!(run(&mut srv, &["EXISTS", "s", "n"]), b":0\r\n");
    }
}
