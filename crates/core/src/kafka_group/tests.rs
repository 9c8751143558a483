//! Classic-group tests: Kafka's documented sequences (KIP-394's member id, KIP-345's static
//! members, a rebalance on join, leave and expiry), each with an explicit clock, then
//! random sequences of calls checked against the invariants.

use proptest::prelude::*;

use super::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

fn req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.to_owned(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| ((*p).to_owned(), Bytes::from(format!("meta-{p}"))))
            .collect(),
        require_known_member_id: true,
    }
}

fn joined(replies: &[Reply], member: &str) -> Option<Result<Joined>> {
    replies.iter().find_map(|r| match r {
        Reply::Join { member: m, answer } if m == member => Some(answer.clone()),
        _ => None,
    })
}

fn synced(replies: &[Reply], member: &str) -> Option<Result<Bytes>> {
    replies.iter().find_map(|r| match r {
        Reply::Sync { member: m, answer } if m == member => Some(answer.clone()),
        _ => None,
    })
}

/// KIP-394: the first join gets an id and MEMBER_ID_REQUIRED; the second, with it, joins.
fn first_join(g: &mut ClassicGroup, r: JoinRequest, now: i64) -> (String, Vec<Reply>) {
    let id = match g.join(r.clone(), now) {
        Err(Error::MemberIdRequired { member, .. }) => member,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    assert!(id.starts_with("client-"), "{id}");
    g.join(JoinRequest { member_id: id, ..r }, now).unwrap()
}

/// A stable group of one member (the leader) at generation 1.
fn stable_one(now: i64) -> (ClassicGroup, String) {
    let mut g = ClassicGroup::new("g");
    let (a, replies) = first_join(&mut g, req("", &["range"]), now);
    let j = joined(&replies, &a).unwrap().unwrap();
    assert_eq!(j.generation, 1);
    assert_eq!(j.leader, a);
    assert_eq!(j.protocol_name, "range");
    assert_eq!(j.members.len(), 1);
    assert_eq!(j.members[0].metadata, Bytes::from("meta-range"));
    let replies = g.sync(sync(&a, 1, vec![(a.clone(), "A")]), now).unwrap();
    assert_eq!(synced(&replies, &a).unwrap().unwrap(), Bytes::from("A"));
    assert_eq!(g.state(), State::Stable);
    (g, a)
}

fn sync(member: &str, generation: i32, assignments: Vec<(String, &str)>) -> SyncRequest {
    SyncRequest {
        member_id: member.to_owned(),
        instance_id: None,
        generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: assignments
            .into_iter()
            .map(|(m, a)| (m, Bytes::from(a.to_owned())))
            .collect(),
    }
}

/// A stable group of two members, `a` leading, at generation 2.
fn stable_two(now: i64) -> (ClassicGroup, String, String) {
    let (mut g, a) = stable_one(now);
    let (b, replies) = first_join(&mut g, req("", &["range"]), now);
    assert!(replies.is_empty(), "b waits for a to rejoin");
    assert_eq!(g.state(), State::PreparingRebalance);
    // The leader learns of the rebalance from its heartbeat, and rejoins.
    assert!(matches!(
        g.heartbeat(&a, None, 1, now),
        Err(Error::RebalanceInProgress { .. })
    ));
    let (_, replies) = g.join(req(&a, &["range"]), now).unwrap();
    let ja = joined(&replies, &a).unwrap().unwrap();
    let jb = joined(&replies, &b).unwrap().unwrap();
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(
        (ja.leader.as_str(), jb.leader.as_str()),
        (a.as_str(), a.as_str())
    );
    assert_eq!(ja.members.len(), 2, "the leader gets every member");
    assert!(jb.members.is_empty(), "a follower gets none");
    // The follower's sync waits for the leader's.
    assert!(g.sync(sync(&b, 2, vec![]), now).unwrap().is_empty());
    let replies = g
        .sync(sync(&a, 2, vec![(a.clone(), "A"), (b.clone(), "B")]), now)
        .unwrap();
    assert_eq!(synced(&replies, &a).unwrap().unwrap(), Bytes::from("A"));
    assert_eq!(synced(&replies, &b).unwrap().unwrap(), Bytes::from("B"));
    assert_eq!(g.state(), State::Stable);
    (g, a, b)
}

#[test]
fn a_first_join_needs_the_member_id_it_is_given() {
    let (g, a) = stable_one(0);
    assert_eq!(g.generation(), 1);
    assert_eq!(g.describe().members[0].member_id, a);
    // An id never handed out is unknown.
    let mut g = ClassicGroup::new("g");
    assert!(matches!(
        g.join(req("made-up", &["range"]), 0),
        Err(Error::UnknownMember { .. })
    ));
}

#[test]
fn old_versions_join_without_the_extra_round_trip() {
    let mut g = ClassicGroup::new("g");
    let r = JoinRequest {
        require_known_member_id: false,
        ..req("", &["range"])
    };
    let (a, replies) = g.join(r, 0).unwrap();
    assert_eq!(joined(&replies, &a).unwrap().unwrap().generation, 1);
}

#[test]
fn a_new_member_rebalances_and_stale_generations_are_refused() {
    let (mut g, a, b) = stable_two(0);
    assert_eq!(g.heartbeat(&a, None, 2, 1), Ok(()));
    assert!(matches!(
        g.heartbeat(&b, None, 1, 1),
        Err(Error::IllegalGeneration {
            given: 1,
            current: 2,
            ..
        })
    ));
    assert!(matches!(
        g.sync(sync(&b, 1, vec![]), 1),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        g.heartbeat("nobody", None, 2, 1),
        Err(Error::UnknownMember { .. })
    ));
    // In Stable, a follower's repeated sync gets its assignment at once.
    let replies = g.sync(sync(&b, 2, vec![]), 1).unwrap();
    assert_eq!(synced(&replies, &b).unwrap().unwrap(), Bytes::from("B"));
}

#[test]
fn a_follower_rejoining_unchanged_keeps_the_generation_but_the_leader_rebalances() {
    let (mut g, a, b) = stable_two(0);
    let (_, replies) = g.join(req(&b, &["range"]), 1).unwrap();
    let jb = joined(&replies, &b).unwrap().unwrap();
    assert_eq!(jb.generation, 2);
    assert_eq!(g.state(), State::Stable);
    // The leader's rejoin is how a client asks for a rebalance (new partitions, say).
    let (_, replies) = g.join(req(&a, &["range"]), 1).unwrap();
    assert!(replies.is_empty());
    assert_eq!(g.state(), State::PreparingRebalance);
    // A follower rejoining with other metadata rebalances too.
    let (_, replies) = g.join(req(&b, &["range"]), 2).unwrap();
    assert_eq!(joined(&replies, &b).unwrap().unwrap().generation, 3);
}

#[test]
fn protocols_are_intersected_and_voted_on() {
    let (mut g, _a) = stable_one(0);
    assert!(matches!(
        g.join(req("", &["roundrobin"]), 1),
        Err(Error::InconsistentProtocol { .. })
    ));
    let other_type = JoinRequest {
        protocol_type: "connect".into(),
        ..req("", &["range"])
    };
    assert!(matches!(
        g.join(other_type, 1),
        Err(Error::InconsistentProtocol { .. })
    ));
    let none = req("", &[]);
    assert!(matches!(
        g.join(none, 1),
        Err(Error::InconsistentProtocol { .. })
    ));
    assert!(g.is_empty() || g.member_count() == 1, "refusals add nobody");

    // Three members: the one protocol all support wins however they rank it.
    let mut g = ClassicGroup::new("g");
    let (a, _) = first_join(&mut g, req("", &["cooperative-sticky", "range"]), 0);
    let (b, _) = first_join(&mut g, req("", &["range", "roundrobin"]), 0);
    let (_, replies) = g
        .join(req(&a, &["cooperative-sticky", "range"]), 0)
        .unwrap();
    assert_eq!(
        joined(&replies, &b).unwrap().unwrap().protocol_name,
        "range"
    );
    // Two each way: the leader's preference breaks the tie.
    let mut g = ClassicGroup::new("g");
    let both = ["cooperative-sticky", "range"];
    let (a, _) = first_join(&mut g, req("", &both), 0);
    let (b, _) = first_join(&mut g, req("", &["range", "cooperative-sticky"]), 0);
    let (_, replies) = g.join(req(&a, &both), 0).unwrap();
    let jb = joined(&replies, &b).unwrap().unwrap();
    assert_eq!(jb.leader, a);
    assert_eq!(jb.protocol_name, "cooperative-sticky");
}

#[test]
fn a_silent_member_is_removed_and_the_group_rebalances() {
    let (mut g, a, b) = stable_two(0);
    let t = i64::from(SESSION);
    g.heartbeat(&a, None, 2, t - 1).unwrap();
    assert_eq!(g.next_deadline(), Some(t), "b's session ends first");
    assert!(g.expire(t - 1).is_empty());
    assert!(g.expire(t).is_empty(), "nobody is parked");
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.state(), State::PreparingRebalance);
    assert!(matches!(
        g.heartbeat(&b, None, 2, t),
        Err(Error::UnknownMember { .. })
    ));
    assert!(matches!(
        g.heartbeat(&a, None, 2, t),
        Err(Error::RebalanceInProgress { .. })
    ));
    let (_, replies) = g.join(req(&a, &["range"]), t).unwrap();
    let ja = joined(&replies, &a).unwrap().unwrap();
    assert_eq!((ja.generation, ja.members.len()), (3, 1));
}

