//! Pub/sub, keyspace notifications and WATCH across connections, which the case files
//! cannot say: scenarios over numbered connections on the `blocking` machinery, run against
//! real redis and redsim, transcripts compared. Messages reach subscribers that are idle in a
//! read, so each `Read` of a subscriber checks that the server woke it.

use crate::blocking::{client_flags, same_on_both, Step, Step::*, SETTLE_MS};

/// A step whose command is built at run time (a long payload); leaked, as tests are short.
fn cmd(c: usize, text: String) -> Step {
    Cmd(c, Box::leak(text.into_boxed_str()))
}

/// `cmd`, its reply left out of the transcript.
fn quiet(c: usize, text: String) -> Step {
    Quiet(c, Box::leak(text.into_boxed_str()))
}

#[test]
fn publish_reaches_idle_subscribers_of_channels_and_patterns() {
    same_on_both(
        "publish",
        &[
            Cmd(0, "SUBSCRIBE news"),
            Cmd(1, "PSUBSCRIBE n*"),
            Cmd(1, "PSUBSCRIBE zz?"),
            Quiet(2, "HELLO 3"),
            Cmd(2, "SUBSCRIBE news other"),
            Read(2),
            Cmd(3, "PUBLISH news hello"),
            Read(0),
            Read(1),
            Read(2),
            Cmd(3, "PUBLISH other x"),
            Read(2),
            Cmd(3, "PUBLISH nobody x"),
            Cmd(3, "PUBSUB NUMSUB news other nobody"),
            Cmd(3, "PUBSUB NUMPAT"),
            Cmd(0, "UNSUBSCRIBE news"),
            Cmd(3, "PUBLISH news again"),
            Read(1),
            Read(2),
            // A RESP3 subscriber blocked in BLPOP still gets its messages.
            Send(2, "BLPOP k 0"),
            Sleep(SETTLE_MS),
            Cmd(3, "PUBLISH other while-blocked"),
            Read(2),
            Cmd(3, "RPUSH k v"),
            Read(2),
            Close(2),
            Sleep(SETTLE_MS),
            Cmd(3, "PUBSUB NUMSUB news other"),
            Cmd(3, "SPUBLISH news s"),
        ],
    );
}

#[test]
fn subscribers_show_in_client_list_info_and_client_kill_type() {
    same_on_both(
        "introspection",
        &[
            Cmd(0, "SUBSCRIBE a b"),
            Read(0),
            Cmd(1, "PSUBSCRIBE p*"),
            Cmd(1, "SSUBSCRIBE s"),
            Cmd(2, "MULTI"),
            Cmd(2, "PING"),
            ClientFields(3, &["flags", "sub", "psub", "ssub", "multi", "cmd"]),
            Cmd(2, "EXEC"),
            InfoFields(3, "stats", &["pubsub_"]),
            Cmd(3, "CLIENT KILL TYPE pubsub"),
            Sleep(SETTLE_MS),
            client_flags(3),
            InfoFields(3, "stats", &["pubsub_"]),
        ],
    );
}

#[test]
fn watch_fails_when_another_client_writes_the_key() {
    same_on_both(
        "watch",
        &[
            Cmd(0, "WATCH k"),
            Cmd(1, "SET other 1"),
            Cmd(0, "MULTI"),
            Cmd(0, "INCR k"),
            Cmd(0, "EXEC"),
            Cmd(0, "WATCH k"),
            Cmd(1, "SET k 5"),
            Cmd(0, "MULTI"),
            Cmd(0, "INCR k"),
            ClientFields(1, &["flags", "multi"]),
            Cmd(0, "EXEC"),
            Cmd(0, "WATCH l"),
            Cmd(1, "MULTI"),
            Cmd(1, "RPUSH l a"),
            Cmd(1, "EXEC"),
            Cmd(0, "MULTI"),
            Cmd(0, "LLEN l"),
            Cmd(0, "EXEC"),
            Cmd(0, "WATCH l k"),
            Cmd(1, "RENAME l l2"),
            Cmd(0, "MULTI"),
            Cmd(0, "GET k"),
            Cmd(0, "EXEC"),
            Cmd(0, "WATCH l2"),
            Cmd(1, "EXPIRE l2 100"),
            Cmd(0, "MULTI"),
            Cmd(0, "GET k"),
            Cmd(0, "EXEC"),
            Cmd(0, "WATCH e"),
            Cmd(1, "SET e v PX 20"),
            Cmd(0, "MULTI"),
            Cmd(0, "GET k"),
            Cmd(0, "EXEC"),
            Cmd(1, "SET e2 v PX 30"),
            Cmd(0, "WATCH e2"),
            Sleep(150),
            Cmd(0, "MULTI"),
            Cmd(0, "GET k"),
            Cmd(0, "EXEC"),
            Cmd(0, "SELECT 1"),
            Cmd(0, "WATCH k"),
            Cmd(1, "SET k 6"),
            Cmd(0, "MULTI"),
            Cmd(0, "GET k"),
            Cmd(0, "EXEC"),
            Cmd(0, "SELECT 0"),
            // A served BLMOVE writes its destination.
            Cmd(0, "WATCH dst"),
            Send(2, "BLMOVE src dst LEFT LEFT 0"),
            Sleep(SETTLE_MS),
            Cmd(1, "RPUSH src a"),
            Read(2),
            Cmd(0, "MULTI"),
            Cmd(0, "LLEN dst"),
            Cmd(0, "EXEC"),
        ],
    );
}

