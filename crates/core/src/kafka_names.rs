//! How a Kafka topic name, which is flat, finds a topic inside a stream (design §9). In
//! order: the alias rules (a name or a glob mapped to a stream, as MapR's Kafka wire
//! protocol service had them), the user's default stream, the listener's default stream,
//! and last a verbatim `/volume/stream:topic`. Kafka's topic alphabet is exactly a
//! Tributary topic's, so a short name is the topic's own name; a name with `/` or `:` can
//! only be verbatim. A group id finds its stream the same way, without the alias rules:
//! verbatim `/volume/stream:group`, else the default stream. A Kafka group id is any
//! non-empty string; [`group_name`] maps it to the group name it is stored under.

use crate::names::{MAX_TOPIC_BYTES, StreamPath, TopicPath, check_group, check_topic};
use crate::{Error, Result};

/// `pattern → stream`: topics whose name matches the pattern live in `stream`. The
/// pattern is a topic name in which `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasRule {
    pub pattern: String,
    pub stream: StreamPath,
}

impl AliasRule {
    /// Parses `PATTERN=/volume/stream`, naming the bad part.
    pub fn parse(field: &str, rule: &str) -> Result<AliasRule> {
        let Some((pattern, stream)) = rule.split_once('=') else {
            return Err(Error::invalid(
                field,
                format!("alias rule `{rule}` must be PATTERN=STREAM, like `orders*=/acme/orders`"),
            ));
        };
        let literal: String = pattern.chars().filter(|&c| c != '*').collect();
        if !literal.is_empty() {
            check_topic(field, &literal)?;
        }
        if pattern.is_empty() {
            return Err(Error::invalid(
                field,
                format!("alias rule `{rule}` has no pattern"),
            ));
        }
        Ok(AliasRule {
            pattern: pattern.to_owned(),
            stream: StreamPath::parse(field, stream)?,
        })
    }

    pub fn matches(&self, name: &str) -> bool {
        glob(&self.pattern, name)
    }
}

/// Whether `name` matches `pattern`, where `*` matches any run (empty included).
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole name.
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The start of a stored group name that stands for a Kafka group id which is not itself
/// a group name.
pub const ESCAPED_GROUP: &str = "_k.";

/// The group name a Kafka group id (any non-empty string) is stored under: the id itself
/// when it is a group name that does not start with [`ESCAPED_GROUP`]; else that prefix
/// and the id's bytes, `A-Z a-z 0-9 . -` as they are and every other byte (`_` included)
/// as `_` and two upper-case hex digits: `connect-cluster.my sink/1:x` is stored as
/// `_k.connect-cluster.my_20sink_2F1_3Ax`. Distinct ids get distinct names, and
/// [`group_id`] reverses it. An error for an empty id or one whose name would be longer
/// than a group name may be (Kafka's INVALID_GROUP_ID).
pub fn group_name(id: &str) -> Result<String> {
    if id.is_empty() {
        return Err(Error::invalid("group", "empty group id".into()));
    }
    if !id.starts_with(ESCAPED_GROUP) && check_group("group", id).is_ok() {
        return Ok(id.to_owned());
    }
    let mut name = String::from(ESCAPED_GROUP);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("_{b:02X}"));
        }
    }
    if name.len() > MAX_TOPIC_BYTES {
        return Err(Error::invalid(
            "group",
            format!(
                "group id `{id}` is stored as a {}-byte group name; the limit is \
                 {MAX_TOPIC_BYTES} (each byte other than A-Z a-z 0-9 . - takes three)",
                name.len()
            ),
        ));
    }
    Ok(name)
}

/// The Kafka group id stored under `name`: the inverse of [`group_name`]; `None` for a
/// name no id maps to (one starting with [`ESCAPED_GROUP`] that is not an escape).
pub fn group_id(name: &str) -> Option<String> {
    let Some(escaped) = name.strip_prefix(ESCAPED_GROUP) else {
        return Some(name.to_owned());
    };
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'_' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    let id = String::from_utf8(bytes).ok()?;
    // Only the one encoding of each id (upper-case hex, no needless escape) is its name.
    (group_name(&id).ok()? == name).then_some(id)
}