#[test]
fn members_that_do_not_rejoin_in_time_are_left_out() {
    let (mut g, a, b) = stable_two(0);
    let (c, replies) = first_join(&mut g, req("", &["range"]), 100);
    assert!(replies.is_empty());
    g.join(req(&a, &["range"]), 200).unwrap();
    // b keeps heartbeating but never rejoins: it is removed at the rebalance timeout.
    let deadline = 100 + i64::from(REBALANCE);
    for now in (1_000..deadline).step_by(5_000) {
        assert!(g.heartbeat(&b, None, 2, now).is_err());
        g.join(req(&c, &["range"]), now).unwrap();
        assert!(g.expire(now).is_empty());
    }
    let replies = g.expire(deadline);
    assert_eq!(joined(&replies, &a).unwrap().unwrap().generation, 3);
    assert_eq!(joined(&replies, &c).unwrap().unwrap().members.len(), 0);
    assert!(joined(&replies, &b).is_none());
    assert_eq!(g.member_count(), 2);
}

#[test]
fn a_leader_that_never_syncs_is_removed() {
    let (mut g, a) = stable_one(0);
    let (b, _) = first_join(&mut g, req("", &["range"]), 0);
    let (_, replies) = g.join(req(&a, &["range"]), 0).unwrap();
    assert_eq!(replies.len(), 2);
    assert!(g.sync(sync(&b, 2, vec![]), 10).unwrap().is_empty());
    // The follower waits, kept alive, until the sync phase times out.
    let replies = g.expire(i64::from(REBALANCE));
    assert!(matches!(
        synced(&replies, &b).unwrap(),
        Err(Error::RebalanceInProgress { .. })
    ));
    assert_eq!(g.member_count(), 1);
    assert_eq!(g.state(), State::PreparingRebalance);
    let (_, replies) = g.join(req(&b, &["range"]), i64::from(REBALANCE)).unwrap();
    let jb = joined(&replies, &b).unwrap().unwrap();
    assert_eq!(
        (jb.generation, jb.leader.as_str()),
        (3, b.as_str()),
        "b leads now"
    );
}