#[test]
fn exec_is_checked_for_memory_as_the_commands_it_runs() {
    same_on_both(
        "exec oom",
        &[
            Cmd(0, "MULTI"),
            Cmd(0, "SET a b"),
            Cmd(1, "CONFIG SET maxmemory 1"),
            Cmd(0, "EXEC"),
            Cmd(1, "CONFIG SET maxmemory 0"),
            Cmd(0, "MULTI"),
            Cmd(0, "GET a"),
            Cmd(1, "CONFIG SET maxmemory 1"),
            Cmd(0, "EXEC"),
            Cmd(1, "CONFIG SET maxmemory 0"),
            Cmd(1, "EXISTS a"),
        ],
    );
}

#[test]
fn keyspace_events_reach_another_client_including_active_expiry() {
    same_on_both(
        "keyspace events",
        &[
            Cmd(1, "CONFIG SET notify-keyspace-events KEA"),
            Cmd(0, "PSUBSCRIBE __key*@0__:*"),
            Cmd(1, "SET k v"),
            Read(0),
            Read(0),
            Cmd(1, "RPUSH l a b"),
            Cmd(1, "LPOP l 2"),
            Read(0),
            Read(0),
            Read(0),
            Read(0),
            Read(0),
            Read(0),
            Cmd(1, "SET e v PX 50"),
            Read(0),
            Read(0),
            Read(0),
            Read(0),
            // Nobody touches `e`: the server's expiry cycle deletes it and wakes the subscriber.
            Sleep(400),
            Read(0),
            Read(0),
            Cmd(1, "MULTI"),
            Cmd(1, "HSET h f v"),
            Cmd(1, "DEL k"),
            Cmd(1, "EXEC"),
            Read(0),
            Read(0),
            Read(0),
            Read(0),
            Cmd(1, "CONFIG SET notify-keyspace-events Kl"),
            Cmd(1, "SET k v"),
            Cmd(0, "PING"),
        ],
    );
}

#[test]
fn a_subscriber_that_stops_reading_is_disconnected_at_the_hard_limit() {
    // 64 MB: more than loopback socket buffers hold (up to 32 MB here), so the server's
    // buffer must grow while its writer waits on a full socket.
    let big = "y".repeat(1024 * 1024);
    let mut steps = vec![Cmd(1, "CONFIG SET client-output-buffer-limit pubsub 2mb 0 0"), Cmd(0, "SUBSCRIBE ch")];
    for _ in 0..64 {
        steps.push(quiet(1, format!("PUBLISH ch {big}")));
    }
    steps.extend([Sleep(SETTLE_MS), Cmd(1, "PUBSUB NUMSUB ch"), ClientFields(1, &["cmd"])]);
    same_on_both("stuck subscriber", &steps);
}

#[test]
fn a_subscriber_over_the_pubsub_output_limit_is_disconnected() {
    let big = "x".repeat(100_000);
    same_on_both(
        "output limit",
        &[
            Cmd(1, "CONFIG SET client-output-buffer-limit pubsub 64kb 0 0"),
            Cmd(0, "SUBSCRIBE ch"),
            Cmd(1, "PUBLISH ch small"),
            Read(0),
            cmd(1, format!("PUBLISH ch {big}")),
            Sleep(SETTLE_MS),
            Cmd(1, "PUBSUB NUMSUB ch"),
            Read(0),
        ],
    );
}