/// What a name is resolved against: the listener's rules and default, and the caller's.
#[derive(Debug, Clone, Default)]
pub struct Resolver<'a> {
    pub rules: &'a [AliasRule],
    pub user_default: Option<StreamPath>,
    pub listener_default: Option<&'a StreamPath>,
}

impl Resolver<'_> {
    /// The topic a Kafka name stands for; `None` when it resolves nowhere (Kafka's
    /// UNKNOWN_TOPIC_OR_PARTITION), an error when it is malformed (INVALID_TOPIC_EXCEPTION).
    pub fn resolve(&self, name: &str) -> Result<Option<TopicPath>> {
        if name.contains(['/', ':']) {
            return TopicPath::parse("topic", name).map(Some);
        }
        check_topic("topic", name)?;
        let stream = self
            .rules
            .iter()
            .find(|r| r.matches(name))
            .map(|r| &r.stream)
            .or(self.user_default.as_ref())
            .or(self.listener_default);
        Ok(stream.map(|s| TopicPath {
            stream: s.clone(),
            topic: name.to_owned(),
        }))
    }

    /// The stream a Kafka group lives in, and its group name there ([`group_name`]): a
    /// verbatim `/volume/stream:ID` (a stream path, a `:`, a non-empty id), else the
    /// default stream (the user's, then the listener's) with the whole id. `None` when
    /// there is no default stream; an error for an empty or overlong id (Kafka's
    /// INVALID_GROUP_ID).
    pub fn group(&self, id: &str) -> Result<Option<(StreamPath, String)>> {
        if id.starts_with('/')
            && let Some((stream, group)) = id.split_once(':')
            && !group.is_empty()
            && let Ok(stream) = StreamPath::parse("group", stream)
        {
            return Ok(Some((stream, group_name(group)?)));
        }
        let name = group_name(id)?;
        Ok(self.default_stream().map(|s| (s.clone(), name)))
    }

    /// The stream whose topics "all topics" lists, under their short names.
    pub fn default_stream(&self) -> Option<&StreamPath> {
        self.user_default.as_ref().or(self.listener_default)
    }

    /// The name a Kafka client sees for `topic`: its short name when that resolves back to
    /// it, else the verbatim path.
    pub fn kafka_name(&self, topic: &TopicPath) -> String {
        match self.resolve(&topic.topic) {
            Ok(Some(t)) if &t == topic => topic.topic.clone(),
            _ => topic.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(s: &str) -> StreamPath {
        StreamPath::parse("s", s).unwrap()
    }

    #[test]
    fn globs() {
        for (p, n, m) in [
            ("orders", "orders", true),
            ("orders", "orders2", false),
            ("orders*", "orders", true),
            ("orders*", "orders.eu", true),
            ("*.eu", "orders.eu", true),
            ("*.eu", "orders.us", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "acb", false),
            ("a*a", "a", false),
            ("*", "anything", true),
        ] {
            assert_eq!(glob(p, n), m, "{p} ~ {n}");
        }
    }

    #[test]
    fn resolves_in_order_rules_user_listener_verbatim() {
        let rules = [
            AliasRule::parse("r", "orders*=/acme/orders").unwrap(),
            AliasRule::parse("r", "audit=/sec/audit").unwrap(),
        ];
        let user = stream("/acme/user");
        let listener = stream("/acme/default");
        let full = Resolver {
            rules: &rules,
            user_default: Some(user),
            listener_default: Some(&listener),
        };
        let at = |r: &Resolver<'_>, n: &str| r.resolve(n).unwrap().map(|t| t.to_string());
        assert_eq!(
            at(&full, "orders.eu").as_deref(),
            Some("/acme/orders:orders.eu")
        );
        assert_eq!(at(&full, "audit").as_deref(), Some("/sec/audit:audit"));
        assert_eq!(at(&full, "clicks").as_deref(), Some("/acme/user:clicks"));
        assert_eq!(at(&full, "/x/y:z").as_deref(), Some("/x/y:z"));
        let no_user = Resolver {
            user_default: None,
            ..full.clone()
        };
        assert_eq!(
            at(&no_user, "clicks").as_deref(),
            Some("/acme/default:clicks")
        );
        let bare = Resolver::default();
        assert_eq!(at(&bare, "clicks"), None);
        assert_eq!(at(&bare, "/x/y:z").as_deref(), Some("/x/y:z"));
    }

    #[test]
    fn malformed_names_are_errors_that_say_why() {
        let r = Resolver::default();
        for (name, why) in [
            ("", "empty"),
            ("..", "not allowed"),
            ("a b", "contains ' '"),
            ("/x/y", "STREAM:TOPIC"),
            ("/x:t", "inside a volume"),
            ("/x/y:", "empty"),
        ] {
            let e = r.resolve(name).unwrap_err().to_string();
            assert!(e.contains(why), "{name:?}: {e}");
        }
        let long = "t".repeat(250);
        assert!(r.resolve(&long).unwrap_err().to_string().contains("249"));
    }

    #[test]
    fn kafka_names_are_short_where_they_resolve_back() {
        let d = stream("/acme/default");
        let r = Resolver {
            listener_default: Some(&d),
            ..Resolver::default()
        };
        let here = TopicPath::parse("t", "/acme/default:clicks").unwrap();
        let there = TopicPath::parse("t", "/acme/other:clicks").unwrap();
        assert_eq!(r.kafka_name(&here), "clicks");
        assert_eq!(r.kafka_name(&there), "/acme/other:clicks");
    }

    #[test]
    fn alias_rules_parse_or_say_why() {
        assert!(
            AliasRule::parse("r", "orders")
                .unwrap_err()
                .to_string()
                .contains("PATTERN=STREAM")
        );
        assert!(
            AliasRule::parse("r", "=/a/b")
                .unwrap_err()
                .to_string()
                .contains("no pattern")
        );
        assert!(AliasRule::parse("r", "a b=/a/b").is_err());
        assert!(
            AliasRule::parse("r", "a=/a")
                .unwrap_err()
                .to_string()
                .contains("inside a volume")
        );
        let r = AliasRule::parse("r", "*=/a/b").unwrap();
        assert!(r.matches("x"));
    }

    #[test]
    fn group_ids_live_in_the_default_stream_or_say_their_own() {
        let user = stream("/u/s");
        let r = Resolver {
            rules: &[],
            user_default: Some(user.clone()),
            listener_default: None,
        };
        assert_eq!(
            r.group("billing").unwrap(),
            Some((user.clone(), "billing".into()))
        );
        assert_eq!(
            r.group("/v/other:billing").unwrap(),
            Some((stream("/v/other"), "billing".into()))
        );
        assert_eq!(
            r.group("/v/other:my sink").unwrap(),
            Some((stream("/v/other"), "_k.my_20sink".into()))
        );
        assert!(r.group("").is_err());
        assert_eq!(
            r.group("has space").unwrap(),
            Some((user.clone(), "_k.has_20space".into()))
        );
        // Not a stream path and an id: the whole id, in the default stream.
        for id in ["/v/other:", "/v:x", "/v//s:x", "/nocolon"] {
            let (s, name) = r.group(id).unwrap().unwrap();
            assert_eq!((s, group_id(&name).as_deref()), (user.clone(), Some(id)));
        }
        assert_eq!(Resolver::default().group("billing").unwrap(), None);
    }

    #[test]
    fn group_ids_map_to_names_one_to_one_and_back() {
        for (id, name) in [
            ("billing", "billing"),
            ("my_group-1.x", "my_group-1.x"),
            (
                "connect-cluster.my sink/1:x",
                "_k.connect-cluster.my_20sink_2F1_3Ax",
            ),
            ("_k.x", "_k._5Fk.x"),
            (".", "_k.."),
            ("..", "_k..."),
            ("a_b c", "_k.a_5Fb_20c"),
            ("é", "_k._C3_A9"),
        ] {
            assert_eq!(group_name(id).unwrap(), name, "{id:?}");
            assert_eq!(group_id(name).as_deref(), Some(id), "{name:?}");
            check_group("g", name).unwrap();
        }
        // Names no id is stored under.
        for name in [
            "_k.a_2",
            "_k.a_zz",
            "_k.a_2f",
            "_k.abc_2D",
            "_k.billing",
            "_k._FF",
        ] {
            assert_eq!(group_id(name), None, "{name:?}");
        }
        assert!(group_name("").unwrap_err().to_string().contains("empty"));
        let long = " ".repeat(83);
        let e = group_name(&long).unwrap_err().to_string();
        assert!(e.contains("limit is 249"), "{e}");
        assert_eq!(group_name(&" ".repeat(82)).unwrap().len(), 249);
    }
}