#[test]
fn leaving_rebalances_and_the_last_to_leave_empties_the_group() {
    let (mut g, a, b) = stable_two(0);
    let (results, replies) = g.leave(
        &[
            Leaving {
                member_id: b.clone(),
                instance_id: None,
            },
            Leaving {
                member_id: "nobody".into(),
                instance_id: None,
            },
        ],
        1,
    );
    assert_eq!(results[0], Ok(b.clone()));
    assert!(matches!(results[1], Err(Error::UnknownMember { .. })));
    assert!(replies.is_empty());
    assert_eq!(g.state(), State::PreparingRebalance);
    let (_, replies) = g.join(req(&a, &["range"]), 2).unwrap();
    assert_eq!(joined(&replies, &a).unwrap().unwrap().generation, 3);
    let (results, _) = g.leave(
        &[Leaving {
            member_id: a.clone(),
            instance_id: None,
        }],
        3,
    );
    assert_eq!(results, vec![Ok(a)]);
    assert_eq!(g.state(), State::Empty);
    assert_eq!(g.generation(), 4);
    assert!(g.is_empty());
    assert_eq!(g.describe().protocol_type, "");
}

#[test]
fn a_leaving_member_parked_in_a_join_is_told() {
    let (mut g, a, b) = stable_two(0);
    g.join(req(&a, &["range"]), 1).unwrap();
    let (_, replies) = g.leave(
        &[Leaving {
            member_id: a.clone(),
            instance_id: None,
        }],
        2,
    );
    assert!(matches!(
        joined(&replies, &a).unwrap(),
        Err(Error::UnknownMember { .. })
    ));
    let (_, replies) = g.join(req(&b, &["range"]), 3).unwrap();
    let jb = joined(&replies, &b).unwrap().unwrap();
    assert_eq!((jb.generation, jb.leader.as_str()), (3, b.as_str()));
}

