//! Fuzzes the name rules (design §1.2): volume, stream and topic paths, user and group
//! names, and the bearer-token format. Each parser must agree with a plain restatement of its rule
//! below, refuse naming the field, and give back what it accepted unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::names::{
    MAX_PATH_BYTES, MAX_SEGMENT_BYTES, MAX_TOPIC_BYTES, StreamPath, TopicPath, VolumePath,
    volume_of,
};
use tributary_volume::auth::{check_name, split_token};

/// `[A-Za-z0-9._-]{1,max}`, not `.` or `..`.
fn is_name(s: &str, max: usize) -> bool {
    (1..=max).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The segments of an absolute path of valid segments, at most MAX_PATH_BYTES long.
fn segments(path: &str) -> Option<Vec<&str>> {
    let rest = path
        .strip_prefix('/')
        .filter(|_| path.len() <= MAX_PATH_BYTES)?;
    let segs: Vec<&str> = rest.split('/').collect();
    segs.iter()
        .all(|s| is_name(s, MAX_SEGMENT_BYTES))
        .then_some(segs)
}

fn is_stream(path: &str) -> bool {
    segments(path).is_some_and(|s| s.len() >= 2)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Path errors are the pure code's, user-name errors the namespace's.
    let refused = |e: &dyn std::fmt::Display| {
        let m = e.to_string();
        assert!(
            m.starts_with("f: "),
            "{text:?}: the error names the field: {m}"
        );
    };

    match VolumePath::parse("f", text) {
        Ok(v) => {
            assert_eq!(v.as_str(), text);
            assert_eq!(segments(text).map(|s| s.len()), Some(1), "{text:?}");
        }
        Err(e) => {
            assert_ne!(segments(text).map(|s| s.len()), Some(1), "{text:?}");
            refused(&e);
        }
    }

    match StreamPath::parse("f", text) {
        Ok(s) => {
            assert!(is_stream(text), "{text:?}");
            assert_eq!(s.as_str(), text);
            let volume = s.volume();
            assert_eq!(volume.as_str(), volume_of(text));
            assert_eq!(VolumePath::parse("f", volume.as_str()).unwrap(), volume);
            assert_eq!(text.as_bytes()[volume.as_str().len()], b'/');
        }
        Err(e) => {
            assert!(!is_stream(text), "{text:?}");
            refused(&e);
        }
    }

    let topic_rule = text
        .rsplit_once(':')
        .is_some_and(|(s, t)| is_stream(s) && is_name(t, MAX_TOPIC_BYTES));
    match TopicPath::parse("f", text) {
        Ok(t) => {
            assert!(topic_rule, "{text:?}");
            assert_eq!(t.to_string(), text);
            assert_eq!(StreamPath::parse("f", t.stream.as_str()).unwrap(), t.stream);
        }
        Err(e) => {
            assert!(!topic_rule, "{text:?}");
            refused(&e);
        }
    }

    // User and group names: `[A-Za-z0-9._@-]{1,255}`.
    let user_rule = (1..=255).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b));
    match check_name("f", "user name", text) {
        Ok(()) => assert!(user_rule, "{text:?}"),
        Err(e) => {
            assert!(!user_rule, "{text:?}");
            refused(&e);
        }
    }

    // Tokens: `trb_<16-char id>.<secret>`; the split gives back exactly those parts.
    if let Ok((id, secret)) = split_token(text) {
        assert_eq!(id.len(), 16);
        assert!(!secret.is_empty());
        assert_eq!(format!("trb_{id}.{secret}"), text);
    }
});
