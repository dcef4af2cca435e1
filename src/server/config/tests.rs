use super::*;

fn set(c: &mut Config, pairs: &[(&str, &str)]) -> Result<Vec<&'static str>, String> {
    let pairs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())).collect();
    c.set_pairs(&pairs, false).map_err(|e| e.text())
}

fn get(c: &Config, patterns: &[&str]) -> Vec<(String, String)> {
    let patterns: Vec<&[u8]> = patterns.iter().map(|p| p.as_bytes()).collect();
    c.get_matching(&patterns).into_iter().map(|(n, v)| (String::from_utf8(n).unwrap(), v)).collect()
}

fn failed(arg: &str, why: &str) -> Result<Vec<&'static str>, String> {
    Err(format!("ERR CONFIG SET failed (possibly related to argument '{arg}') - {why}"))
}

#[test]
fn every_default_reads_back_as_itself() {
    for d in DEFS {
        if matches!(d.kind, Kind::Special(Special::ReplicaOf)) {
            continue; // "" is what "no one" prints; there is nothing to parse
        }
        let args = values::split_value(d, d.default);
        assert_eq!(values::parse(d, &args, d.default).as_deref(), Ok(d.default), "{}", d.name);
    }
}

#[test]
fn lists_the_names_redis_lists() {
    let c = Config::default();
    let all = get(&c, &["*"]);
    // redis-server 7.0.15 (built with TLS) answers CONFIG GET * with 192 names.
    assert_eq!(all.len(), 192);
    assert!(all.iter().any(|(n, v)| n == "slave-read-only" && v == "yes"));
    assert!(!all.iter().any(|(n, _)| n == "use-exit-on-panic"));
    assert_eq!(get(&c, &["use-exit-on-panic"]), [("use-exit-on-panic".to_string(), "no".to_string())]);
}

#[test]
fn get_answers_under_the_spelling_asked_and_each_name_once() {
    let c = Config::default();
    assert_eq!(get(&c, &["MAXMEMORY", "maxmemory"]), [("MAXMEMORY".to_string(), "0".to_string())]);
    let names: Vec<String> = get(&c, &["MAXMEMORY", "maxmemory*"]).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 5);
    assert_eq!(names[0], "MAXMEMORY");
    assert!(get(&c, &["nosuch"]).is_empty());
}

#[test]
fn values_are_validated_with_redis_texts() {
    let mut c = Config::default();
    assert_eq!(set(&mut c, &[("maxmemory", "1gb")]), Ok(vec!["maxmemory"]));
    assert_eq!(c.get("maxmemory"), Some("1073741824"));
    assert_eq!(c.hot.maxmemory, 1 << 30);
    assert_eq!(set(&mut c, &[("maxmemory", "-1")]), failed("maxmemory", "argument must be a memory value"));
    assert_eq!(set(&mut c, &[("maxmemory", "18446744073709551615")]), Ok(vec!["maxmemory"]));
    assert_eq!(c.get("maxmemory"), Some("18446744073709551615"));
    assert_eq!(
        set(&mut c, &[("maxclients", "-1")]),
        failed("maxclients", "argument must be between 1 and 4294967295 inclusive")
    );
    assert_eq!(
        set(&mut c, &[("list-max-listpack-size", "01")]),
        failed("list-max-listpack-size", "argument couldn't be parsed into an integer")
    );
    assert_eq!(
        set(&mut c, &[("slave-read-only", "maybe")]),
        failed("slave-read-only", "argument must be 'yes' or 'no'")
    );
    assert_eq!(
        set(&mut c, &[("loglevel", "loud")]),
        failed("loglevel", "argument(s) must be one of the following: debug, verbose, notice, warning")
    );
    assert_eq!(set(&mut c, &[("unixsocketperm", "777")]), failed("unixsocketperm", "can't set immutable config"));
    assert_eq!(set(&mut c, &[("dir", "/tmp")]), failed("dir", "can't set protected config"));
    assert_eq!(
        set(&mut c, &[("nope", "1")]),
        Err("ERR Unknown option or number of arguments for CONFIG SET - 'nope'".into())
    );
}