#[test]
fn a_static_member_restarts_in_place_and_fences_its_old_id() {
    let (mut g, a) = stable_one(0);
    let stat = |member: &str| JoinRequest {
        instance_id: Some("i-1".into()),
        ..req(member, &["range"])
    };
    // No MEMBER_ID_REQUIRED for a static member.
    let (s, replies) = g.join(stat(""), 0).unwrap();
    assert!(s.starts_with("i-1-"), "{s}");
    assert!(replies.is_empty());
    let (_, replies) = g.join(req(&a, &["range"]), 0).unwrap();
    assert_eq!(joined(&replies, &s).unwrap().unwrap().generation, 2);
    g.sync(
        SyncRequest {
            instance_id: Some("i-1".into()),
            ..sync(&s, 2, vec![])
        },
        0,
    )
    .unwrap();
    g.sync(sync(&a, 2, vec![(a.clone(), "A"), (s.clone(), "S")]), 0)
        .unwrap();

    // It restarts without its member id: a new one takes its place, no rebalance.
    let (s2, replies) = g.join(stat(""), 100).unwrap();
    assert_ne!(s2, s);
    let j = joined(&replies, &s2).unwrap().unwrap();
    assert_eq!(j.generation, 2);
    assert_eq!(g.state(), State::Stable);
    let replies = g
        .sync(
            SyncRequest {
                instance_id: Some("i-1".into()),
                ..sync(&s2, 2, vec![])
            },
            100,
        )
        .unwrap();
    assert_eq!(synced(&replies, &s2).unwrap().unwrap(), Bytes::from("S"));
    // The old id is fenced wherever it shows up.
    assert!(matches!(
        g.heartbeat(&s, Some("i-1"), 2, 100),
        Err(Error::FencedInstance { .. })
    ));
    assert!(matches!(
        g.join(stat(&s), 100),
        Err(Error::FencedInstance { .. })
    ));
    assert!(matches!(
        g.accept_commit(&s, Some("i-1"), 2, 100),
        Err(Error::FencedInstance { .. })
    ));
    let (results, _) = g.leave(
        &[Leaving {
            member_id: s.clone(),
            instance_id: Some("i-1".into()),
        }],
        100,
    );
    assert!(matches!(results[0], Err(Error::FencedInstance { .. })));
    assert_eq!(g.heartbeat(&s2, Some("i-1"), 2, 100), Ok(()));
    assert_eq!(g.member_count(), 2);
}

