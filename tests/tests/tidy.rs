//! Tidy: rules that reviews kept finding, checked on the repository's own files, in the
//! manner of rust-analyzer's `xtask/src/tidy.rs`. Needs no server and reads each tracked
//! file once, so it takes well under a second.
//!
//! 1. Every citation of the design names a section that `docs/design.md` has, spelled one
//!    way: `design §7` (or `design §6.2`) in code, and in Markdown a link to the section,
//!    `[design §7](docs/design.md#7-errors-a-client-sees)` with the path relative to the
//!    citing file. Links into `design.md` must name an existing heading.
//! 2. Every Rust file under `crates/`, `tests/`, `examples/` and `fuzz/` starts with a `//!`
//!    line saying why the module exists.
//! 3. Code comments (and ARCHITECTURE.md) say why the code is as it is, not what the
//!    development machine did: no "this VM", "on two cores" and the like. Figures and
//!    machines belong in docs/PERFORMANCE.md.
//!
//! Each rule has a test below showing it catches a bad sample. This file holds those
//! samples, so rules 1 and 3 skip it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::Command;

use tributary_e2e::repo_root;

const DESIGN: &str = "docs/design.md";
const THIS_FILE: &str = "tests/tests/tidy.rs";

/// Seeds and other inputs, not prose: no rule applies.
const NOT_CHECKED: &[&str] = &["fuzz/corpus/"];

/// Phrases that describe one machine rather than the code (rule 3), matched as whole words
/// in lower case.
const MACHINE_REMARKS: &[&str] = &[
    "this vm",
    "vm's host",
    "the host takes",
    "on two cores",
    "on 2 cores",
    "these two cores",
    "these 2 cores",
    "two-core",
    "2-core",
    "development machine",
    "dev machine",
    "our machine",
    "this shared machine",
    "the project's machine",
];

/// A rule broken at a file's line.
#[derive(Debug)]
struct Problem {
    path: String,
    line: usize,
    message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

fn problem(path: &str, line: usize, message: String) -> Problem {
    Problem {
        path: path.to_owned(),
        line,
        message,
    }
}

#[test]
fn the_repository_is_tidy() {
    let root = repo_root();
    let design_text = std::fs::read_to_string(root.join(DESIGN))
        .unwrap_or_else(|e| panic!("reading {DESIGN}: {e}"));
    let design = Design::parse(&design_text);
    assert!(
        design.sections.contains_key("1") && design.sections.contains_key("10"),
        "{DESIGN} should have numbered sections 1 to 10; found {:?}",
        design.sections.keys().collect::<Vec<_>>()
    );
    let mut problems = Vec::new();
    let mut checked = 0;
    for path in repo_files(&root) {
        if NOT_CHECKED.iter().any(|p| path.starts_with(p)) {
            continue;
        }
        // Missing (deleted, not yet committed) or not text: nothing to check.
        let Ok(text) = std::fs::read_to_string(root.join(&path)) else {
            continue;
        };
        checked += 1;
        problems.extend(check(&path, &text, &design));
    }
    assert!(checked > 100, "only {checked} files found under {root:?}");
    let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(list.is_empty(), "tidy:\n{}", list.join("\n"));
}

/// Every rule that applies to `path`.
fn check(path: &str, text: &str, design: &Design) -> Vec<Problem> {
    let mut problems = check_module_doc(path, text);
    if path != THIS_FILE {
        problems.extend(check_design_citations(path, text, design));
        problems.extend(check_machine_remarks(path, text));
    }
    problems
}

/// The repository's files, relative to `root` with `/` separators: what git tracks plus
/// new files it does not ignore, or, outside a git checkout, a walk.
fn repo_files(root: &Path) -> Vec<String> {
    let listed = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<String> = match listed {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => {
            let mut files = Vec::new();
            walk(root, root, &mut files);
            files
        }
    };
    files.sort();
    files.dedup();
    files
}

/// Build output, caches and generated code, which the walk leaves out as git would.
const NOT_WALKED: &[&str] = &[
    ".git",
    "target",
    "data",
    "artifacts",
    "coverage",
    "build",
    "__pycache__",
    "node_modules",
];

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = path
            .strip_prefix(root)
            .expect("walked under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if path.is_dir() {
            let generated = rel == "clients/python/tributary/v1" || name.ends_with(".egg-info");
            if !NOT_WALKED.contains(&name.as_str()) && !generated {
                walk(root, &path, out);
            }
        } else {
            out.push(rel);
        }
    }
}

// Rule 1: citations of the design.

