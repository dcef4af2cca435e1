//! SPOP's propagation and the encodings the commands leave behind.

use crate::commands::testing::{run, server, take_propagated};

fn sadd_range(srv: &mut crate::server::Server, key: &str, from: i64, to: i64) {
    let mut argv = vec!["SADD".to_string(), key.to_string()];
    argv.extend((from..to).map(|i| i.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    run(srv, &argv);
}

fn popped_members(reply: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(reply);
    text.split("\r\n").filter(|l| !l.is_empty() && !l.starts_with(['*', '$', '~'])).map(String::from).collect()
}

#[test]
fn spop_without_count_propagates_srem_of_the_member() {
    let mut srv = server();
    srv.propagate_enabled = true;
    run(&mut srv, &["SADD", "s", "a"]);
    take_propagated(&mut srv);
    let reply = run(&mut srv, &["SPOP", "s"]);
    assert_eq!(reply, b"$1\r\na\r\n");
    assert_eq!(take_propagated(&mut srv), vec![vec!["SREM", "s", "a"]]);
    assert_eq!(run(&mut srv, &["EXISTS", "s"]), b":0\r\n");
}

#[test]
fn spop_with_small_count_propagates_one_srem_per_member() {
    let mut srv = server();
    srv.propagate_enabled = true;
    sadd_range(&mut srv, "s", 0, 20);
    take_propagated(&mut srv);
    let reply = run(&mut srv, &["SPOP", "s", "3"]);
    let popped = popped_members(&reply);
    assert_eq!(popped.len(), 3);
    // One SREM per member, as one transaction (Redis 7.0.15's replication stream shows
    // MULTI, SREM..., EXEC).
    let mut want: Vec<Vec<String>> = vec![vec!["MULTI".into()]];
    want.extend(popped.iter().map(|m| vec!["SREM".into(), "s".into(), m.clone()]));
    want.push(vec!["EXEC".into()]);
    assert_eq!(take_propagated(&mut srv), want);
    assert_eq!(run(&mut srv, &["SCARD", "s"]), b":17\r\n");
}

#[test]
fn spop_with_large_count_keeps_survivors_in_a_new_set() {
    let mut srv = server();
    srv.propagate_enabled = true;
    sadd_range(&mut srv, "s", 0, 600);
    assert_eq!(run(&mut srv, &["OBJECT", "ENCODING", "s"]), b"$9\r\nhashtable\r\n");
    take_propagated(&mut srv);
    let reply = run(&mut srv, &["SPOP", "s", "590"]);
    let popped = popped_members(&reply);
    assert_eq!(popped.len(), 590);
    let props = take_propagated(&mut srv);
    assert_eq!(props.len(), 592, "MULTI, 590 SREMs, EXEC");
    assert!(props[0] == ["MULTI"] && props[591] == ["EXEC"]);
    assert!(props[1..591].iter().zip(&popped).all(|(p, m)| p == &["SREM", "s", m.as_str()]));
    assert_eq!(run(&mut srv, &["SCARD", "s"]), b":10\r\n");
    // The survivors were re-added to a set created from an integer: an intset again.
    assert_eq!(run(&mut srv, &["OBJECT", "ENCODING", "s"]), b"$6\r\nintset\r\n");
}

#[test]
fn spop_with_count_covering_the_set_propagates_del() {
    let mut srv = server();
    srv.propagate_enabled = true;
    run(&mut srv, &["SADD", "s", "3", "1", "2"]);
    take_propagated(&mut srv);
    assert_eq!(run(&mut srv, &["SPOP", "s", "5"]), b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    assert_eq!(take_propagated(&mut srv), vec![vec!["DEL", "s"]]);
    assert_eq!(run(&mut srv, &["SPOP", "s", "5"]), b"*0\r\n");
    assert!(take_propagated(&mut srv).is_empty());
}

#[test]
fn intset_converts_past_set_max_intset_entries() {
    let mut srv = server();
    sadd_range(&mut srv, "s", 0, 512);
    assert_eq!(run(&mut srv, &["OBJECT", "ENCODING", "s"]), b"$6\r\nintset\r\n");
    run(&mut srv, &["SADD", "s", "512"]);
    assert_eq!(run(&mut srv, &["OBJECT", "ENCODING", "s"]), b"$9\r\nhashtable\r\n");
    assert_eq!(run(&mut srv, &["SCARD", "s"]), b":513\r\n");
}

#[test]
fn set_algebra_stores_propagate_as_sent_and_empty_results_delete() {
    let mut srv = server();
    srv.propagate_enabled = true;
    run(&mut srv, &["SADD", "a", "1", "2"]);
    run(&mut srv, &["SADD", "b", "2", "3"]);
    assert_eq!(run(&mut srv, &["SINTERSTORE", "d", "a", "b"]), b":1\r\n");
    assert_eq!(run(&mut srv, &["SINTERSTORE", "d", "a", "missing"]), b":0\r\n");
    assert_eq!(run(&mut srv, &["SINTERSTORE", "d", "a", "missing"]), b":0\r\n");
    assert_eq!(run(&mut srv, &["SMOVE", "a", "b", "1"]), b":1\r\n");
    assert_eq!(
        take_propagated(&mut srv),
        vec![
            vec!["SADD", "a", "1", "2"],
            vec!["SADD", "b", "2", "3"],
            vec!["SINTERSTORE", "d", "a", "b"],
            vec!["SINTERSTORE", "d", "a", "missing"],
            vec!["SMOVE", "a", "b", "1"],
        ],
        "the second empty SINTERSTORE deleted nothing, so it changed nothing"
    );
}

#[test]
fn random_replies_repeat_with_the_seed() {
    let replies = || {
        let mut srv = server();
        sadd_range(&mut srv, "s", 0, 100);
        run(&mut srv, &["SADD", "h", "a", "b", "c", "d", "e", "f"]);
        let mut all = Vec::new();
        for argv in [
            &["SRANDMEMBER", "s", "-5"][..],
            &["SRANDMEMBER", "s", "10"],
            &["SRANDMEMBER", "h", "4"],
            &["SPOP", "h", "2"],
        ] {
            all.push(run(&mut srv, argv));
        }
        all
    };
    assert_eq!(replies(), replies());
}

#[test]
fn srandmember_with_positive_count_never_repeats() {
    let mut srv = server();
    sadd_range(&mut srv, "s", 0, 30);
    for count in ["2", "9", "11", "29"] {
        let members = popped_members(&run(&mut srv, &["SRANDMEMBER", "s", count]));
        let distinct: std::collections::BTreeSet<_> = members.iter().collect();
        assert_eq!(members.len(), count.parse::<usize>().unwrap());
        assert_eq!(distinct.len(), members.len(), "count {count}");
    }
}