#[test]
fn a_static_leader_restarts_in_place_unless_the_protocol_would_change() {
    let both = ["range", "roundrobin"];
    let stat = |member: &str, protocols: &[&str]| JoinRequest {
        instance_id: Some("i-1".into()),
        ..req(member, protocols)
    };
    let as_static = |r: SyncRequest| SyncRequest {
        instance_id: Some("i-1".into()),
        ..r
    };
    // A static leader and a dynamic follower, stable at generation 2.
    let mut g = ClassicGroup::new("g");
    let (s, replies) = g.join(stat("", &both), 0).unwrap();
    assert_eq!(joined(&replies, &s).unwrap().unwrap().leader, s);
    g.sync(as_static(sync(&s, 1, vec![(s.clone(), "S")])), 0)
        .unwrap();
    let (b, _) = first_join(&mut g, req("", &both), 0);
    g.join(stat(&s, &both), 0).unwrap();
    g.sync(sync(&b, 2, vec![]), 0).unwrap();
    let assignments = vec![(s.clone(), "S"), (b.clone(), "B")];
    g.sync(as_static(sync(&s, 2, assignments)), 0).unwrap();
    assert_eq!(g.state(), State::Stable);

    // Restarted, it is answered at once: same generation, still the leader, the members
    // for a client before JoinGroup v9, and told to skip the assignment.
    let (s2, replies) = g.join(stat("", &both), 100).unwrap();
    let j = joined(&replies, &s2).unwrap().unwrap();
    assert_eq!((j.generation, j.leader.as_str()), (2, s2.as_str()));
    assert!(j.skip_assignment);
    assert_eq!(j.members.len(), 2);
    assert_eq!(g.state(), State::Stable);
    // Its sync gets the assignment in force, whatever it computed again.
    let again = vec![(s2.clone(), "other"), (b.clone(), "other")];
    let replies = g.sync(as_static(sync(&s2, 2, again)), 100).unwrap();
    assert_eq!(synced(&replies, &s2).unwrap().unwrap(), Bytes::from("S"));
    assert_eq!(g.heartbeat(&b, None, 2, 100), Ok(()));

    // Restarted preferring roundrobin, it would swing the vote (a tie, the leader's choice):
    // the group rebalances.
    let (s3, replies) = g.join(stat("", &["roundrobin", "range"]), 200).unwrap();
    assert!(joined(&replies, &s3).is_none());
    assert_eq!(g.state(), State::PreparingRebalance);
    let (_, replies) = g.join(req(&b, &both), 200).unwrap();
    let j = joined(&replies, &s3).unwrap().unwrap();
    assert_eq!((j.generation, j.protocol_name.as_str()), (3, "roundrobin"));
    assert!(!j.skip_assignment);

    // Restarted before the leader's assignments came, which may name the old id: the
    // group rebalances too.
    assert_eq!(g.state(), State::CompletingRebalance);
    let (s4, replies) = g.join(stat("", &["roundrobin", "range"]), 300).unwrap();
    assert!(joined(&replies, &s4).is_none());
    assert_eq!(g.state(), State::PreparingRebalance);
}