/// The headings of docs/design.md: numbered sections by number, and every anchor.
struct Design {
    /// "6" or "6.2" -> its anchor, "6-geo-replication".
    sections: BTreeMap<String, String>,
    anchors: BTreeSet<String>,
}

impl Design {
    fn parse(text: &str) -> Design {
        let mut sections = BTreeMap::new();
        let mut anchors = BTreeSet::new();
        for line in markdown_prose(text) {
            let Some(title) = line.strip_prefix("##").map(|t| t.trim_start_matches('#')) else {
                continue;
            };
            let title = title.trim();
            let anchor = slug(title);
            if let Some(number) = heading_number(title) {
                sections.insert(number, anchor.clone());
            }
            anchors.insert(anchor);
        }
        Design { sections, anchors }
    }
}

/// GitHub's anchor for a heading: lower case, spaces to hyphens, punctuation dropped.
fn slug(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// "6. Geo-replication" -> "6"; "6.2 Exactly once" -> "6.2"; "Status" -> None.
fn heading_number(title: &str) -> Option<String> {
    let word = title.split_whitespace().next()?;
    let number = word.strip_suffix('.').unwrap_or(word);
    let numeric = !number.is_empty()
        && number
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
    numeric.then(|| number.to_owned())
}

/// A Markdown file's lines with fenced code blocks blanked and inline code spans removed:
/// an example in backticks is not a citation.
fn markdown_prose(text: &str) -> Vec<String> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return String::new();
            }
            if fenced {
                return String::new();
            }
            line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

fn check_design_citations(path: &str, text: &str, design: &Design) -> Vec<Problem> {
    let markdown = path.ends_with(".md");
    let lines: Vec<String> = if markdown {
        markdown_prose(text)
    } else {
        text.lines().map(str::to_owned).collect()
    };
    let mut problems = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let at = i + 1;
        if line.contains("DESIGN.md") {
            problems.push(problem(
                path,
                at,
                format!("DESIGN.md was the planning document; the design is {DESIGN}"),
            ));
        }
        for (start, _) in line.match_indices("design.md#") {
            let anchor: String = line[start + "design.md#".len()..]
                .chars()
                .take_while(|&c| c.is_alphanumeric() || c == '-' || c == '_')
                .collect();
            if !design.anchors.contains(&anchor) {
                problems.push(problem(
                    path,
                    at,
                    format!("links to `#{anchor}`, which is no heading of {DESIGN}"),
                ));
            }
        }
        for (start, _) in line.match_indices('§') {
            let rest = &line[start + '§'.len_utf8()..];
            let number: String = rest
                .chars()
                .take_while(|&c| c.is_ascii_digit() || c == '.')
                .collect();
            let number = number.trim_end_matches('.');
            if number.is_empty() {
                continue;
            }
            let word = word_before(&lines, i, start);
            let named = word
                .trim_start_matches(|c: char| "(*\"'".contains(c))
                .to_owned();
            let cites_design = {
                let lower = named.to_lowercase();
                let lower = lower.trim_start_matches('[');
                lower == "design" || lower.ends_with("design.md")
            };
            let self_citation = path == DESIGN && !named.contains(".md");
            if !cites_design && !self_citation {
                continue;
            }
            let Some(anchor) = design.sections.get(number) else {
                let mut known: Vec<&str> = design.sections.keys().map(String::as_str).collect();
                known.sort_by_key(|n| {
                    n.split('.')
                        .map(|p| p.parse().unwrap_or(0))
                        .collect::<Vec<u32>>()
                });
                problems.push(problem(
                    path,
                    at,
                    format!(
                        "cites design §{number}, which {DESIGN} does not have (it has §{})",
                        known.join(", §")
                    ),
                ));
                continue;
            };
            if self_citation {
                continue;
            }
            let after = &rest[number.len()..];
            let wanted = format!("{}#{anchor}", relative_to(path, DESIGN));
            let (right, message) = if markdown {
                let linked = after
                    .strip_prefix("](")
                    .and_then(|l| l.split(')').next())
                    .and_then(|target| target.split_once('#'))
                    .is_some_and(|(file, to)| resolve(path, file) == DESIGN && to == anchor);
                (
                    (named == "[design" || named == "[Design") && linked,
                    format!("link the citation: `[design §{number}]({wanted})`"),
                )
            } else {
                (
                    named == "design",
                    format!("cite the design as `design §{number}`, not `{named} §{number}`"),
                )
            };
            if !right {
                problems.push(problem(path, at, message));
            }
        }
    }
    problems
}

