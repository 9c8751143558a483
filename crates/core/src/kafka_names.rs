//! How a Kafka topic name, which is flat, finds a topic inside a stream (design §9). In
//! order: the alias rules (a name or a glob mapped to a stream, as MapR's Kafka wire
//! protocol service had them), the user's default stream, the listener's default stream,
//! and last a verbatim `/volume/stream:topic`. Kafka's topic alphabet is exactly a
//! Tributary topic's, so a short name is the topic's own name; a name with `/` or `:` can
//! only be verbatim. A group id finds its stream the same way, without the alias rules:
//! verbatim `/volume/stream:group`, else the default stream.

use crate::names::{StreamPath, TopicPath, check_group, check_topic};
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

/// What a name is resolved against: the listener's rules and default, and the caller's.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resolver<'a> {
    pub rules: &'a [AliasRule],
    pub user_default: Option<&'a StreamPath>,
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
            .or(self.user_default)
            .or(self.listener_default);
        Ok(stream.map(|s| TopicPath {
            stream: s.clone(),
            topic: name.to_owned(),
        }))
    }

    /// The stream a Kafka group lives in, and its name there: a verbatim
    /// `/volume/stream:group`, else the default stream (the user's, then the listener's).
    /// `None` when there is no default stream; an error for an id that is not a group name
    /// (Kafka's INVALID_GROUP_ID).
    pub fn group(&self, id: &str) -> Result<Option<(StreamPath, String)>> {
        if let Some((stream, group)) = id.rsplit_once(':')
            && id.starts_with('/')
        {
            check_group("group", group)?;
            return Ok(Some((
                StreamPath::parse("group", stream)?,
                group.to_owned(),
            )));
        }
        check_group("group", id)?;
        Ok(self.default_stream().map(|s| (s.clone(), id.to_owned())))
    }

    /// The stream whose topics "all topics" lists, under their short names.
    pub fn default_stream(&self) -> Option<&StreamPath> {
        self.user_default.or(self.listener_default)
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
            user_default: Some(&user),
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
            ..full
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
            user_default: Some(&user),
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
        assert!(r.group("").is_err());
        assert!(r.group("has space").is_err());
        assert!(r.group("/v/other:").is_err());
        assert_eq!(Resolver::default().group("billing").unwrap(), None);
    }
}