#[test]
fn a_static_member_keeps_its_place_through_a_rebalance_it_misses() {
    let (mut g, a) = stable_one(0);
    let stat = JoinRequest {
        instance_id: Some("i-1".into()),
        ..req("", &["range"])
    };
    let (s, _) = g.join(stat.clone(), 0).unwrap();
    g.join(req(&a, &["range"]), 0).unwrap();
    g.sync(sync(&a, 2, vec![]), 0).unwrap();
    // A third member joins while the static one is away; the rebalance goes on without it,
    // and keeps it a member.
    g.heartbeat(&s, None, 2, 0).unwrap();
    let (c, _) = first_join(&mut g, req("", &["range"]), 1);
    g.join(req(&a, &["range"]), 1).unwrap();
    // It still heartbeats (told REBALANCE_IN_PROGRESS), so its session holds.
    for now in (5_000..=i64::from(REBALANCE)).step_by(5_000) {
        assert!(g.heartbeat(&s, Some("i-1"), 2, now).is_err());
        assert!(g.heartbeat(&c, None, 3, now).is_err());
        g.heartbeat(&a, None, 2, now).unwrap_err();
        assert!(g.expire(now).is_empty());
    }
    let replies = g.expire(1 + i64::from(REBALANCE));
    assert_eq!(joined(&replies, &c).unwrap().unwrap().generation, 3);
    let leader_view = joined(&replies, &a).unwrap().unwrap();
    assert_eq!(
        leader_view.members.len(),
        3,
        "the static member is still in"
    );
    assert_eq!(
        leader_view
            .members
            .iter()
            .find(|m| m.member_id == s)
            .unwrap()
            .instance_id
            .as_deref(),
        Some("i-1")
    );
}

#[test]
fn commits_are_fenced_by_member_and_generation() {
    let mut g = ClassicGroup::new("g");
    // A group without members takes standalone commits.
    assert_eq!(g.accept_commit("", None, -1, 0), Ok(()));
    let (a, _) = first_join(&mut g, req("", &["range"]), 0);
    assert!(matches!(
        g.accept_commit(&a, None, 1, 0),
        Err(Error::RebalanceInProgress { .. })
    ));
    g.sync(sync(&a, 1, vec![]), 0).unwrap();
    assert_eq!(g.accept_commit(&a, None, 1, 0), Ok(()));
    assert!(matches!(
        g.accept_commit(&a, None, 0, 0),
        Err(Error::IllegalGeneration { .. })
    ));
    assert!(matches!(
        g.accept_commit("", None, -1, 0),
        Err(Error::UnknownMember { .. })
    ));
    // While the members rejoin, a commit at the current generation still goes in (eager
    // clients commit what they revoke before rejoining).
    let mut g2 = stable_two(0).0;
    let d = g2.describe();
    let a2 = d.leader.clone().unwrap();
    g2.join(req(&a2, &["range"]), 1).unwrap();
    assert_eq!(g2.state(), State::PreparingRebalance);
    assert_eq!(g2.accept_commit(&a2, None, 2, 1), Ok(()));
}

#[test]
fn unused_member_ids_expire_and_bad_timeouts_are_refused() {
    let mut g = ClassicGroup::new("g");
    let id = match g.join(req("", &["range"]), 0) {
        Err(Error::MemberIdRequired { member, .. }) => member,
        other => panic!("{other:?}"),
    };
    assert!(!g.is_empty());
    assert_eq!(g.next_deadline(), Some(i64::from(SESSION)));
    g.expire(i64::from(SESSION));
    assert!(g.is_empty());
    assert!(matches!(
        g.join(req(&id, &["range"]), i64::from(SESSION)),
        Err(Error::UnknownMember { .. })
    ));
    for t in [0, MIN_SESSION_TIMEOUT_MS - 1, MAX_SESSION_TIMEOUT_MS + 1] {
        let r = JoinRequest {
            session_timeout_ms: t,
            ..req("", &["range"])
        };
        assert!(matches!(g.join(r, 0), Err(Error::SessionTimeout { .. })));
    }
}

