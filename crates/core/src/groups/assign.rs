//! The partition assignors: pure functions from members (their subscribed topics and what
//! they own now) to a target assignment. The group turns a target into revocations and
//! grants; an assignor never sees that protocol.
//!
//! All are deterministic, with members in id order. Range and RoundRobin are Kafka's and
//! ignore the current owners; Sticky keeps partitions where they are unless balance needs
//! them elsewhere.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::{Assignor, TopicPartition};

/// One member as an assignor sees it.
#[derive(Debug)]
pub(crate) struct MemberInput<'a> {
    /// The subscribed topics that exist.
    pub topics: BTreeSet<&'a str>,
    /// What the member owns now, and what it is due to get once revoked from another.
    pub owned: BTreeSet<TopicPartition>,
}

/// Member id → the partitions it should own.
pub(crate) type Target = BTreeMap<String, BTreeSet<TopicPartition>>;

/// Every partition of a topic some member subscribes to goes to exactly one member
/// subscribed to its topic. Every member has an entry, maybe empty.
pub(crate) fn assign(
    assignor: Assignor,
    members: &BTreeMap<&str, MemberInput<'_>>,
    topics: &BTreeMap<String, u32>,
) -> Target {
    match assignor {
        Assignor::Range => range(members, topics),
        Assignor::RoundRobin => round_robin(members, topics),
        Assignor::Sticky => sticky(members, topics),
    }
}

fn empty_target(members: &BTreeMap<&str, MemberInput<'_>>) -> Target {
    members
        .keys()
        .map(|m| ((*m).to_owned(), BTreeSet::new()))
        .collect()
}

/// Topic → its partition count and its subscribers (indices into `members`' order).
fn subscribers<'t>(
    members: &BTreeMap<&str, MemberInput<'_>>,
    topics: &'t BTreeMap<String, u32>,
) -> BTreeMap<&'t str, (u32, Vec<usize>)> {
    let mut subs: BTreeMap<&str, (u32, Vec<usize>)> = BTreeMap::new();
    for (i, m) in members.values().enumerate() {
        for t in &m.topics {
            if let Some((name, &n)) = topics.get_key_value(*t) {
                subs.entry(name.as_str())
                    .or_insert((n, Vec::new()))
                    .1
                    .push(i);
            }
        }
    }
    subs
}

/// Kafka's RangeAssignor: for each topic, its N partitions are split over its C
/// subscribers in id order into contiguous ranges of N/C, the first N%C one longer.
fn range(members: &BTreeMap<&str, MemberInput<'_>>, topics: &BTreeMap<String, u32>) -> Target {
    let ids: Vec<&str> = members.keys().copied().collect();
    let mut target = empty_target(members);
    for (topic, (n, subs)) in subscribers(members, topics) {
        let (per, extra) = (n as usize / subs.len(), n as usize % subs.len());
        for (k, &i) in subs.iter().enumerate() {
            let start = k * per + k.min(extra);
            let len = per + usize::from(k < extra);
            let set = target.get_mut(ids[i]).expect("every member has an entry");
            set.extend((start..start + len).map(|p| TopicPartition::new(topic, p as u32)));
        }
    }
    target
}

