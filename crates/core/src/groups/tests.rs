//! Group tests: each path by hand with an explicit clock, then random sequences of calls
//! checked against the protocol's invariants.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

const TIMEOUT: i64 = 10_000;

fn topics(list: &[(&str, u32)]) -> BTreeMap<String, u32> {
    list.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect()
}

fn tp(topic: &str, partition: u32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn tps(list: &[(&str, u32)]) -> Vec<TopicPartition> {
    list.iter().map(|(t, p)| tp(t, *p)).collect()
}

fn spec(client: &str, subscription: Subscription, assignor: Assignor) -> JoinSpec {
    JoinSpec {
        member_id: None,
        client_id: client.to_owned(),
        subscription,
        assignor,
        session_timeout_ms: TIMEOUT,
    }
}

fn on(names: &[&str]) -> Subscription {
    Subscription::topics(names.iter().copied()).unwrap()
}

fn join(
    g: &mut Group,
    client: &str,
    sub: Subscription,
    ts: &BTreeMap<String, u32>,
    now: i64,
) -> String {
    let (id, changes) = g
        .join(spec(client, sub, Assignor::Sticky), ts, now)
        .unwrap();
    assert!(changes.assignments.iter().any(|(m, _)| *m == id));
    check(g, ts);
    id
}

/// A group "g" where `a`, then `b`, joined at `now`, both reading every topic of `ts`.
fn two(ts: &BTreeMap<String, u32>, assignor: Assignor, now: i64) -> (Group, String, String) {
    let mut g = Group::new("g");
    let all = Subscription::topics(ts.keys().cloned()).unwrap();
    let (a, _) = g.join(spec("a", all.clone(), assignor), ts, now).unwrap();
    let (b, _) = g.join(spec("b", all, assignor), ts, now).unwrap();
    check(&g, ts);
    (g, a, b)
}

fn owned(g: &Group, m: &str) -> Vec<TopicPartition> {
    g.assignment(m).unwrap().partitions
}

fn revoking(g: &Group, m: &str) -> Vec<TopicPartition> {
    g.assignment(m).unwrap().revoking
}

fn members_of(c: &Changes) -> Vec<&str> {
    c.assignments.iter().map(|(m, _)| m.as_str()).collect()
}

/// The protocol's invariants, from the inside.
fn check(g: &Group, ts: &BTreeMap<String, u32>) {
    let mut owners: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    let mut revokers: BTreeMap<&TopicPartition, &str> = BTreeMap::new();
    for (id, m) in &g.members {
        for tp in &m.owned {
            if let Some(other) = owners.insert(tp, id) {
                panic!("{tp} owned by {other} and {id}");
            }
            assert!(
                m.subscription.matches(&tp.topic),
                "{id} owns {tp} unsubscribed"
            );
        }
        for tp in m.revoking.keys() {
            if let Some(other) = revokers.insert(tp, id) {
                panic!("{tp} revoked by {other} and {id}");
            }
        }
        for tp in m.owned.iter().chain(m.revoking.keys()) {
            assert!(
                ts.get(&tp.topic).is_some_and(|n| tp.partition < *n),
                "{tp} does not exist"
            );
        }
    }
    for (tp, who) in &revokers {
        assert!(
            !owners.contains_key(tp),
            "{tp} owned while {who} revokes it"
        );
    }
    for (tp, to) in &g.pending {
        assert!(
            g.members.contains_key(to),
            "{tp} pending to non-member {to}"
        );
        assert!(
            !owners.contains_key(tp) || owners[tp] != to,
            "{tp} pending to its owner"
        );
    }
    assert_eq!(g.assignor.is_some(), !g.members.is_empty());
}

/// Confirms every revocation; one round must be enough, since each target is kept.
fn settle(g: &mut Group, ts: &BTreeMap<String, u32>, now: i64) {
    let revokers: Vec<(String, Vec<TopicPartition>)> = g
        .members
        .iter()
        .filter(|(_, m)| !m.revoking.is_empty())
        .map(|(id, m)| (id.clone(), m.revoking.keys().cloned().collect()))
        .collect();
    for (id, list) in revokers {
        g.revoked(&id, &list, ts, now).unwrap();
        check(g, ts);
    }
    for (id, m) in &g.members {
        assert!(
            m.revoking.is_empty(),
            "{id} revokes again after one round: {:?}",
            m.revoking
        );
    }
    assert!(
        g.pending.is_empty(),
        "pending after settling: {:?}",
        g.pending
    );
}

#[test]
fn first_member_gets_everything() {
    let ts = topics(&[("t", 3)]);
    let mut g = Group::new("g");
    let (a, changes) = g
        .join(spec("a", on(&["t"]), Assignor::Sticky), &ts, 0)
        .unwrap();
    assert!(
        a.starts_with("a-") && a.len() == 2 + 36,
        "client id then a UUID: {a}"
    );
    assert_eq!(g.generation(), 1);
    let want = Assignment {
        generation: 1,
        partitions: tps(&[("t", 0), ("t", 1), ("t", 2)]),
        revoking: vec![],
    };
    assert_eq!(changes.assignments, vec![(a.clone(), want)]);
    assert!(changes.removed.is_empty());
    let (b, _) = g
        .join(spec("", on(&["t"]), Assignor::Sticky), &ts, 0)
        .unwrap();
    assert_eq!(b.len(), 36, "an empty client id gives a bare UUID: {b}");
}

/// The module docs' timeline: revoke at one generation, hand over at the next.
#[test]
fn a_move_is_revoked_then_handed_over() {
    let ts = topics(&[("t", 4)]);
    let mut g = Group::new("g");
    let a = join(&mut g, "a", on(&["t"]), &ts, 0);
    assert_eq!(g.generation(), 1);
    let b = join(&mut g, "b", on(&["t"]), &ts, 5);

    // Generation 2: A gives up its two highest; B waits.
    assert_eq!(g.generation(), 2);
    assert_eq!(owned(&g, &a), tps(&[("t", 0), ("t", 1)]));
    assert_eq!(revoking(&g, &a), tps(&[("t", 2), ("t", 3)]));
    assert_eq!(owned(&g, &b), vec![]);
    assert_eq!(g.describe().members[1].incoming, tps(&[("t", 2), ("t", 3)]));
    // A may commit its final position of what it revokes; B may not touch it yet.
    g.check_commit(&a, 2, &tp("t", 2)).unwrap();
    assert!(matches!(
        g.check_commit(&b, 2, &tp("t", 2)),
        Err(Error::NotAssigned { .. })
    ));

    // A confirms one: generation 3, B gets it; the other is still A's to confirm.
    let c = g.revoked(&a, &tps(&[("t", 2)]), &ts, 6).unwrap();
    check(&g, &ts);
    assert_eq!(g.generation(), 3);
    assert_eq!(members_of(&c), vec![a.as_str(), b.as_str()]);
    assert!(c.assignments.iter().all(|(_, x)| x.generation == 3));
    assert_eq!(owned(&g, &b), tps(&[("t", 2)]));
    assert_eq!(revoking(&g, &a), tps(&[("t", 3)]));
    // A's commit at generation 2 is now stale.
    assert!(matches!(
        g.check_commit(&a, 2, &tp("t", 3)),
        Err(Error::StaleGeneration {
            given: 2,
            current: 3,
            ..
        })
    ));

    let c = g.revoked(&a, &tps(&[("t", 3)]), &ts, 7).unwrap();
    assert_eq!(g.generation(), 4);
    assert_eq!(c.assignments.len(), 2);
    assert_eq!(owned(&g, &a), tps(&[("t", 0), ("t", 1)]));
    assert_eq!(owned(&g, &b), tps(&[("t", 2), ("t", 3)]));
    assert!(revoking(&g, &a).is_empty());
    // Confirming again is harmless and changes nothing.
    let c = g.revoked(&a, &tps(&[("t", 3)]), &ts, 8).unwrap();
    assert!(c.is_empty());
    assert_eq!(g.generation(), 4);
}

/// A member joining during a handoff does not redirect it: what was promised to B goes to B.
#[test]
fn a_handoff_keeps_its_destination() {
    let ts = topics(&[("t", 4)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 0);
    assert_eq!(g.describe().members[1].incoming, tps(&[("t", 2), ("t", 3)]));
    let c = join(&mut g, "c", on(&["t"]), &ts, 0);
    // C's share comes from A, the most loaded: A now revokes #1 as well.
    assert_eq!(owned(&g, &a), tps(&[("t", 0)]));
    assert_eq!(revoking(&g, &a), tps(&[("t", 1), ("t", 2), ("t", 3)]));
    let d = g.describe();
    assert_eq!(d.members[1].incoming, tps(&[("t", 2), ("t", 3)]));
    assert_eq!(d.members[2].incoming, tps(&[("t", 1)]));
    g.revoked(&a, &tps(&[("t", 2)]), &ts, 1).unwrap();
    check(&g, &ts);
    assert_eq!(owned(&g, &b), tps(&[("t", 2)]));
    settle(&mut g, &ts, 2);
    assert_eq!(owned(&g, &b), tps(&[("t", 2), ("t", 3)]));
    assert_eq!(owned(&g, &c), tps(&[("t", 1)]));
}

/// Kafka's examples through the whole protocol: C1 joining takes its share by revocation.
#[test]
fn kafka_examples_through_the_protocol() {
    let ts = topics(&[("t0", 3), ("t1", 3)]);
    let cases = [
        (
            Assignor::Range,
            tps(&[("t0", 0), ("t0", 1), ("t1", 0), ("t1", 1)]),
            tps(&[("t0", 2), ("t1", 2)]),
        ),
        (
            Assignor::RoundRobin,
            tps(&[("t0", 0), ("t0", 2), ("t1", 1)]),
            tps(&[("t0", 1), ("t1", 0), ("t1", 2)]),
        ),
    ];
    for (assignor, want0, want1) in cases {
        let (mut g, c0, c1) = two(&ts, assignor, 0);
        assert_eq!(owned(&g, &c0), want0, "{assignor}: C0 keeps its share");
        assert_eq!(
            revoking(&g, &c0),
            want1,
            "{assignor}: C0 revokes C1's share"
        );
        settle(&mut g, &ts, 0);
        assert_eq!(owned(&g, &c0), want0, "{assignor}");
        assert_eq!(owned(&g, &c1), want1, "{assignor}");
        assert_eq!(g.generation(), 3, "{assignor}: join, revoke, hand over");
    }
}

#[test]
fn rejoin_keeps_partitions_without_a_rebalance() {
    let ts = topics(&[("t", 4)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 0);
    settle(&mut g, &ts, 0);
    let generation = g.generation();
    let before = g.assignment(&a).unwrap();

    let mut again = spec("a", on(&["t"]), Assignor::Sticky);
    again.member_id = Some(a.clone());
    let (id, c) = g.join(again.clone(), &ts, 100).unwrap();
    assert_eq!(id, a);
    assert_eq!(g.generation(), generation, "no rebalance");
    assert_eq!(
        c.assignments,
        vec![(a.clone(), before)],
        "only the rejoiner is told"
    );
    assert_eq!(
        g.describe().members[0].last_heartbeat_ms,
        100,
        "a rejoin is a heartbeat"
    );

    // A rejoin with another subscription rebalances: A revokes all of t, B takes it.
    again.subscription = on(&["u"]);
    let (_, c) = g.join(again, &ts, 200).unwrap();
    assert_eq!(g.generation(), generation + 1);
    assert_eq!(members_of(&c), vec![a.as_str(), b.as_str()]);
    assert_eq!(revoking(&g, &a).len(), 2);
    settle(&mut g, &ts, 200);
    assert_eq!(owned(&g, &b).len(), 4);
    assert!(owned(&g, &a).is_empty());
}

#[test]
fn unknown_and_removed_members_cannot_come_back() {
    let ts = topics(&[("t", 2)]);
    let mut g = Group::new("/v/s group g");
    let a = join(&mut g, "a", on(&["t"]), &ts, 0);
    let b = join(&mut g, "b", on(&["t"]), &ts, 0);

    let mut zombie = spec("z", on(&["t"]), Assignor::Sticky);
    zombie.member_id = Some("z-1".into());
    let before = g.describe();
    let e = g.join(zombie, &ts, 0).unwrap_err();
    assert!(matches!(e, Error::UnknownMember { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "group /v/s group g has no member z-1; join without a member id"
    );
    assert_eq!(g.describe(), before, "a refused join changes nothing");
    assert!(matches!(
        g.heartbeat("z-1", 1),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        g.revoked("z-1", &[], &ts, 1),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        g.check_commit("z-1", g.generation(), &tp("t", 0)),
        Err(Error::UnknownMember { .. })
    ));

    let c = g.leave(&a, &ts, 1);
    assert_eq!(c.removed, vec![(a.clone(), RemovedReason::Left)]);
    let mut back = spec("a", on(&["t"]), Assignor::Sticky);
    back.member_id = Some(a.clone());
    let e = g.join(back, &ts, 2).unwrap_err();
    assert!(
        matches!(
            &e,
            Error::Fenced {
                reason: RemovedReason::Left,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("because it left the group"), "{e}");
    assert!(matches!(g.heartbeat(&a, 2), Err(Error::Fenced { .. })));
    assert!(matches!(
        g.check_commit(&a, g.generation(), &tp("t", 0)),
        Err(Error::Fenced { .. })
    ));
    assert_eq!(g.describe().members.len(), 1);
    assert_eq!(g.describe().members[0].member_id, b);
}

#[test]
fn members_must_share_the_groups_assignor() {
    let ts = topics(&[("t", 2)]);
    let mut g = Group::new("g");
    let (a, _) = g
        .join(spec("a", on(&["t"]), Assignor::Range), &ts, 0)
        .unwrap();
    let before = g.describe();
    let e = g
        .join(spec("b", on(&["t"]), Assignor::Sticky), &ts, 0)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "assignor: group g uses the range assignor; the member asked for sticky"
    );
    assert_eq!(g.describe(), before);
    // Once the group is empty, the next first member chooses again.
    g.leave(&a, &ts, 1);
    assert_eq!(g.describe().assignor, None);
    g.join(spec("b", on(&["t"]), Assignor::Sticky), &ts, 2)
        .unwrap();
    assert_eq!(g.describe().assignor, Some(Assignor::Sticky));
}

#[test]
fn bad_input_is_refused_naming_the_field() {
    let ts = topics(&[("t", 2)]);
    let mut g = Group::new("g");
    let field = |e: Error| match e {
        Error::InvalidArgument { field, .. } => field,
        other => panic!("{other}"),
    };
    for timeout in [0, -1, MAX_SESSION_TIMEOUT_MS + 1] {
        let mut s = spec("a", on(&["t"]), Assignor::Sticky);
        s.session_timeout_ms = timeout;
        assert_eq!(field(g.join(s, &ts, 0).unwrap_err()), "session_timeout_ms");
    }
    for client in ["x".repeat(MAX_CLIENT_ID_BYTES + 1), "a\nb".into()] {
        assert_eq!(
            field(
                g.join(spec(&client, on(&["t"]), Assignor::Sticky), &ts, 0)
                    .unwrap_err()
            ),
            "client_id"
        );
    }
    assert!(g.is_empty() && g.generation() == 0, "nothing changed");

    assert_eq!(field(Subscription::pattern("(").unwrap_err()), "pattern");
    assert_eq!(field(Subscription::pattern("").unwrap_err()), "pattern");
    assert_eq!(
        field(Subscription::pattern(&"a".repeat(MAX_PATTERN_BYTES + 1)).unwrap_err()),
        "pattern"
    );
    assert_eq!(
        field(Subscription::topics(Vec::<String>::new()).unwrap_err()),
        "topics"
    );
    assert_eq!(field(Subscription::topics([""]).unwrap_err()), "topics");
    assert_eq!(field("fair".parse::<Assignor>().unwrap_err()), "assignor");

    for (text, a) in [
        ("range", Assignor::Range),
        ("roundrobin", Assignor::RoundRobin),
        ("sticky", Assignor::Sticky),
        ("", Assignor::Sticky),
    ] {
        assert_eq!(text.parse::<Assignor>().unwrap(), a);
    }
    assert_eq!(Assignor::default(), Assignor::Sticky);
    assert_eq!(
        Subscription::topics(["b", "a", "b"]).unwrap(),
        Subscription::Topics(vec!["a".into(), "b".into()])
    );
}

#[test]
fn patterns_match_whole_topic_names() {
    let p = Subscription::pattern("temp|temp.*x").unwrap();
    assert!(p.matches("temp") && p.matches("temp-max"));
    assert!(!p.matches("temperature") && !p.matches("room-temp"));
    assert_eq!(p.to_string(), "pattern temp|temp.*x");
}

#[test]
fn a_member_expires_at_exactly_its_session_timeout() {
    let ts = topics(&[("t", 4)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 1_000);
    settle(&mut g, &ts, 1_000);
    assert_eq!(g.next_deadline(), Some(1_000 + TIMEOUT));

    g.heartbeat(&b, 1_000 + TIMEOUT / 2).unwrap();
    assert_eq!(g.next_deadline(), Some(1_000 + TIMEOUT), "a's deadline");
    assert!(g.expire(&ts, 1_000 + TIMEOUT - 1).is_empty());
    assert_eq!(g.describe().members.len(), 2);

    let generation = g.generation();
    let c = g.expire(&ts, 1_000 + TIMEOUT);
    check(&g, &ts);
    assert_eq!(c.removed, vec![(a.clone(), RemovedReason::SessionExpired)]);
    // A dead member's partitions move at once, without a revocation step.
    assert_eq!(g.generation(), generation + 1);
    assert_eq!(members_of(&c), vec![b.as_str()]);
    assert_eq!(owned(&g, &b).len(), 4);
    assert!(revoking(&g, &b).is_empty());
    assert_eq!(g.next_deadline(), Some(1_000 + TIMEOUT / 2 + TIMEOUT));
    assert!(matches!(
        g.heartbeat(&a, 1_000 + TIMEOUT),
        Err(Error::Fenced {
            reason: RemovedReason::SessionExpired,
            ..
        })
    ));

    let c = g.expire(&ts, 1_000 + TIMEOUT / 2 + TIMEOUT);
    assert_eq!(c.removed, vec![(b, RemovedReason::SessionExpired)]);
    assert!(c.assignments.is_empty());
    assert!(g.is_empty() && g.next_deadline().is_none());
}

#[test]
fn leaving_frees_partitions_at_once() {
    let ts = topics(&[("t", 4)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 0);
    settle(&mut g, &ts, 0);
    let generation = g.generation();
    let c = g.leave(&a, &ts, 1);
    check(&g, &ts);
    assert_eq!(g.generation(), generation + 1);
    assert_eq!(c.removed, vec![(a.clone(), RemovedReason::Left)]);
    assert_eq!(members_of(&c), vec![b.as_str()]);
    assert_eq!(owned(&g, &b).len(), 4);
    assert!(g.leave(&a, &ts, 2).is_empty(), "leaving twice is a no-op");
    assert_eq!(g.generation(), generation + 1);
}

#[test]
fn a_revoking_member_that_leaves_hands_over_at_once() {
    let ts = topics(&[("t", 4)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 0);
    assert_eq!(revoking(&g, &a).len(), 2);
    g.leave(&a, &ts, 1);
    check(&g, &ts);
    assert_eq!(owned(&g, &b).len(), 4);
}

#[test]
fn a_revocation_not_confirmed_in_time_removes_the_member() {
    let ts = topics(&[("t", 4)]);
    let mut g = Group::new("g");
    let a = join(&mut g, "a", on(&["t"]), &ts, 0);
    let b = join(&mut g, "b", on(&["t"]), &ts, 3_000);
    assert_eq!(revoking(&g, &a).len(), 2);
    // A's revocation began at 3000: its deadline is before its session's (0 + TIMEOUT)
    // once A heartbeats.
    g.heartbeat(&a, 4_000).unwrap();
    g.heartbeat(&b, 4_000).unwrap();
    assert_eq!(g.next_deadline(), Some(3_000 + TIMEOUT));
    g.heartbeat(&a, 3_000 + TIMEOUT - 1).unwrap();
    g.heartbeat(&b, 3_000 + TIMEOUT - 1).unwrap();
    assert!(g.expire(&ts, 3_000 + TIMEOUT - 1).is_empty());
    let c = g.expire(&ts, 3_000 + TIMEOUT);
    check(&g, &ts);
    assert_eq!(c.removed, vec![(a.clone(), RemovedReason::RevokeTimeout)]);
    assert_eq!(owned(&g, &b).len(), 4);
    let e = g.heartbeat(&a, 3_000 + TIMEOUT).unwrap_err();
    assert!(
        e.to_string().contains("did not confirm a revocation"),
        "{e}"
    );
}

#[test]
fn a_pattern_picks_up_new_topics() {
    let mut ts = topics(&[("a1", 2), ("b", 1)]);
    let mut g = Group::new("g");
    let m = join(&mut g, "m", Subscription::pattern("a.*").unwrap(), &ts, 0);
    assert_eq!(owned(&g, &m), tps(&[("a1", 0), ("a1", 1)]));
    let generation = g.generation();

    // A topic the pattern does not match changes nothing.
    ts.insert("b2".into(), 3);
    assert!(g.topics_changed(&ts, 1).is_empty());
    assert_eq!(g.generation(), generation);

    ts.insert("a2".into(), 1);
    let c = g.topics_changed(&ts, 2);
    check(&g, &ts);
    assert_eq!(g.generation(), generation + 1);
    assert_eq!(
        c.assignments[0].1.partitions,
        tps(&[("a1", 0), ("a1", 1), ("a2", 0)])
    );

    // A deleted topic's partitions are dropped, not revoked.
    ts.remove("a1");
    g.topics_changed(&ts, 3);
    check(&g, &ts);
    assert_eq!(g.generation(), generation + 2);
    assert_eq!(owned(&g, &m), tps(&[("a2", 0)]));
    assert!(revoking(&g, &m).is_empty());
}

#[test]
fn grown_partitions_are_assigned_and_range_moves_through_revocation() {
    let mut ts = topics(&[("t", 3)]);
    let (mut g, c0, c1) = two(&ts, Assignor::Range, 0);
    settle(&mut g, &ts, 0);
    assert_eq!(owned(&g, &c0), tps(&[("t", 0), ("t", 1)]));
    assert_eq!(owned(&g, &c1), tps(&[("t", 2)]));

    // 4 partitions: the new one goes straight to C1.
    ts.insert("t".into(), 4);
    let generation = g.generation();
    g.topics_changed(&ts, 1);
    check(&g, &ts);
    assert_eq!(g.generation(), generation + 1);
    assert_eq!(owned(&g, &c1), tps(&[("t", 2), ("t", 3)]));
    assert!(revoking(&g, &c1).is_empty());

    // 5: range gives C0 0..3, so C1 first revokes #2; #4 goes straight to C1.
    ts.insert("t".into(), 5);
    g.topics_changed(&ts, 2);
    check(&g, &ts);
    assert_eq!(revoking(&g, &c1), tps(&[("t", 2)]));
    assert_eq!(owned(&g, &c1), tps(&[("t", 3), ("t", 4)]));
    assert_eq!(owned(&g, &c0), tps(&[("t", 0), ("t", 1)]));
    settle(&mut g, &ts, 3);
    assert_eq!(owned(&g, &c0), tps(&[("t", 0), ("t", 1), ("t", 2)]));
}

#[test]
fn commits_are_checked() {
    let ts = topics(&[("t", 2)]);
    let (mut g, a, b) = two(&ts, Assignor::Sticky, 0);
    let generation = g.generation();
    // A owns #0 and revokes #1; B owns nothing yet.
    g.check_commit(&a, generation, &tp("t", 0)).unwrap();
    g.check_commit(&a, generation, &tp("t", 1)).unwrap();
    let e = g.check_commit(&b, generation, &tp("t", 1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("group g: member {b} is not assigned t #1")
    );
    let e = g.check_commit(&a, generation - 1, &tp("t", 0)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "group g: generation {} is stale; the current generation is {generation}",
            generation - 1
        )
    );
    assert!(matches!(
        g.check_commit(&a, generation + 1, &tp("t", 0)),
        Err(Error::StaleGeneration { .. })
    ));
    assert!(matches!(
        g.check_commit(&a, generation, &tp("u", 0)),
        Err(Error::NotAssigned { .. })
    ));
    settle(&mut g, &ts, 1);
    g.check_commit(&b, generation + 1, &tp("t", 1)).unwrap();
    assert!(matches!(
        g.check_commit(&a, generation + 1, &tp("t", 1)),
        Err(Error::NotAssigned { .. })
    ));
}

#[test]
fn describe_shows_every_member() {
    let ts = topics(&[("t", 2)]);
    let mut g = Group::new("g");
    let a = join(&mut g, "a", on(&["t"]), &ts, 7);
    let d = g.describe();
    assert_eq!(d.name, "g");
    assert_eq!(d.generation, 1);
    assert_eq!(d.assignor, Some(Assignor::Sticky));
    assert_eq!(
        d.members,
        vec![MemberDescription {
            member_id: a,
            client_id: "a".into(),
            subscription: on(&["t"]),
            last_heartbeat_ms: 7,
            session_timeout_ms: TIMEOUT,
            owned: tps(&[("t", 0), ("t", 1)]),
            revoking: vec![],
            incoming: vec![],
        }]
    );
}

/// When a new member joins a settled, balanced Sticky group, only the excess above the
/// new quota moves, and nobody else gains.
#[test]
fn sticky_join_moves_only_the_excess() {
    let ts = topics(&[("t", 7), ("u", 3)]);
    let mut g = Group::new("g");
    let mut ids = Vec::new();
    for c in ["a", "b", "c"] {
        ids.push(join(&mut g, c, on(&["t", "u"]), &ts, 0));
        settle(&mut g, &ts, 0);
    }
    let loads =
        |g: &Group, ids: &[String]| ids.iter().map(|m| owned(g, m).len()).collect::<Vec<_>>();
    let mut was = loads(&g, &ids);
    was.sort();
    assert_eq!(was, vec![3, 3, 4]);
    let before: Vec<Vec<TopicPartition>> = ids.iter().map(|m| owned(&g, m)).collect();
    ids.push(join(&mut g, "d", on(&["t", "u"]), &ts, 0));
    settle(&mut g, &ts, 0);
    // 10 over 4 is 3,3,2,2: two of the three old members keep 3, so two partitions move.
    let mut now = loads(&g, &ids);
    assert_eq!(now[3], 2, "the newcomer gets exactly the two moved");
    now.sort();
    assert_eq!(now, vec![2, 2, 3, 3]);
    for (m, had) in ids.iter().zip(&before) {
        assert!(owned(&g, m).iter().all(|tp| had.contains(tp)), "{m} gained");
    }
}

// ---- random sequences ------------------------------------------------------------------

const NAMES: [&str; 4] = ["a0", "a1", "b0", "b1"];

fn subscriptions() -> Vec<Subscription> {
    vec![
        on(&["a0"]),
        on(&["a0", "b0"]),
        on(&["a1", "b1", "zz"]),
        Subscription::pattern("a.*").unwrap(),
        Subscription::pattern(".*").unwrap(),
        Subscription::pattern("b[01]").unwrap(),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Join {
        sub: usize,
        timeout: i64,
    },
    WrongAssignor,
    Rejoin {
        who: usize,
        sub: usize,
    },
    Heartbeat {
        who: usize,
    },
    Leave {
        who: usize,
    },
    Advance {
        ms: i64,
    },
    Expire,
    Revoked {
        who: usize,
        all: bool,
    },
    /// Topic changes; a `silent` one is not reported, so the next call brings it.
    Create {
        topic: usize,
        partitions: u32,
        silent: bool,
    },
    Grow {
        topic: usize,
        by: u32,
        silent: bool,
    },
    Delete {
        topic: usize,
        silent: bool,
    },
    Commit {
        who: usize,
        stale: bool,
    },
}

fn arb_op(subs: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..subs, 50i64..400).prop_map(|(sub, timeout)| Op::Join { sub, timeout }),
        1 => Just(Op::WrongAssignor),
        1 => (any::<usize>(), 0..subs).prop_map(|(who, sub)| Op::Rejoin { who, sub }),
        2 => any::<usize>().prop_map(|who| Op::Heartbeat { who }),
        1 => any::<usize>().prop_map(|who| Op::Leave { who }),
        2 => (1i64..200).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::Expire),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(who, all)| Op::Revoked { who, all }),
        1 => (0..NAMES.len(), 1u32..5, any::<bool>())
            .prop_map(|(topic, partitions, silent)| Op::Create { topic, partitions, silent }),
        1 => (0..NAMES.len(), 1u32..3, any::<bool>()).prop_map(|(topic, by, silent)| Op::Grow { topic, by, silent }),
        1 => (0..NAMES.len(), any::<bool>()).prop_map(|(topic, silent)| Op::Delete { topic, silent }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(who, stale)| Op::Commit { who, stale }),
    ]
}

type Views = BTreeMap<String, (Vec<TopicPartition>, Vec<TopicPartition>)>;

fn views(g: &Group) -> Views {
    g.members
        .keys()
        .map(|id| {
            let a = g.assignment(id).unwrap();
            (id.clone(), (a.partitions, a.revoking))
        })
        .collect()
}

struct Run {
    g: Group,
    ts: BTreeMap<String, u32>,
    now: i64,
    assignor: Assignor,
    /// Every member id ever handed out, current or not.
    ids: Vec<String>,
}

impl Run {
    fn report(&mut self, silent: bool) -> Result<Changes> {
        if silent {
            return Ok(Changes::default());
        }
        Ok(self.g.topics_changed(&self.ts, self.now))
    }

    fn pick(&self, who: usize) -> Option<String> {
        (!self.ids.is_empty()).then(|| self.ids[who % self.ids.len()].clone())
    }

    fn step(&mut self, op: Op, subs: &[Subscription]) {
        let before_gen = self.g.generation();
        let before_views = views(&self.g);
        let before = self.g.describe();
        let result: Result<Changes> = match op {
            Op::Join { sub, timeout } => {
                // Client ids in join order make member ids sort in join order, so a
                // failing case replays the same way.
                let mut s = spec(
                    &format!("c{:03}", self.ids.len()),
                    subs[sub].clone(),
                    self.assignor,
                );
                s.session_timeout_ms = timeout;
                self.g.join(s, &self.ts, self.now).map(|(id, c)| {
                    self.ids.push(id);
                    c
                })
            }
            Op::WrongAssignor => {
                let other = match self.assignor {
                    Assignor::Sticky => Assignor::Range,
                    _ => Assignor::Sticky,
                };
                if self.g.is_empty() {
                    return; // the first member chooses: nothing to refuse
                }
                let r = self
                    .g
                    .join(spec("w", subs[0].clone(), other), &self.ts, self.now);
                assert!(matches!(r, Err(Error::AssignorMismatch { .. })), "{r:?}");
                r.map(|(_, c)| c)
            }
            Op::Rejoin { who, sub } => {
                let Some(id) = self.pick(who) else { return };
                let mut s = spec("c", subs[sub].clone(), self.assignor);
                s.member_id = Some(id.clone());
                let known = self.g.members.contains_key(&id);
                let r = self.g.join(s, &self.ts, self.now);
                assert_eq!(r.is_ok(), known, "{r:?}");
                r.map(|(_, c)| c)
            }
            Op::Heartbeat { who } => {
                let Some(id) = self.pick(who) else { return };
                self.g.heartbeat(&id, self.now).map(|()| Changes::default())
            }
            Op::Leave { who } => {
                let Some(id) = self.pick(who) else { return };
                Ok(self.g.leave(&id, &self.ts, self.now))
            }
            Op::Advance { ms } => {
                self.now += ms;
                return;
            }
            Op::Expire => {
                let deadline = self.g.next_deadline();
                let c = self.g.expire(&self.ts, self.now);
                // next_deadline is exact: nothing is removed before it, something at it.
                assert_eq!(c.removed.is_empty(), deadline.is_none_or(|d| self.now < d));
                Ok(c)
            }
            Op::Revoked { who, all } => {
                let Some(id) = self.pick(who) else { return };
                let list = match self.g.assignment(&id) {
                    Some(a) if all => a.revoking,
                    Some(a) => a.revoking.into_iter().take(1).collect(),
                    None => vec![],
                };
                let promised = self.g.pending.clone();
                let same_topics = self.g.last_topics.as_ref() == Some(&self.ts);
                // The reference: confirm, then a full rebalance.
                let mut full = self.g.clone();
                let full_r = match full.members.get_mut(&id) {
                    None => Err(full.not_a_member(&id)),
                    Some(m) => {
                        m.heartbeat(self.now);
                        let before = m.revoking.len();
                        for tp in &list {
                            m.revoking.remove(tp);
                        }
                        Ok(if m.revoking.len() == before {
                            Changes::default()
                        } else {
                            full.rebalance(&self.ts, self.now, true)
                        })
                    }
                };
                let r = self.g.revoked(&id, &list, &self.ts, self.now);
                assert_eq!(
                    format!("{r:?}"),
                    format!("{full_r:?}"),
                    "the handoff shortcut differs"
                );
                assert_eq!(
                    self.g.describe(),
                    full.describe(),
                    "the handoff shortcut differs"
                );
                // A confirmation hands each partition to the member it was promised to.
                if same_topics {
                    for tp in &list {
                        if let Some(to) = promised.get(tp) {
                            assert!(
                                self.g.members[to].owned.contains(tp),
                                "{tp} not handed to {to}"
                            );
                        }
                    }
                }
                r
            }
            Op::Create {
                topic,
                partitions,
                silent,
            } => {
                self.ts.entry(NAMES[topic].into()).or_insert(partitions);
                self.report(silent)
            }
            Op::Grow { topic, by, silent } => {
                if let Some(n) = self.ts.get_mut(NAMES[topic]) {
                    *n += by;
                }
                self.report(silent)
            }
            Op::Delete { topic, silent } => {
                self.ts.remove(NAMES[topic]);
                self.report(silent)
            }
            Op::Commit { who, stale } => {
                let Some(id) = self.pick(who) else { return };
                let generation = self.g.generation() - u64::from(stale && self.g.generation() > 0);
                if let Some(a) = self.g.assignment(&id) {
                    for tp in a.partitions.iter().chain(&a.revoking) {
                        let r = self.g.check_commit(&id, generation, tp);
                        assert_eq!(r.is_ok(), generation == self.g.generation(), "{r:?}");
                    }
                }
                return;
            }
        };
        // The group is consistent with the topics of its last rebalance.
        check(&self.g, &self.g.last_topics.clone().unwrap_or_default());
        let after_gen = self.g.generation();
        let changes = match result {
            Ok(c) => c,
            Err(_) => {
                assert_eq!(self.g.describe(), before, "a refused call changes nothing");
                return;
            }
        };
        assert!(after_gen >= before_gen);
        // Every change of a member's view moves the generation.
        let after_views = views(&self.g);
        let changed = after_views
            .iter()
            .any(|(id, v)| match before_views.get(id) {
                Some(old) => old != v,
                None => !v.0.is_empty() || !v.1.is_empty(),
            });
        if changed {
            assert!(
                after_gen > before_gen,
                "views changed at the same generation"
            );
        }
        // All members are told when the generation moves; what they are told is current.
        if after_gen > before_gen {
            assert_eq!(after_gen, before_gen + 1, "one step per call");
            let told: Vec<&String> = changes.assignments.iter().map(|(m, _)| m).collect();
            let all: Vec<&String> = self.g.members.keys().collect();
            assert_eq!(told, all);
        }
        for (m, a) in &changes.assignments {
            assert_eq!(Some(a), self.g.assignment(m).as_ref());
        }
        for (m, _) in &changes.removed {
            assert!(!self.g.members.contains_key(m) && before_views.contains_key(m));
        }
    }

    /// Heartbeats everyone, confirms all revocations (one round), and checks the end state.
    fn finish(&mut self) {
        let ids: Vec<String> = self.g.members.keys().cloned().collect();
        for id in &ids {
            self.g.heartbeat(id, self.now).unwrap();
        }
        self.g.topics_changed(&self.ts, self.now);
        settle(&mut self.g, &self.ts, self.now);
        // Settled: a full rebalance now is a no-op.
        assert!(
            self.g.rebalance(&self.ts, self.now, false).is_empty(),
            "not a fixed point"
        );
        // Every subscribed partition has exactly one owner, who subscribes to it.
        let mut owner: BTreeMap<TopicPartition, &str> = BTreeMap::new();
        for (id, m) in &self.g.members {
            for tp in &m.owned {
                owner.insert(tp.clone(), id);
            }
        }
        for (t, n) in &self.ts {
            let wanted = self.g.members.values().any(|m| m.subscription.matches(t));
            for p in 0..*n {
                let tp = TopicPartition::new(t.clone(), p);
                assert_eq!(owner.contains_key(&tp), wanted, "{tp}");
            }
        }
        // Sticky with identical subscriptions is balanced.
        let first = self.g.members.values().next().map(|m| &m.subscription);
        if self.assignor == Assignor::Sticky
            && self
                .g
                .members
                .values()
                .all(|m| Some(&m.subscription) == first)
        {
            let loads: Vec<usize> = self.g.members.values().map(|m| m.owned.len()).collect();
            let (lo, hi) = (loads.iter().min(), loads.iter().max());
            if let (Some(lo), Some(hi)) = (lo, hi) {
                assert!(hi - lo <= 1, "unbalanced: {loads:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_sequences_keep_the_invariants(
        which in 0usize..3,
        initial in prop::collection::vec(0u32..5, NAMES.len()),
        ops in prop::collection::vec(arb_op(6), 1..60),
    ) {
        let subs = subscriptions();
        let assignor = [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky][which];
        let ts = NAMES.iter().zip(&initial).filter(|(_, n)| **n > 0).map(|(t, n)| ((*t).to_owned(), *n)).collect();
        let mut run = Run { g: Group::new("g"), ts, now: 0, assignor, ids: Vec::new() };
        for op in ops {
            run.step(op, &subs);
        }
        run.finish();
    }

    /// One member joining a settled, balanced Sticky group of n over P partitions moves
    /// exactly the excess: members above the new quota give it up, nobody else gains.
    #[test]
    fn sticky_join_is_minimal(n in 1usize..7, sizes in prop::collection::vec(1u32..9, 1..4)) {
        let ts: BTreeMap<String, u32> = sizes.iter().enumerate().map(|(t, p)| (format!("t{t}"), *p)).collect();
        let all = Subscription::pattern("t.*").unwrap();
        let mut g = Group::new("g");
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(join(&mut g, &format!("c{i}"), all.clone(), &ts, 0));
            settle(&mut g, &ts, 0);
        }
        let had: Vec<BTreeSet<TopicPartition>> = ids.iter().map(|m| g.members[m].owned.clone()).collect();
        let loads: Vec<usize> = had.iter().map(BTreeSet::len).collect();
        prop_assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1);

        let newcomer = join(&mut g, "new", all, &ts, 0);
        settle(&mut g, &ts, 0);
        let total: usize = ts.values().map(|p| *p as usize).sum();
        let (q, r) = (total / (n + 1), total % (n + 1));
        let most_kept = had.iter().map(|h| h.len().min(q)).sum::<usize>()
            + r.min(had.iter().filter(|h| h.len() > q).count());
        let mut kept = 0;
        for (m, h) in ids.iter().zip(&had) {
            let now = &g.members[m].owned;
            prop_assert!(now.is_subset(h), "{} gained", m);
            kept += now.len();
        }
        prop_assert_eq!(kept, most_kept);
        prop_assert_eq!(g.members[&newcomer].owned.len(), total - kept);
    }
}