#[test]
fn a_pending_member_id_holds_the_join_phase_until_it_comes_back() {
    let (mut g, a) = stable_one(0);
    let (b, _) = first_join(&mut g, req("", &["range"]), 0);
    // c was given an id but has not come back: the join waits for it.
    let c = match g.join(req("", &["range"]), 0) {
        Err(Error::MemberIdRequired { member, .. }) => member,
        other => panic!("{other:?}"),
    };
    let (_, replies) = g.join(req(&a, &["range"]), 0).unwrap();
    assert!(replies.is_empty());
    let (_, replies) = g.join(req(&c, &["range"]), 0).unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(joined(&replies, &b).unwrap().unwrap().generation, 2);
}

#[test]
fn the_first_join_phase_waits_the_initial_delay_while_members_keep_coming() {
    let mut g = ClassicGroup::new("g").with_initial_delay(3_000);
    let (a, replies) = first_join(&mut g, req("", &["range"]), 0);
    assert!(replies.is_empty(), "{replies:?}");
    assert_eq!(g.state(), State::PreparingRebalance);
    assert_eq!(g.next_deadline(), Some(3_000));
    // b comes within the delay: at its end the phase waits as long again.
    let (b, replies) = first_join(&mut g, req("", &["range"]), 1_000);
    assert!(replies.is_empty(), "{replies:?}");
    assert!(g.expire(2_999).is_empty());
    assert!(g.expire(3_000).is_empty());
    assert_eq!(g.next_deadline(), Some(6_000));
    // Nobody new since: one generation for both.
    let replies = g.expire(6_000);
    for m in [&a, &b] {
        assert_eq!(joined(&replies, m).unwrap().unwrap().generation, 1);
    }
    assert_eq!(g.state(), State::CompletingRebalance);
    let replies = g
        .sync(sync(&a, 1, vec![(a.clone(), "A"), (b.clone(), "B")]), 6_000)
        .unwrap();
    assert!(synced(&replies, &a).is_some());
    // A join to a group that is not empty rebalances as usual, at once when all are in.
    let (_, replies) = g.join(req(&b, &["range", "roundrobin"]), 7_000).unwrap();
    assert!(replies.is_empty());
    let (_, replies) = g.join(req(&a, &["range"]), 7_000).unwrap();
    assert_eq!(joined(&replies, &a).unwrap().unwrap().generation, 2);
}

#[test]
fn the_initial_delay_is_bounded_by_the_rebalance_timeout_and_ends_when_all_leave() {
    let mut g = ClassicGroup::new("g").with_initial_delay(20_000);
    let (a, _) = first_join(&mut g, req("", &["range"]), 0);
    first_join(&mut g, req("", &["range"]), 1);
    // 20 s, then what is left of the 30 s rebalance timeout.
    assert!(g.expire(20_000).is_empty());
    assert_eq!(g.next_deadline(), Some(30_000));
    first_join(&mut g, req("", &["range"]), 20_001);
    let replies = g.expire(30_000);
    assert_eq!(joined(&replies, &a).unwrap().unwrap().members.len(), 3);

    // Everyone gone during the delay: the group is empty at once.
    let mut g = ClassicGroup::new("g").with_initial_delay(3_000);
    let (a, _) = first_join(&mut g, req("", &["range"]), 0);
    let leaving = Leaving {
        member_id: a.clone(),
        instance_id: None,
    };
    let (_, replies) = g.leave(&[leaving], 1);
    assert!(joined(&replies, &a).unwrap().is_err());
    assert_eq!(g.state(), State::Empty);
    assert!(g.is_empty());
}