/// Kafka's RoundRobinAssignor: all subscribed partitions in (topic, partition) order are
/// dealt over the members in id order, skipping members not subscribed to the topic.
fn round_robin(
    members: &BTreeMap<&str, MemberInput<'_>>,
    topics: &BTreeMap<String, u32>,
) -> Target {
    let list: Vec<(&str, &MemberInput<'_>)> = members.iter().map(|(id, m)| (*id, m)).collect();
    let mut target = empty_target(members);
    let mut next = 0;
    for (topic, (n, _)) in subscribers(members, topics) {
        for p in 0..n {
            while !list[next].1.topics.contains(topic) {
                next = (next + 1) % list.len();
            }
            let set = target
                .get_mut(list[next].0)
                .expect("every member has an entry");
            set.insert(TopicPartition::new(topic, p));
            next = (next + 1) % list.len();
        }
    }
    target
}

/// Sticky: keep every partition whose owner still subscribes to it; give each free
/// partition, in order, to the least-loaded eligible member; then,
/// while some partition's owner holds at least two more than the least-loaded member
/// eligible for it, move it there, taking from the most loaded first.
///
/// With identical subscriptions every member ends within one of the others, and only
/// excess moves: a member gives up partitions only while it holds two more than another.
/// Each move lowers the sum of squared loads, so the loop ends. A target fed back as the
/// current ownership is returned unchanged.
fn sticky(members: &BTreeMap<&str, MemberInput<'_>>, topics: &BTreeMap<String, u32>) -> Target {
    let list: Vec<&MemberInput<'_>> = members.values().collect();
    let subs = subscribers(members, topics);
    let mut owned: Vec<BTreeSet<TopicPartition>> = vec![BTreeSet::new(); list.len()];
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();

    for (i, m) in list.iter().enumerate() {
        for tp in &m.owned {
            let eligible = m.topics.contains(tp.topic.as_str())
                && topics.get(&tp.topic).is_some_and(|n| tp.partition < *n);
            if eligible && taken.insert(tp.clone()) {
                owned[i].insert(tp.clone());
            }
        }
    }

    // The least-loaded member (lowest index on ties) among `eligible`.
    let least = |owned: &[BTreeSet<TopicPartition>], eligible: &[usize]| -> usize {
        *eligible
            .iter()
            .min_by_key(|&&i| (owned[i].len(), i))
            .expect("a subscribed topic has a subscriber")
    };

    for (t, (n, eligible)) in &subs {
        for p in 0..*n {
            let tp = TopicPartition::new(*t, p);
            if !taken.contains(&tp) {
                let i = least(&owned, eligible);
                owned[i].insert(tp);
            }
        }
    }

    loop {
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by_key(|&i| (Reverse(owned[i].len()), i));
        let floor = owned.iter().map(BTreeSet::len).min().unwrap_or(0);
        let mut chosen = None;
        'find: for &a in &order {
            let load = owned[a].len();
            if load < floor + 2 {
                break;
            }
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for tp in owned[a].iter().rev() {
                let b = *seen
                    .entry(tp.topic.as_str())
                    .or_insert_with(|| least(&owned, &subs[tp.topic.as_str()].1));
                if owned[b].len() + 2 <= load {
                    chosen = Some((a, b, tp.clone()));
                    break 'find;
                }
            }
        }
        let Some((a, b, tp)) = chosen else { break };
        owned[a].remove(&tp);
        owned[b].insert(tp);
    }

    members.keys().map(|m| (*m).to_owned()).zip(owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A member: id, subscribed topics, owned `(topic, partition)`s.
    type Spec<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, u32)]);

    /// Members → target, with every listed topic existing.
    fn run(
        assignor: Assignor,
        members: &[Spec<'_>],
        topics: &[(&str, u32)],
    ) -> BTreeMap<String, Vec<String>> {
        let topics: BTreeMap<String, u32> =
            topics.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect();
        let owned: Vec<BTreeSet<TopicPartition>> = members
            .iter()
            .map(|(_, _, o)| o.iter().map(|(t, p)| TopicPartition::new(*t, *p)).collect())
            .collect();
        let inputs: BTreeMap<&str, MemberInput<'_>> = members
            .iter()
            .zip(&owned)
            .map(|((id, ts, _), owned)| {
                let topics = ts.iter().copied().collect();
                (
                    *id,
                    MemberInput {
                        topics,
                        owned: owned.clone(),
                    },
                )
            })
            .collect();
        assign(assignor, &inputs, &topics)
            .into_iter()
            .map(|(m, tps)| {
                let names = tps
                    .iter()
                    .map(|tp| format!("{}p{}", tp.topic, tp.partition))
                    .collect();
                (m, names)
            })
            .collect()
    }

    fn expect(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(m, tps)| {
                (
                    (*m).to_owned(),
                    tps.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect()
    }

    /// The RangeAssignor javadoc's example.
    #[test]
    fn range_matches_kafkas_example() {
        let both: &[&str] = &["t0", "t1"];
        let got = run(
            Assignor::Range,
            &[("C0", both, &[]), ("C1", both, &[])],
            &[("t0", 3), ("t1", 3)],
        );
        assert_eq!(
            got,
            expect(&[
                ("C0", &["t0p0", "t0p1", "t1p0", "t1p1"]),
                ("C1", &["t0p2", "t1p2"]),
            ])
        );
    }

    /// The RoundRobinAssignor javadoc's two examples: identical and differing subscriptions.
    #[test]
    fn round_robin_matches_kafkas_examples() {
        let both: &[&str] = &["t0", "t1"];
        let got = run(
            Assignor::RoundRobin,
            &[("C0", both, &[]), ("C1", both, &[])],
            &[("t0", 3), ("t1", 3)],
        );
        assert_eq!(
            got,
            expect(&[
                ("C0", &["t0p0", "t0p2", "t1p1"]),
                ("C1", &["t0p1", "t1p0", "t1p2"]),
            ])
        );

        let got = run(
            Assignor::RoundRobin,
            &[
                ("C0", &["t0"], &[]),
                ("C1", &["t0", "t1"], &[]),
                ("C2", &["t0", "t1", "t2"], &[]),
            ],
            &[("t0", 1), ("t1", 2), ("t2", 3)],
        );
        assert_eq!(
            got,
            expect(&[
                ("C0", &["t0p0"]),
                ("C1", &["t1p0"]),
                ("C2", &["t1p1", "t2p0", "t2p1", "t2p2"]),
            ])
        );
    }

    #[test]
    fn range_and_round_robin_ignore_current_owners() {
        let both: &[&str] = &["t0", "t1"];
        for a in [Assignor::Range, Assignor::RoundRobin] {
            let fresh = run(
                a,
                &[("C0", both, &[]), ("C1", both, &[])],
                &[("t0", 3), ("t1", 3)],
            );
            let owned: &[(&str, u32)] = &[("t0", 0), ("t0", 1), ("t0", 2), ("t1", 0)];
            let held = run(
                a,
                &[("C0", both, &[]), ("C1", both, owned)],
                &[("t0", 3), ("t1", 3)],
            );
            assert_eq!(fresh, held, "{a}");
        }
    }

    #[test]
    fn sticky_keeps_what_it_can_and_balances() {
        let t: &[&str] = &["t"];
        // C0 held all six; C1 joins: C0 gives up exactly three, its highest.
        let all: Vec<(&str, u32)> = (0..6).map(|p| ("t", p)).collect();
        let got = run(
            Assignor::Sticky,
            &[("C0", t, &all), ("C1", t, &[])],
            &[("t", 6)],
        );
        assert_eq!(
            got,
            expect(&[
                ("C0", &["tp0", "tp1", "tp2"]),
                ("C1", &["tp3", "tp4", "tp5"])
            ])
        );
        // A member that unsubscribed loses its partitions; a vanished partition is dropped.
        let got = run(
            Assignor::Sticky,
            &[
                ("C0", &["u"], &[("t", 0)]),
                ("C1", t, &[("t", 1), ("t", 7)]),
            ],
            &[("t", 2), ("u", 1)],
        );
        assert_eq!(got, expect(&[("C0", &["up0"]), ("C1", &["tp0", "tp1"])]));
    }

    #[test]
    fn sticky_balances_only_over_eligible_members() {
        // C1 may only read u, so it takes u's partitions and nothing of t.
        let got = run(
            Assignor::Sticky,
            &[
                (
                    "C0",
                    &["t", "u"],
                    &[("t", 0), ("t", 1), ("t", 2), ("u", 0), ("u", 1)],
                ),
                ("C1", &["u"], &[]),
            ],
            &[("t", 3), ("u", 2)],
        );
        assert_eq!(
            got,
            expect(&[("C0", &["tp0", "tp1", "tp2"]), ("C1", &["up0", "up1"])])
        );
    }

    /// Topic sizes; per member, subscribed topic indices and claimed `(topic, partition)`s.
    type Case = (Vec<u32>, Vec<(BTreeSet<usize>, BTreeSet<(usize, u32)>)>);

    fn arb_case() -> impl Strategy<Value = Case> {
        // Up to 4 topics of 1..8 partitions; up to 6 members, each subscribing to some
        // topics and claiming some partitions (possibly foreign, vanished or duplicated).
        (
            prop::collection::vec(1u32..8, 1..5),
            prop::collection::vec(
                (
                    prop::collection::btree_set(0usize..5, 0..4),
                    prop::collection::btree_set((0usize..5, 0u32..9), 0..10),
                ),
                1..7,
            ),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        /// Every subscribed partition goes to exactly one subscriber; nothing else is
        /// assigned; the same input gives the same output; a sticky target is a fixed point.
        #[test]
        fn targets_cover_subscriptions(case in arb_case(), which in 0usize..3) {
            let assignor = [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky][which];
            let (topic_sizes, member_specs) = case;
            let names: Vec<String> = (0..5).map(|t| format!("t{t}")).collect();
            let topics: BTreeMap<String, u32> = topic_sizes
                .iter()
                .enumerate()
                .map(|(t, n)| (names[t].clone(), *n))
                .collect();
            let ids: Vec<String> = (0..member_specs.len()).map(|i| format!("m{i}")).collect();
            let owned: Vec<BTreeSet<TopicPartition>> = member_specs
                .iter()
                .map(|(_, o)| o.iter().map(|(t, p)| TopicPartition::new(names[*t].clone(), *p)).collect())
                .collect();
            let subs: Vec<BTreeSet<&str>> = member_specs
                .iter()
                .map(|(ts, _)| ts.iter().map(|t| names[*t].as_str()).filter(|t| topics.contains_key(*t)).collect())
                .collect();
            let build = |owned: &[BTreeSet<TopicPartition>]| -> Target {
                let map: BTreeMap<&str, MemberInput<'_>> = ids
                    .iter()
                    .zip(owned)
                    .zip(&subs)
                    .map(|((id, o), s)| (id.as_str(), MemberInput { topics: s.clone(), owned: o.clone() }))
                    .collect();
                assign(assignor, &map, &topics)
            };
            let target = build(&owned);
            prop_assert_eq!(&target, &build(&owned), "deterministic");
            prop_assert_eq!(target.len(), ids.len());

            let mut seen = BTreeSet::new();
            for (i, id) in ids.iter().enumerate() {
                for tp in &target[id] {
                    prop_assert!(subs[i].contains(tp.topic.as_str()), "{id} got {tp} unsubscribed");
                    prop_assert!(tp.partition < topics[&tp.topic]);
                    prop_assert!(seen.insert(tp.clone()), "{tp} assigned twice");
                }
            }
            for (t, n) in &topics {
                if subs.iter().any(|s| s.contains(t.as_str())) {
                    for p in 0..*n {
                        prop_assert!(seen.contains(&TopicPartition::new(t.clone(), p)), "{t} #{p} unassigned");
                    }
                }
            }
            if assignor == Assignor::Sticky {
                let again: Vec<BTreeSet<TopicPartition>> = ids.iter().map(|id| target[id].clone()).collect();
                prop_assert_eq!(&build(&again), &target, "sticky is a fixed point");
            }
        }

        /// With identical subscriptions, Sticky is balanced, and a member keeps all it had
        /// up to what balance allows: moves = sum over members of max(0, had - kept quota).
        #[test]
        fn sticky_homogeneous_is_balanced_and_minimal(
            sizes in prop::collection::vec(1u32..10, 1..4),
            claims in prop::collection::vec(prop::collection::btree_set((0usize..3, 0u32..10), 0..12), 1..7),
        ) {
            let topics: BTreeMap<String, u32> =
                sizes.iter().enumerate().map(|(t, n)| (format!("t{t}"), *n)).collect();
            let all: BTreeSet<&str> = topics.keys().map(String::as_str).collect();
            // Claims made disjoint and valid, as the group guarantees.
            let mut taken = BTreeSet::new();
            let owned: Vec<BTreeSet<TopicPartition>> = claims
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|(t, p)| TopicPartition::new(format!("t{t}"), *p))
                        .filter(|tp| topics.get(&tp.topic).is_some_and(|n| tp.partition < *n))
                        .filter(|tp| taken.insert(tp.clone()))
                        .collect()
                })
                .collect();
            let ids: Vec<String> = (0..owned.len()).map(|i| format!("m{i}")).collect();
            let map: BTreeMap<&str, MemberInput<'_>> = ids
                .iter()
                .zip(&owned)
                .map(|(id, o)| (id.as_str(), MemberInput { topics: all.clone(), owned: o.clone() }))
                .collect();
            let target = assign(Assignor::Sticky, &map, &topics);
            let loads: Vec<usize> = ids.iter().map(|id| target[id].len()).collect();
            let (lo, hi) = (*loads.iter().min().unwrap(), *loads.iter().max().unwrap());
            prop_assert!(hi - lo <= 1, "unbalanced: {loads:?}");

            // The most any balanced assignment can keep: every member keeps up to q, and
            // the r members allowed q+1 go to those that had more than q.
            let total: usize = topics.values().map(|n| *n as usize).sum();
            let (q, r) = (total / ids.len(), total % ids.len());
            let had: Vec<usize> = owned.iter().map(BTreeSet::len).collect();
            let most_kept: usize = had.iter().map(|h| (*h).min(q)).sum::<usize>()
                + r.min(had.iter().filter(|h| **h > q).count());
            let kept: usize = ids.iter().zip(&owned).map(|(id, o)| target[id].intersection(o).count()).sum();
            prop_assert_eq!(kept, most_kept, "had {:?}, got {:?}", had, loads);
        }
    }
}
