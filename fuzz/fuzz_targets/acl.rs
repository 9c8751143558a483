//! Fuzzes the ACL expression parser: arbitrary text must parse or fail with an in-range
//! column, never panic, and what parses must print canonically and parse back equal.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_core::acl::{Acl, Principal};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Acl::parse(text) {
        Ok(parsed) => {
            let canonical = parsed.to_string();
            let reparsed = Acl::parse(&canonical)
                .unwrap_or_else(|e| panic!("canonical {canonical:?} of {text:?}: {e}"));
            assert_eq!(reparsed, parsed, "canonical {canonical:?} of {text:?}");
            assert_eq!(reparsed.to_string(), canonical);
            for principal in [
                Principal {
                    name: "alice".to_owned(),
                    groups: vec!["ops".to_owned(), "dev".to_owned()],
                },
                Principal {
                    name: "a".to_owned(),
                    groups: Vec::new(),
                },
            ] {
                let _ = parsed.allows(&principal);
            }
        }
        Err(e) => {
            assert!(
                (1..=text.chars().count() + 1).contains(&e.column),
                "{text:?}: {e}"
            );
        }
    }
});