#[test]
fn percent_and_clamped_values_print_as_redis_prints_them() {
    let mut c = Config::default();
    set(&mut c, &[("maxmemory-clients", "10%")]).unwrap();
    assert_eq!(c.get("maxmemory-clients"), Some("10%"));
    assert_eq!(
        set(&mut c, &[("maxmemory-clients", "101%")]),
        failed("maxmemory-clients", "percentage argument must be less or equal to 100")
    );
    assert_eq!(
        set(&mut c, &[("maxmemory-clients", "-5")]),
        failed("maxmemory-clients", "argument must be a memory or percent value")
    );
    set(&mut c, &[("hz", "1000")]).unwrap();
    assert_eq!((c.get("hz"), c.hot.hz), (Some("500"), 500));
    set(&mut c, &[("notify-keyspace-events", "KEA")]).unwrap();
    assert_eq!(c.get("notify-keyspace-events"), Some("AKE"));
    assert_eq!(c.hot.notify_keyspace_events & notify::KEYSPACE, notify::KEYSPACE);
    set(&mut c, &[("shutdown-on-sigint", "force now")]).unwrap();
    assert_eq!(c.get("shutdown-on-sigint"), Some("now force"));
}

#[test]
fn set_is_all_or_nothing_and_first_error_wins() {
    let mut c = Config::default();
    assert_eq!(
        set(&mut c, &[("hz", "20"), ("maxmemory", "x")]),
        failed("maxmemory", "argument must be a memory value")
    );
    assert_eq!(c.get("hz"), Some("10"));
    assert_eq!(set(&mut c, &[("maxmemory", "1"), ("MAXMEMORY", "2")]), failed("MAXMEMORY", "duplicate parameter"));
    assert_eq!(set(&mut c, &[("databases", "1"), ("nope", "1")]), failed("databases", "can't set immutable config"));
    // Redis keeps an alias as its own entry: naming both is not a duplicate, the last wins.
    set(&mut c, &[("replica-read-only", "yes"), ("slave-read-only", "no")]).unwrap();
    assert_eq!(c.get("replica-read-only"), Some("no"));
}

#[test]
fn special_directives_change_what_they_name() {
    let mut c = Config::default();
    set(&mut c, &[("client-output-buffer-limit", "normal 1mb 2mb 3")]).unwrap();
    assert_eq!(
        c.get("client-output-buffer-limit"),
        Some("normal 1048576 2097152 3 slave 268435456 67108864 60 pubsub 33554432 8388608 60")
    );
    assert_eq!(c.hot.client_output_buffer_limit[0], (1 << 20, 2 << 20, 3));
    assert_eq!(
        set(&mut c, &[("client-output-buffer-limit", "master 1 2 3")]),
        failed("client-output-buffer-limit", "Invalid client class specified in buffer limit configuration.")
    );
    assert_eq!(set(&mut c, &[("save", "100 abc")]), failed("save", "Invalid save parameters"));
    set(&mut c, &[("save", "")]).unwrap();
    assert_eq!(c.get("save"), Some(""));
    assert_eq!(
        set(&mut c, &[("oom-score-adj-values", "1 2")]),
        failed("oom-score-adj-values", "wrong number of arguments")
    );
    assert_eq!(set(&mut c, &[("port", "7000")]), failed("port", "Unable to listen on this port. Check server logs."));
    assert_eq!(set(&mut c, &[("port", "6379")]), Ok(vec![]));
}

#[test]
fn conf_text_loads_and_save_lines_add_up() {
    let mut c = Config::default();
    c.load_text("# comment\nport 7000\nsave 900 1\nsave 60 100\nrequirepass \"a b\"\nbind 127.0.0.1 ::1\n").unwrap();
    assert_eq!(c.hot.port, 7000);
    assert_eq!(c.get("save"), Some("900 1 60 100"));
    assert_eq!(c.hot.requirepass.as_deref(), Some(&b"a b"[..]));
    assert_eq!(c.get("bind"), Some("127.0.0.1 ::1"));
    assert!(c.load_text("nosuch 1\n").is_err());
    assert!(c.load_text("port 1 2\n").is_err());
    assert!(c.load_text("list-max-ziplist-entries 5\n").is_ok());
    let mut c = Config::default();
    c.apply_directive("save", &[String::new()]).unwrap();
    assert_eq!(c.get("save"), Some(""));
    c.set_startup("databases", "4").unwrap();
    assert_eq!(c.hot.databases, 4);
}
