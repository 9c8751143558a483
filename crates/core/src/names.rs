//! Parsing and validation of volume, stream and topic names (design §1.2). Every error
//! names the request field and the offending part, so a user can fix it without guessing.

use std::fmt;

use crate::Error;

pub const MAX_PATH_BYTES: usize = 4096;
pub const MAX_SEGMENT_BYTES: usize = 255;
pub const MAX_TOPIC_BYTES: usize = 249;

/// A volume: one top-level path segment, `/acme`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VolumePath(String);

/// A stream: a path of two or more segments whose first names its volume, `/acme/iot/sensors`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamPath(String);

/// A topic inside a stream, `/acme/iot/sensors:temperature`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicPath {
    pub stream: StreamPath,
    pub topic: String,
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

fn check_name(field: &str, what: &str, name: &str, max: usize) -> Result<(), Error> {
    let bad = |why: String| Err(Error::invalid(field, format!("{what} `{name}` {why}")));
    if name.is_empty() {
        return Err(Error::invalid(field, format!("empty {what}")));
    }
    if name.len() > max {
        return bad(format!("is {} bytes long; the limit is {max}", name.len()));
    }
    if name == "." || name == ".." {
        return bad("is not allowed".into());
    }
    if let Some(c) = name.chars().find(|&c| !name_char(c)) {
        return bad(format!("contains {c:?}; allowed are A-Z a-z 0-9 . _ -"));
    }
    Ok(())
}

/// Checks a topic name (Kafka's rules too: `[A-Za-z0-9._-]{1,249}`, not `.` or `..`).
pub fn check_topic(field: &str, name: &str) -> Result<(), Error> {
    check_name(field, "topic name", name, MAX_TOPIC_BYTES)
}

/// Checks a consumer-group name: the rules of topic names.
pub fn check_group(field: &str, name: &str) -> Result<(), Error> {
    check_name(field, "group name", name, MAX_TOPIC_BYTES)
}

/// Splits an absolute path into checked segments.
fn segments<'a>(field: &str, path: &'a str) -> Result<Vec<&'a str>, Error> {
    if path.is_empty() {
        return Err(Error::invalid(field, "empty path".into()));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(Error::invalid(
            field,
            format!(
                "path is {} bytes long; the limit is {MAX_PATH_BYTES}",
                path.len()
            ),
        ));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(Error::invalid(
            field,
            format!("path `{path}` must start with `/`"),
        ));
    };
    let segs: Vec<&str> = rest.split('/').collect();
    for (i, s) in segs.iter().enumerate() {
        if s.is_empty() {
            let why = if i + 1 == segs.len() {
                "ends with `/`"
            } else {
                "has an empty segment (`//`)"
            };
            return Err(Error::invalid(field, format!("path `{path}` {why}")));
        }
        check_name(field, "path segment", s, MAX_SEGMENT_BYTES)?;
    }
    Ok(segs)
}

