use super::*;

fn sentinel() -> Sentinel {
    let mut s = Sentinel::new(SeededRng::from_seed(7), 1000, 1_700_000_000_000);
    s.monitor("mymaster", Addr::new("10.0.0.1", 6379), 2, 1000).unwrap();
    s
}

fn frame_info(role: &str, extra: &str) -> Frame {
    Frame::Bulk(Bytes::from(format!("# Replication\r\nrole:{role}\r\n{extra}")))
}

use bytes::Bytes;

#[test]
fn a_vote_is_given_once_per_epoch() {
    let mut s = sentinel();
    let (l, e) = s.vote_leader("mymaster", 1, "a".repeat(40).as_str(), 5000);
    assert_eq!((l.as_deref(), e), (Some("a".repeat(40).as_str()), 1));
    // A second candidate in the same epoch gets the first one's name back.
    let (l, e) = s.vote_leader("mymaster", 1, "b".repeat(40).as_str(), 5000);
    assert_eq!((l.as_deref(), e), (Some("a".repeat(40).as_str()), 1));
    // A later epoch is a new vote, and raises the current epoch.
    let (l, e) = s.vote_leader("mymaster", 2, "b".repeat(40).as_str(), 5000);
    assert_eq!((l.as_deref(), e), (Some("b".repeat(40).as_str()), 2));
    assert_eq!(s.current_epoch, 2);
    // An older epoch does not change it.
    let (l, e) = s.vote_leader("mymaster", 1, "c".repeat(40).as_str(), 5000);
    assert_eq!((l.as_deref(), e), (Some("b".repeat(40).as_str()), 2));
    assert_eq!(s.votes.len(), 2);
}

#[test]
fn the_planted_bug_votes_twice() {
    let mut s = sentinel();
    s.bug = Some(PlantedBug::VotesTwice);
    s.vote_leader("mymaster", 1, &"a".repeat(40), 5000);
    let (l, _) = s.vote_leader("mymaster", 1, &"b".repeat(40), 5000);
    assert_eq!(l.as_deref(), Some("b".repeat(40).as_str()));
}

fn add_replica(s: &mut Sentinel, port: u16, offset: u64, priority: u64, now: u64) -> Addr {
    let a = Addr::new("10.0.0.2", port);
    let m = s.masters.get_mut("mymaster").unwrap();
    let mut r = Instance::new(Kind::Replica, a.clone(), now);
    r.link.cmd_connected = true;
    r.link.last_avail_time = now;
    r.info_refresh = now;
    r.repl_offset = offset;
    r.priority = priority;
    r.runid = Some(format!("{port:040}"));
    m.replicas.insert(a.clone(), r);
    a
}

#[test]
fn selection_prefers_priority_then_offset_then_runid() {
    let mut s = sentinel();
    let now = 10_000;
    add_replica(&mut s, 1, 500, 100, now);
    let best = add_replica(&mut s, 2, 900, 100, now);
    add_replica(&mut s, 3, 900, 0, now); // priority 0: never
    add_replica(&mut s, 4, 100, 200, now);
    assert_eq!(s.select_replica("mymaster", now), Some(best.clone()));
    let tie = add_replica(&mut s, 0, 900, 100, now);
    assert_eq!(s.select_replica("mymaster", now), Some(tie), "lower runid wins a tie");
    s.bug = Some(PlantedBug::PicksLowestOffset);
    assert_eq!(s.select_replica("mymaster", now), Some(Addr::new("10.0.0.2", 1)));
}

#[test]
fn selection_skips_stale_and_disconnected_replicas() {
    let mut s = sentinel();
    let now = 100_000;
    let a = add_replica(&mut s, 1, 500, 100, now);
    s.masters.get_mut("mymaster").unwrap().replicas.get_mut(&a).unwrap().link.cmd_connected = false;
    assert_eq!(s.select_replica("mymaster", now), None);
    let b = add_replica(&mut s, 2, 500, 100, now);
    s.masters.get_mut("mymaster").unwrap().replicas.get_mut(&b).unwrap().info_refresh = now - INFO_PERIOD * 3 - 1;
    assert_eq!(s.select_replica("mymaster", now), None);
}