#[test]
fn a_group_is_bounded() {
    let mut g = ClassicGroup::new("g");
    for _ in 0..MAX_MEMBERS {
        assert!(matches!(
            g.join(req("", &["range"]), 0),
            Err(Error::MemberIdRequired { .. })
        ));
    }
    assert!(matches!(
        g.join(req("", &["range"]), 0),
        Err(Error::GroupFull { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Join(usize, bool),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Tick(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, any::<bool>()).prop_map(|(c, alt)| Op::Join(c, alt)),
        (0..4usize).prop_map(Op::Sync),
        (0..4usize).prop_map(Op::Heartbeat),
        (0..4usize).prop_map(Op::Leave),
        (0..40_000i64).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Random calls from four clients (each keeping the member id and generation it was
    /// last given, one of them static), with or without an initial delay: the generation never goes back, the leader is a
    /// member, the chosen protocol is every member's, a parked request gets one answer,
    /// and an answer goes only to a parked request.
    #[test]
    fn random_calls_keep_the_invariants(
        ops in proptest::collection::vec(op(), 1..80),
        delay in prop_oneof![Just(0i64), 1..10_000i64],
    ) {
        let mut g = ClassicGroup::new("g").with_initial_delay(delay);
        let mut now = 0i64;
        let mut ids: Vec<String> = vec![String::new(); 4];
        let mut gens = [0i32; 4];
        let mut parked_join: BTreeSet<String> = BTreeSet::new();
        let mut parked_sync: BTreeSet<String> = BTreeSet::new();
        let mut last_gen = 0;
        for op in ops {
            let mut replies = Vec::new();
            match op {
                Op::Join(c, alt) => {
                    let protocols: &[&str] = if alt { &["range", "roundrobin"] } else { &["roundrobin", "range"] };
                    let r = JoinRequest {
                        instance_id: (c == 3).then(|| "static".to_owned()),
                        ..req(&ids[c], protocols)
                    };
                    match g.join(r, now) {
                        Ok((id, rs)) => {
                            parked_join.insert(id.clone());
                            ids[c] = id;
                            replies = rs;
                        }
                        Err(Error::MemberIdRequired { member, .. }) => ids[c] = member,
                        Err(_) => ids[c] = String::new(),
                    }
                }
                Op::Sync(c) => {
                    let r = SyncRequest {
                        instance_id: (c == 3).then(|| "static".to_owned()),
                        protocol_name: None,
                        ..sync(&ids[c], gens[c], ids.iter().map(|i| (i.clone(), "x")).collect())
                    };
                    if let Ok(rs) = g.sync(r, now) {
                        parked_sync.insert(ids[c].clone());
                        replies = rs;
                    }
                }
                Op::Heartbeat(c) => {
                    let _ = g.heartbeat(&ids[c], (c == 3).then_some("static"), gens[c], now);
                }
                Op::Leave(c) => {
                    let (_, rs) = g.leave(&[Leaving { member_id: ids[c].clone(), instance_id: (c == 3).then(|| "static".to_owned()) }], now);
                    replies = rs;
                }
                Op::Tick(dt) => {
                    now += dt;
                    replies = g.expire(now);
                }
            }
            for r in replies {
                match r {
                    Reply::Join { member, answer } => {
                        prop_assert!(parked_join.remove(&member), "a join answer for {member}, not parked");
                        if let Ok(j) = answer {
                            if let Some(c) = ids.iter().position(|i| *i == member) {
                                gens[c] = j.generation;
                            }
                            prop_assert_eq!(j.generation, g.generation());
                        }
                    }
                    Reply::Sync { member, .. } => {
                        prop_assert!(parked_sync.remove(&member), "a sync answer for {member}, not parked");
                    }
                }
            }
            prop_assert!(g.generation() >= last_gen);
            last_gen = g.generation();
            let d = g.describe();
            prop_assert_eq!(d.members.is_empty(), d.state == State::Empty);
            if !d.members.is_empty() {
                let leader = d.leader.clone().unwrap();
                prop_assert!(d.members.iter().any(|m| m.member_id == leader));
            }
            if matches!(d.state, State::CompletingRebalance | State::Stable) {
                for m in &g.members {
                    prop_assert!(m.1.protocols.iter().any(|(n, _)| Some(n) == g.protocol_name.as_ref()));
                }
            }
            // Only members are parked.
            for id in parked_join.iter().chain(&parked_sync) {
                prop_assert!(g.members.contains_key(id), "{id} is parked but not a member");
            }
        }
    }
}