/// The word before byte `start` of line `i`, looking back over a comment's leader to the
/// previous line when the citation begins a line ("the status DESIGN" / "§7 gives it").
fn word_before(lines: &[String], i: usize, start: usize) -> String {
    let leaders = ["//!", "///", "//", "#", "*", ">", "-"];
    let before = lines[i][..start].trim_end();
    let own = before
        .split_whitespace()
        .last()
        .filter(|w| !leaders.contains(w));
    match own {
        Some(word) => word.to_owned(),
        None if i > 0 => lines[i - 1]
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned(),
        None => String::new(),
    }
}

/// The repository path that `link`, written in the file at `from`, points at.
fn resolve(from: &str, link: &str) -> String {
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for part in link.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// How the file at `from` writes a link to the repository path `to`.
fn relative_to(from: &str, to: &str) -> String {
    let dirs = from.matches('/').count();
    let to_dirs: Vec<&str> = to.split('/').collect();
    let from_dirs: Vec<&str> = from.split('/').take(dirs).collect();
    let common = from_dirs
        .iter()
        .zip(&to_dirs)
        .take_while(|(a, b)| a == b)
        .count();
    let mut parts = vec![".."; dirs - common];
    parts.extend(&to_dirs[common..]);
    parts.join("/")
}

// Rule 2: module docs.

fn check_module_doc(path: &str, text: &str) -> Vec<Problem> {
    let rust_module = path.ends_with(".rs")
        && ["crates/", "tests/", "examples/", "fuzz/"]
            .iter()
            .any(|dir| path.starts_with(dir));
    if !rust_module {
        return Vec::new();
    }
    let first = text
        .lines()
        .enumerate()
        .find(|(_, line)| !line.trim().is_empty());
    match first {
        Some((_, line))
            if line
                .strip_prefix("//!")
                .is_some_and(|d| !d.trim().is_empty()) =>
        {
            Vec::new()
        }
        found => vec![problem(
            path,
            found.map_or(1, |(i, _)| i + 1),
            "a Rust file starts with a `//!` line saying why the module exists".into(),
        )],
    }
}

// Rule 3: remarks about one machine.

fn check_machine_remarks(path: &str, text: &str) -> Vec<Problem> {
    let slash_comments = path.ends_with(".rs") || path.ends_with(".proto");
    let whole_lines = path == "ARCHITECTURE.md";
    if path.ends_with(".md") && !whole_lines {
        // Guides and measurements may name machines; PERFORMANCE.md is where they go.
        return Vec::new();
    }
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let comment = if whole_lines {
            Some(line)
        } else if slash_comments {
            line.find("//").map(|at| &line[at..])
        } else {
            Some(line).filter(|l| l.trim_start().starts_with('#'))
        };
        let Some(comment) = comment else { continue };
        let lower = comment.to_lowercase();
        if let Some(phrase) = MACHINE_REMARKS.iter().find(|p| contains_words(&lower, p)) {
            problems.push(problem(
                path,
                i + 1,
                format!(
                    "\"{phrase}\" describes one machine: say why the code is as it is, and \
                     put figures and machines in docs/PERFORMANCE.md"
                ),
            ));
        }
    }
    problems
}