#[test]
fn an_unanswered_master_goes_subjectively_down_after_down_after() {
    let mut s = sentinel();
    s.masters.get_mut("mymaster").unwrap().down_after = 5000;
    let mut t = 1000;
    while t < 6000 {
        t += 100;
        s.tick(t, 1_700_000_000_000 + t);
        assert!(!s.masters["mymaster"].inst.s_down, "down too early at {t}");
    }
    s.tick(6200, 1_700_000_006_200);
    let m = &s.masters["mymaster"];
    assert!(m.inst.s_down);
    // One sentinel of a quorum of 2 is not enough for ODOWN.
    assert!(!m.o_down);
    assert!(s.take_events().iter().any(|e| e.kind == "+sdown" && e.msg == "master mymaster 10.0.0.1 6379"));
}

#[test]
fn a_clock_jump_enters_tilt() {
    let mut s = sentinel();
    s.tick(1100, 1_700_000_000_100);
    s.tick(1200, 1_700_000_000_000); // the wall clock went back
    assert!(s.tilt);
    assert!(s.take_events().iter().any(|e| e.kind == "+tilt"));
}

#[test]
fn hellos_add_sentinels_and_raise_the_epoch() {
    let mut s = sentinel();
    let other = "f".repeat(40);
    s.process_hello(&format!("10.0.0.9,26379,{other},7,mymaster,10.0.0.1,6379,0"), 2000);
    let m = &s.masters["mymaster"];
    assert_eq!(m.sentinels.len(), 1);
    assert_eq!(s.current_epoch, 7);
    // A newer config epoch with another address moves the master.
    s.process_hello(&format!("10.0.0.9,26379,{other},8,mymaster,10.0.0.2,6380,8"), 3000);
    let m = &s.masters["mymaster"];
    assert_eq!(m.addr(), &Addr::new("10.0.0.2", 6380));
    assert!(m.replicas.contains_key(&Addr::new("10.0.0.1", 6379)), "the old master becomes a replica");
    assert_eq!(m.config_epoch, 8);
    let ev = s.take_events();
    assert!(ev.iter().any(|e| e.kind == "+switch-master" && e.msg == "mymaster 10.0.0.1 6379 10.0.0.2 6380"));
    // Our own hello is ignored.
    let me = s.myid.clone();
    s.process_hello(&format!("10.0.0.3,26379,{me},9,mymaster,10.0.0.2,6380,8"), 4000);
    assert_eq!(s.masters["mymaster"].sentinels.len(), 1);
}

#[test]
fn info_from_the_master_adds_its_replicas() {
    let mut s = sentinel();
    let key =
        LinkKey { master: "mymaster".into(), kind: Kind::Master, addr: Addr::new("10.0.0.1", 6379), pubsub: false };
    s.masters.get_mut("mymaster").unwrap().inst.link.cmd_connected = true;
    let info = frame_info("master", "slave0:ip=10.0.0.2,port=6380,state=online,offset=10,lag=0\r\n");
    s.on_reply(&key, Tag::Info, &info, 2000);
    assert!(s.masters["mymaster"].replicas.contains_key(&Addr::new("10.0.0.2", 6380)));
    assert!(s.config_dirty);
}

#[test]
fn the_config_rewrite_keeps_the_state_a_restart_needs() {
    let mut s = sentinel();
    s.vote_leader("mymaster", 3, &"a".repeat(40), 5000);
    add_replica(&mut s, 6380, 0, 100, 5000);
    s.process_hello(&format!("10.0.0.9,26379,{},3,mymaster,10.0.0.1,6379,0", "f".repeat(40)), 5000);
    let conf = config::ServerConf { port: 26380, ..Default::default() };
    let text = config::rewrite(&conf, &s);
    let mut back = Sentinel::new(SeededRng::from_seed(9), 0, 0);
    let mut conf2 = config::ServerConf::default();
    config::load(&text, &mut conf2, &mut back, 0).unwrap();
    assert_eq!(back.myid, s.myid);
    assert_eq!(back.current_epoch, 3);
    assert_eq!(conf2.port, 26380);
    let m = &back.masters["mymaster"];
    assert_eq!(m.leader_epoch, 3, "a restarted sentinel must not vote again in epoch 3");
    assert_eq!(m.replicas.len(), 1);
    assert_eq!(m.sentinels.len(), 1);
    assert_eq!(config::rewrite(&conf2, &back), text);
}

#[test]
fn config_errors_name_the_line() {
    let mut s = Sentinel::new(SeededRng::from_seed(1), 0, 0);
    let mut c = config::ServerConf::default();
    let e = config::load("port 26379\nsentinel foo bar\n", &mut c, &mut s, 0).unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(e.reason, "Unrecognized sentinel configuration statement.");
    let e = config::load("sentinel monitor m 127.0.0.1 6379 0\n", &mut c, &mut s, 0).unwrap_err();
    assert_eq!(e.reason, "Quorum must be 1 or greater.");
}