impl VolumePath {
    pub fn parse(field: &str, path: &str) -> Result<Self, Error> {
        let segs = segments(field, path)?;
        if segs.len() != 1 {
            return Err(Error::invalid(
                field,
                format!(
                    "volume path `{path}` must be a single segment, like `/{}`",
                    segs[0]
                ),
            ));
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl StreamPath {
    pub fn parse(field: &str, path: &str) -> Result<Self, Error> {
        if path.contains(':') {
            return Err(Error::invalid(
                field,
                format!("`{path}` is a topic path; a stream path has no `:`"),
            ));
        }
        let segs = segments(field, path)?;
        if segs.len() < 2 {
            return Err(Error::invalid(
                field,
                format!("stream path `{path}` must be inside a volume, like `{path}/mystream`"),
            ));
        }
        Ok(Self(path.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn volume(&self) -> VolumePath {
        VolumePath(volume_of(&self.0).to_owned())
    }
}

/// The volume part of a valid stream path (`/acme` of `/acme/iot/s`).
pub fn volume_of(stream_path: &str) -> &str {
    let end = stream_path[1..]
        .find('/')
        .map_or(stream_path.len(), |i| i + 1);
    &stream_path[..end]
}

impl TopicPath {
    pub fn parse(field: &str, path: &str) -> Result<Self, Error> {
        let Some((stream, topic)) = path.rsplit_once(':') else {
            return Err(Error::invalid(
                field,
                format!("topic path `{path}` must be STREAM:TOPIC, like `/vol/stream:events`"),
            ));
        };
        let stream = StreamPath::parse(field, stream)?;
        check_topic(field, topic)?;
        Ok(Self {
            stream,
            topic: topic.to_owned(),
        })
    }
}

impl fmt::Display for VolumePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for StreamPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for TopicPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.stream, self.topic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn msg(r: Result<impl fmt::Debug, Error>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn good_names_parse() {
        assert_eq!(
            VolumePath::parse("path", "/acme").unwrap().as_str(),
            "/acme"
        );
        let s = StreamPath::parse("path", "/acme/iot/sensors").unwrap();
        assert_eq!(s.volume().as_str(), "/acme");
        let t = TopicPath::parse("topic", "/acme/iot/sensors:temp.c_1-x").unwrap();
        assert_eq!(
            (t.stream.as_str(), t.topic.as_str()),
            ("/acme/iot/sensors", "temp.c_1-x")
        );
        assert_eq!(t.to_string(), "/acme/iot/sensors:temp.c_1-x");
    }

    #[test]
    fn bad_names_are_refused_naming_the_field_and_the_part() {
        assert!(msg(VolumePath::parse("path", "acme")).contains("must start with `/`"));
        assert!(msg(VolumePath::parse("path", "/a/b")).contains("single segment"));
        assert!(msg(StreamPath::parse("path", "/acme")).contains("inside a volume"));
        assert!(msg(StreamPath::parse("path", "/acme//x")).contains("empty segment"));
        assert!(msg(StreamPath::parse("path", "/acme/x/")).contains("ends with `/`"));
        assert!(msg(StreamPath::parse("path", "/acme/../x")).contains("`..` is not allowed"));
        assert!(msg(StreamPath::parse("path", "/acme/s p")).contains("' '"));
        assert!(msg(StreamPath::parse("path", "/acme/s:t")).contains("topic path"));
        assert!(msg(TopicPath::parse("topic", "/acme/s")).contains("STREAM:TOPIC"));
        assert!(msg(TopicPath::parse("topic", "/acme/s:")).contains("empty topic name"));
        assert!(msg(TopicPath::parse("topic", "/acme/s:é")).contains("'é'"));
        let long = format!("/acme/s:{}", "t".repeat(250));
        assert!(msg(TopicPath::parse("topic", &long)).contains("limit is 249"));
        let long = format!("/acme/{}", "s".repeat(256));
        assert!(msg(StreamPath::parse("path", &long)).contains("limit is 255"));
        let long = format!("/acme{}", "/ssssssss".repeat(500));
        assert!(msg(StreamPath::parse("path", &long)).contains("limit is 4096"));
        assert!(msg(StreamPath::parse("stream", "x")).starts_with("stream:"));
    }

    proptest! {
        #[test]
        fn valid_paths_round_trip(segs in proptest::collection::vec("[A-Za-z0-9_-][A-Za-z0-9._-]{0,20}", 2..6),
                                  topic in "[A-Za-z0-9._-]{1,40}") {
            prop_assume!(topic != "." && topic != "..");
            let stream = format!("/{}", segs.join("/"));
            let path = format!("{stream}:{topic}");
            let t = TopicPath::parse("topic", &path).unwrap();
            prop_assert_eq!(t.to_string(), path);
            prop_assert_eq!(t.stream.volume().to_string(), format!("/{}", segs[0]));
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,64}") {
            let _ = VolumePath::parse("f", &s);
            let _ = StreamPath::parse("f", &s);
            let _ = TopicPath::parse("f", &s);
        }
    }
}