/// Whether `phrase` occurs in `text` with no letter or digit touching either end.
fn contains_words(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

// Each rule catches what it is for.

mod rules {
    use super::*;

    const SAMPLE_DESIGN: &str = "\
# Tributary: design

## Status

## 1. Model

### 1.2 Names

```
## 99. In a code block
```

## 7. Errors a client sees
";

    fn design() -> Design {
        Design::parse(SAMPLE_DESIGN)
    }

    fn messages(path: &str, text: &str) -> Vec<String> {
        check(path, text, &design())
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn sections_and_anchors_come_from_the_headings() {
        let d = design();
        let numbers: Vec<&str> = d.sections.keys().map(String::as_str).collect();
        assert_eq!(numbers, ["1", "1.2", "7"]);
        assert_eq!(d.sections["7"], "7-errors-a-client-sees");
        assert_eq!(d.sections["1.2"], "12-names");
        assert!(d.anchors.contains("status"));
        assert_eq!(
            slug("10. Past one machine: a cluster on etcd"),
            "10-past-one-machine-a-cluster-on-etcd"
        );
    }

    #[test]
    fn code_cites_existing_sections_as_design_section() {
        let ok =
            "//! The one table (design §7).\n// Names: design §1.2.\n// docs/RELIABILITY.md §4\n";
        assert_eq!(
            messages("crates/api/src/error.rs", ok),
            Vec::<String>::new()
        );

        let missing = messages("crates/api/src/x.rs", "//! Why.\n// see design §8.\n");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with("crates/api/src/x.rs:2: cites design §8"),
            "{missing:?}"
        );

        for old in ["(DESIGN §7)", "(DESIGN.md §7)", "(docs/design.md §7)"] {
            let found = messages("crates/api/src/x.rs", &format!("//! Why.\n// {old}\n"));
            assert!(
                found
                    .iter()
                    .any(|m| m.contains(":2: cite the design as `design §7`")),
                "{old}: {found:?}"
            );
        }
        let planning = messages("scripts/x.sh", "# see DESIGN.md\n");
        assert!(planning[0].contains("planning document"), "{planning:?}");
    }

    #[test]
    fn a_citation_split_over_two_comment_lines_is_seen() {
        let text = "//! Each gets the status DESIGN\n//! §8 gives it.\n";
        let found = messages("tests/tests/x.rs", text);
        assert!(
            found.iter().any(|m| m.contains(":2: cites design §8")),
            "{found:?}"
        );
    }

    #[test]
    fn markdown_links_the_section() {
        let ok = "[design §7](docs/design.md#7-errors-a-client-sees) and \
                  [design §1.2](docs/design.md#12-names); `design §9` is an example.\n";
        assert_eq!(messages("ARCHITECTURE.md", ok), Vec::<String>::new());
        let ok_below = "[Design §7](../docs/design.md#7-errors-a-client-sees)\n";
        assert_eq!(messages("fuzz/README.md", ok_below), Vec::<String>::new());

        let plain = messages("docs/x.md", "as design §7 says\n");
        assert!(
            plain[0].contains("`[design §7](design.md#7-errors-a-client-sees)`"),
            "{plain:?}"
        );
        let wrong_anchor = messages("docs/x.md", "[design §7](design.md#12-names)\n");
        assert_eq!(wrong_anchor.len(), 1, "{wrong_anchor:?}");
        let wrong_path = messages(
            "README.md",
            "[design §7](design.md#7-errors-a-client-sees)\n",
        );
        assert!(
            wrong_path[0].contains("docs/design.md#7-errors"),
            "{wrong_path:?}"
        );
        let missing = messages("docs/x.md", "[design §8](design.md#8-testing)\n");
        assert!(
            missing.iter().any(|m| m.contains("cites design §8")),
            "{missing:?}"
        );
        assert!(
            missing.iter().any(|m| m.contains("`#8-testing`")),
            "{missing:?}"
        );
    }

    #[test]
    fn the_design_cites_its_own_sections() {
        let found = messages(DESIGN, "Plans (§7, §11) and [PERF](PERFORMANCE.md) §4.\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("cites design §11"), "{found:?}");
    }

    #[test]
    fn rust_files_start_with_a_module_doc() {
        assert!(
            check_module_doc("crates/x/src/a.rs", "\n//! Why it exists.\nuse std;\n").is_empty()
        );
        for bad in [
            "use std::fmt;\n",
            "//!\n//! Why.\n",
            "// A plain comment.\n",
            "",
        ] {
            let found = check_module_doc("crates/x/src/a.rs", bad);
            assert_eq!(found.len(), 1, "{bad:?}");
        }
        assert!(check_module_doc("scripts/x.rs", "fn main() {}\n").is_empty());
        let fuzz = check_module_doc("fuzz/fuzz_targets/x.rs", "#![no_main]\n");
        assert_eq!(
            fuzz[0].to_string(),
            "fuzz/fuzz_targets/x.rs:1: a Rust file starts with a `//!` line saying why the module exists"
        );
    }

    #[test]
    fn comments_do_not_describe_one_machine() {
        let rust = "//! Why.\n// On two cores those switches cost more.\nlet s = \"2-core\";\n";
        let found = check_machine_remarks("crates/storage/src/append.rs", rust);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 2);

        let script = "echo 'this VM'\n# so that no system pays for this VM's host\n";
        let found = check_machine_remarks("bench/compare.sh", script);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, 2);

        let arch = check_machine_remarks("ARCHITECTURE.md", "since this VM's host takes pages\n");
        assert_eq!(arch.len(), 1);
        // Guides and measurements may; words inside other words do not count.
        assert!(check_machine_remarks("docs/PERFORMANCE.md", "2 cores, on this VM\n").is_empty());
        assert!(check_machine_remarks("bench/x.sh", "# a 32-core box; thisvm\n").is_empty());
    }
}
