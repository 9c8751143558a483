//! Access control expressions over principals (MapR Streams style), so every permission of a
//! stream or volume is one small, parseable, canonically printable value.
//!
//! Grammar (precedence `!` > `&` > `|`; `&` and `|` are left-associative; whitespace between
//! tokens is ignored; the empty expression means nobody):
//!
//! ```text
//! acl     := ws* | or
//! or      := and ('|' and)*
//! and     := unary ('&' unary)*
//! unary   := '!' unary | '(' or ')' | atom
//! atom    := 'u:' NAME | 'g:' NAME | 'p'
//! NAME    := [A-Za-z0-9._@-]{1,255}
//! ```
//!
//! An expression is at most 4096 bytes, as typed and in canonical form, and nests at most 64
//! levels of `(` and `!`, so parsing untrusted text is bounded in time and stack.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest accepted expression, in bytes.
const MAX_LEN: usize = 4096;
/// Deepest accepted nesting of `(` and `!`.
const MAX_DEPTH: usize = 64;
/// Longest user or group name, in characters (all ASCII).
const MAX_NAME: usize = 255;
/// What may start an operand, for error messages.
const OPERAND: &str = "u:NAME, g:NAME, p, ! or (";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct AclError {
    pub column: usize,
    pub message: String,
}

/// A parsed access control expression; `==` compares the syntax tree, which `Display` prints
/// canonically, so `Acl::parse(&acl.to_string()) == Ok(acl)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    /// `None` is the empty expression: nobody.
    expr: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Public,
    User(String),
    Group(String),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Acl {
    /// Parses an expression; the error names the 1-based column (in characters) of the
    /// offending token and what was expected there.
    pub fn parse(s: &str) -> Result<Acl, AclError> {
        if s.len() > MAX_LEN {
            let column = s
                .char_indices()
                .take_while(|(i, c)| i + c.len_utf8() <= MAX_LEN)
                .count()
                + 1;
            return Err(error(
                column,
                format!(
                    "expression is {} bytes long, at most {MAX_LEN} are allowed",
                    s.len()
                ),
            ));
        }
        let mut parser = Parser {
            tokens: lex(s),
            pos: 0,
            depth: 0,
        };
        if parser.peek().kind == Kind::End {
            return Ok(Acl::nobody());
        }
        let expr = parser.or()?;
        let next = parser.peek();
        match next.kind {
            Kind::End => {
                let acl = Acl { expr: Some(expr) };
                parser.check_canonical_len(&acl.to_string())?;
                Ok(acl)
            }
            Kind::RParen => Err(error(next.col, "unexpected ) with no matching (".into())),
            _ => Err(error(
                next.col,
                format!("expected &, | or end of input but found {}", next.kind),
            )),
        }
    }

    /// The empty expression: allows nobody.
    pub fn nobody() -> Acl {
        Acl { expr: None }
    }

    /// `u:NAME`.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid NAME (`[A-Za-z0-9._@-]{1,255}`), because such an `Acl` could
    /// not be printed and parsed back.
    pub fn user(name: &str) -> Acl {
        if let Err(e) = check_name("user", name, None, 1) {
            panic!("Acl::user({name:?}): {}", e.message);
        }
        Acl {
            expr: Some(Expr::User(name.to_owned())),
        }
    }

    /// Whether the expression is true for `p`.
    pub fn allows(&self, p: &Principal) -> bool {
        self.expr.as_ref().is_some_and(|e| e.allows(p))
    }
}

impl Expr {
    fn allows(&self, p: &Principal) -> bool {
        match self {
            Expr::Public => true,
            Expr::User(name) => p.name == *name,
            Expr::Group(group) => p.groups.iter().any(|g| g == group),
            Expr::Not(e) => !e.allows(p),
            Expr::And(l, r) => l.allows(p) && r.allows(p),
            Expr::Or(l, r) => l.allows(p) || r.allows(p),
        }
    }

    /// Binding strength: `|` 1, `&` 2, `!` and atoms 3.
    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            _ => 3,
        }
    }

    /// Writes `self`, parenthesized if it binds less tightly than `min`.
    fn write(&self, f: &mut fmt::Formatter<'_>, min: u8) -> fmt::Result {
        let parens = self.precedence() < min;
        if parens {
            f.write_str("(")?;
        }
        match self {
            Expr::Public => f.write_str("p")?,
            Expr::User(name) => write!(f, "u:{name}")?,
            Expr::Group(name) => write!(f, "g:{name}")?,
            Expr::Not(e) => {
                f.write_str("!")?;
                e.write(f, 3)?;
            }
            // Left-associative: the left operand may be the same operator, the right may not.
            Expr::And(l, r) => {
                l.write(f, 2)?;
                f.write_str(" & ")?;
                r.write(f, 3)?;
            }
            Expr::Or(l, r) => {
                l.write(f, 1)?;
                f.write_str(" | ")?;
                r.write(f, 2)?;
            }
        }
        if parens {
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => Ok(()),
            Some(e) => e.write(f, 1),
        }
    }
}

impl Serialize for Acl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Acl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Acl::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn error(column: usize, message: String) -> AclError {
    AclError { column, message }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    LParen,
    RParen,
    Not,
    And,
    Or,
    /// A maximal run of characters that are neither whitespace nor `()!&|`, an atom if valid,
    /// and the character that ends it, for the error on `u: alice`.
    Word(&'a str, Option<char>),
    End,
}

impl fmt::Display for Kind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::LParen => f.write_str("("),
            Kind::RParen => f.write_str(")"),
            Kind::Not => f.write_str("!"),
            Kind::And => f.write_str("&"),
            Kind::Or => f.write_str("|"),
            Kind::Word(w, _) => match w.char_indices().nth(32) {
                Some((i, _)) => write!(f, "{}...", &w[..i]),
                None => f.write_str(w),
            },
            Kind::End => f.write_str("end of input"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind<'a>,
    /// 1-based, in characters.
    col: usize,
}

fn is_special(c: char) -> bool {
    matches!(c, '(' | ')' | '!' | '&' | '|')
}

/// Splits `s` into tokens, ending with `Kind::End`; never fails (bad words fail in the parser,
/// which knows what it expected).
fn lex(s: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut chars = s.char_indices().peekable();
    let mut col = 0;
    while let Some((start, c)) = chars.next() {
        col += 1;
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '!' => Kind::Not,
            '&' => Kind::And,
            '|' => Kind::Or,
            _ => {
                let word_col = col;
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = chars.peek() {
                    if c.is_whitespace() || is_special(c) {
                        break;
                    }
                    chars.next();
                    col += 1;
                    end = i + c.len_utf8();
                }
                let after = chars.peek().map(|&(_, c)| c);
                tokens.push(Token {
                    kind: Kind::Word(&s[start..end], after),
                    col: word_col,
                });
                continue;
            }
        };
        tokens.push(Token { kind, col });
    }
    tokens.push(Token {
        kind: Kind::End,
        col: col + 1,
    });
    tokens
}

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    /// Current nesting of `(` and `!`.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Token<'a> {
        self.tokens[self.pos]
    }

    fn bump(&mut self) -> Token<'a> {
        let t = self.tokens[self.pos];
        if t.kind != Kind::End {
            self.pos += 1;
        }
        t
    }

    fn or(&mut self) -> Result<Expr, AclError> {
        let mut lhs = self.and()?;
        while self.peek().kind == Kind::Or {
            self.bump();
            let rhs = self.and()?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr, AclError> {
        let mut lhs = self.unary()?;
        while self.peek().kind == Kind::And {
            self.bump();
            let rhs = self.unary()?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, AclError> {
        let t = self.bump();
        match t.kind {
            Kind::Not => {
                self.enter(t.col)?;
                let e = self.unary()?;
                self.depth -= 1;
                Ok(Expr::Not(Box::new(e)))
            }
            Kind::LParen => {
                self.enter(t.col)?;
                let e = self.or()?;
                let close = self.bump();
                match close.kind {
                    Kind::RParen => {}
                    Kind::End => {
                        return Err(error(
                            t.col,
                            "unclosed (: expected ) but found end of input".into(),
                        ));
                    }
                    other => {
                        return Err(error(
                            close.col,
                            format!("expected &, | or ) but found {other}"),
                        ));
                    }
                }
                self.depth -= 1;
                Ok(e)
            }
            Kind::Word(w, after) => atom(w, after, t.col),
            other => Err(error(
                t.col,
                format!("expected {OPERAND} but found {other}"),
            )),
        }
    }

    /// The canonical text adds spaces around `&` and `|`, so short input can print longer than
    /// the limit and then fail to parse back (`p&p&p...`). Rejects that, pointing at the first
    /// atom that ends past the limit: atoms keep their order in the canonical text.
    fn check_canonical_len(&self, text: &str) -> Result<(), AclError> {
        if text.len() <= MAX_LEN {
            return Ok(());
        }
        let mut offset = 0;
        let mut atoms_within = 0;
        for piece in text.split(|c: char| c == ' ' || is_special(c)) {
            offset += piece.len();
            if !piece.is_empty() {
                if offset > MAX_LEN {
                    break;
                }
                atoms_within += 1;
            }
            offset += 1;
        }
        let mut words = self
            .tokens
            .iter()
            .filter(|t| matches!(t.kind, Kind::Word(..)));
        let col = match words.nth(atoms_within) {
            Some(t) => t.col,
            None => self.peek().col,
        };
        Err(error(
            col,
            format!(
                "expression is {} bytes long in canonical form (with spaces around & and |), \
                 at most {MAX_LEN} are allowed",
                text.len()
            ),
        ))
    }

    fn enter(&mut self, col: usize) -> Result<(), AclError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(
                col,
                format!("expression nests deeper than {MAX_DEPTH} levels of ( and !"),
            ));
        }
        Ok(())
    }
}

fn atom(word: &str, after: Option<char>, col: usize) -> Result<Expr, AclError> {
    if word == "p" {
        return Ok(Expr::Public);
    }
    if let Some(name) = word.strip_prefix("u:") {
        check_name("user", name, after, col + 2)?;
        return Ok(Expr::User(name.to_owned()));
    }
    if let Some(name) = word.strip_prefix("g:") {
        check_name("group", name, after, col + 2)?;
        return Ok(Expr::Group(name.to_owned()));
    }
    Err(error(
        col,
        format!("expected {OPERAND} but found {}", Kind::Word(word, after)),
    ))
}

/// Checks `name` (which starts at column `col` and is followed by `after`) against
/// `[A-Za-z0-9._@-]{1,255}`.
fn check_name(what: &str, name: &str, after: Option<char>, col: usize) -> Result<(), AclError> {
    let rule = "[A-Za-z0-9._@-]{1,255}";
    for (i, c) in name.chars().enumerate() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')) {
            return Err(error(
                col + i,
                format!("{what} name must match {rule} but contains {c:?}"),
            ));
        }
        if i == MAX_NAME {
            return Err(error(
                col + i,
                format!("{what} name must match {rule} but is longer than {MAX_NAME} characters"),
            ));
        }
    }
    if name.is_empty() {
        let message = match after {
            // `u: alice`: the space is where the name should start.
            Some(c) if c.is_whitespace() => {
                format!("{what} name must match {rule} but contains {c:?}")
            }
            Some(c) => format!("{what} name must match {rule} but is empty (found {c})"),
            None => format!("{what} name must match {rule} but is empty (found end of input)"),
        };
        return Err(error(col, message));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn principal(name: &str, groups: &[&str]) -> Principal {
        Principal {
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    fn parse(s: &str) -> Acl {
        Acl::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn allows(s: &str, name: &str, groups: &[&str]) -> bool {
        parse(s).allows(&principal(name, groups))
    }

    #[test]
    fn atoms() {
        assert!(allows("u:alice", "alice", &[]));
        assert!(!allows("u:alice", "bob", &["alice"]));
        assert!(allows("g:ops", "bob", &["dev", "ops"]));
        assert!(!allows("g:ops", "ops", &["dev"]));
        assert!(allows("p", "anyone", &[]));
        assert!(allows("u:a.b_c@d-e.F9", "a.b_c@d-e.F9", &[]));
        assert_eq!(Acl::user("alice"), parse("u:alice"));
        assert!(Acl::user("alice").allows(&principal("alice", &[])));
    }

    #[test]
    fn operators() {
        assert!(allows("!u:a", "b", &[]));
        assert!(!allows("!u:a", "a", &[]));
        assert!(allows("!!u:a", "a", &[]));
        assert!(allows("u:a & g:x", "a", &["x"]));
        assert!(!allows("u:a & g:x", "a", &[]));
        assert!(!allows("u:a & g:x", "b", &["x"]));
        assert!(allows("u:a | g:x", "a", &[]));
        assert!(allows("u:a | g:x", "b", &["x"]));
        assert!(!allows("u:a | g:x", "b", &["y"]));
        assert!(allows("p & !u:mallory", "alice", &[]));
        assert!(!allows("p & !u:mallory", "mallory", &[]));
    }

    #[test]
    fn precedence() {
        // `&` binds tighter than `|`: u:a | (u:b & u:c).
        assert!(allows("u:a | u:b & u:c", "a", &[]));
        assert!(!allows("(u:a | u:b) & u:c", "a", &[]));
        assert_eq!(parse("u:a | u:b & u:c"), parse("u:a | (u:b & u:c)"));
        assert_ne!(parse("u:a | u:b & u:c"), parse("(u:a | u:b) & u:c"));
        // `!` binds tighter than `&`.
        assert_eq!(parse("!u:a & u:b"), parse("(!u:a) & u:b"));
        assert_ne!(parse("!u:a & u:b"), parse("!(u:a & u:b)"));
        // Left-associative.
        assert_eq!(parse("u:a & u:b & u:c"), parse("(u:a & u:b) & u:c"));
        assert_ne!(parse("u:a & u:b & u:c"), parse("u:a & (u:b & u:c)"));
        assert_eq!(parse("u:a | u:b | u:c"), parse("(u:a | u:b) | u:c"));
    }

    #[test]
    fn canonical_text() {
        let cases = [
            ("u:alice|g:ops&!u:mallory", "u:alice | g:ops & !u:mallory"),
            ("((u:a | u:b)) & u:c", "(u:a | u:b) & u:c"),
            ("(u:a & u:b) & u:c", "u:a & u:b & u:c"),
            ("u:a & (u:b & u:c)", "u:a & (u:b & u:c)"),
            ("u:a | (u:b | u:c)", "u:a | (u:b | u:c)"),
            ("(u:a & u:b) | u:c", "u:a & u:b | u:c"),
            ("! ( u:a | p )", "!(u:a | p)"),
            ("!(!u:a)", "!!u:a"),
            ("(((p)))", "p"),
            ("  ", ""),
        ];
        for (input, canonical) in cases {
            let acl = parse(input);
            assert_eq!(acl.to_string(), canonical, "{input:?}");
            assert_eq!(parse(canonical), acl, "{input:?}");
        }
    }

    #[test]
    fn empty_is_nobody() {
        for s in ["", " ", "\t\n  \r\n"] {
            let acl = parse(s);
            assert_eq!(acl, Acl::nobody());
            assert!(!acl.allows(&principal("alice", &["ops"])));
            assert_eq!(acl.to_string(), "");
        }
        assert_eq!(serde_json::to_string(&Acl::nobody()).unwrap(), r#""""#);
        assert_eq!(serde_json::from_str::<Acl>(r#""""#).unwrap(), Acl::nobody());
    }

    #[test]
    fn whitespace_is_ignored() {
        let tight = parse("!u:a&(g:x|p)");
        for s in [
            " ! u:a & ( g:x | p ) ",
            "!u:a\t&\n(g:x\r\n|p)",
            "\u{a0}!\u{2003}u:a&(g:x|p)\u{3000}",
        ] {
            assert_eq!(parse(s), tight, "{s:?}");
        }
    }

    #[test]
    fn bad_inputs_name_their_column() {
        let long_name = format!("u:{}", "a".repeat(256));
        let deep_parens = format!("{}p{}", "(".repeat(65), ")".repeat(65));
        let deep_nots = format!("{}p", "!".repeat(65));
        let mixed = format!("{}p{}", "!(".repeat(33), ")".repeat(33));
        let too_long = "p | ".repeat(1025);
        let too_long_wide = "é".repeat(2049);
        let name = "[A-Za-z0-9._@-]{1,255}";
        let operand = "expected u:NAME, g:NAME, p, ! or (";
        let cases: Vec<(&str, usize, String)> = vec![
            ("&", 1, format!("{operand} but found &")),
            ("u:alice&&p", 9, format!("{operand} but found &")),
            ("u:alice | | p", 11, format!("{operand} but found |")),
            ("u:a |", 6, format!("{operand} but found end of input")),
            ("!", 2, format!("{operand} but found end of input")),
            ("()", 2, format!("{operand} but found )")),
            ("x", 1, format!("{operand} but found x")),
            ("pp", 1, format!("{operand} but found pp")),
            ("P", 1, format!("{operand} but found P")),
            ("user:alice", 1, format!("{operand} but found user:alice")),
            (
                "u:a | aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                7,
                format!("{operand} but found aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa..."),
            ),
            (
                "(u:a",
                1,
                "unclosed (: expected ) but found end of input".into(),
            ),
            (
                "p & ((u:a)",
                5,
                "unclosed (: expected ) but found end of input".into(),
            ),
            ("(u:a | u:b))", 12, "unexpected ) with no matching (".into()),
            (")", 1, format!("{operand} but found )")),
            ("u:a)", 4, "unexpected ) with no matching (".into()),
            (
                "u:a u:b",
                5,
                "expected &, | or end of input but found u:b".into(),
            ),
            ("p!", 2, "expected &, | or end of input but found !".into()),
            ("p(", 2, "expected &, | or end of input but found (".into()),
            ("(u:a u:b)", 6, "expected &, | or ) but found u:b".into()),
            (
                "u: x",
                3,
                format!("user name must match {name} but contains ' '"),
            ),
            (
                "g:\tx",
                3,
                format!("group name must match {name} but contains '\\t'"),
            ),
            (
                "u:",
                3,
                format!("user name must match {name} but is empty (found end of input)"),
            ),
            (
                "g:&p",
                3,
                format!("group name must match {name} but is empty (found &)"),
            ),
            (
                "u:a$b",
                4,
                format!("user name must match {name} but contains '$'"),
            ),
            (
                "p | u:café",
                10,
                format!("user name must match {name} but contains 'é'"),
            ),
            (
                "g:a:b",
                4,
                format!("group name must match {name} but contains ':'"),
            ),
            (
                &long_name,
                258,
                format!("user name must match {name} but is longer than 255 characters"),
            ),
            (
                &deep_parens,
                65,
                "expression nests deeper than 64 levels of ( and !".into(),
            ),
            (
                &deep_nots,
                65,
                "expression nests deeper than 64 levels of ( and !".into(),
            ),
            (
                &mixed,
                65,
                "expression nests deeper than 64 levels of ( and !".into(),
            ),
            (
                &too_long,
                4097,
                "expression is 4100 bytes long, at most 4096 are allowed".into(),
            ),
            (
                &too_long_wide,
                2049,
                "expression is 4098 bytes long, at most 4096 are allowed".into(),
            ),
        ];
        for (input, column, message) in cases {
            let got = Acl::parse(input).expect_err(input);
            assert_eq!(got, AclError { column, message }, "{input:?}");
        }
        assert_eq!(
            Acl::parse("u:alice & ").unwrap_err().to_string(),
            "column 11: expected u:NAME, g:NAME, p, ! or ( but found end of input"
        );
    }

    #[test]
    fn limits_are_inclusive() {
        let name = "a".repeat(255);
        assert!(allows(&format!("u:{name}"), &name, &[]));
        assert!(allows(
            &format!("{}p{}", "(".repeat(64), ")".repeat(64)),
            "a",
            &[]
        ));
        assert!(allows(&format!("{}p", "!".repeat(64)), "a", &[]));
        // 64 levels in each of many sibling groups is fine: depth, not count, is limited.
        let deep = format!("{}p{}", "(".repeat(64), ")".repeat(64));
        parse(&[deep.as_str(); 3].join(" & "));
        // The longest chain fits in 4096 bytes in canonical form, and is evaluated, printed
        // and compared (recursively, 1023 levels deep).
        let spaced = format!("{}p", "p & ".repeat(1023));
        assert_eq!(spaced.len(), 4093);
        let acl = parse(&spaced);
        assert!(acl.allows(&principal("a", &[])));
        assert_eq!(acl.to_string(), spaced);
        assert_eq!(parse(&format!("{}p", "p&".repeat(1023))), acl);
        let mut nots = format!("{}p", "!".repeat(64));
        nots = [nots.as_str(); 60].join("|");
        assert!(nots.len() <= MAX_LEN);
        assert_eq!(parse(&parse(&nots).to_string()), parse(&nots));
    }

    #[test]
    fn canonical_form_must_fit_too() {
        // 4095 bytes of input, but 8189 once printed with spaces: atom 1025 ends past 4096.
        let chain = format!("{}p", "p&".repeat(2047));
        assert_eq!(chain.len(), 4095);
        let err = Acl::parse(&chain).unwrap_err();
        assert_eq!(err.column, 2 * 1024 + 1, "{err}");
        assert_eq!(
            err.message,
            "expression is 8189 bytes long in canonical form (with spaces around & and |), \
             at most 4096 are allowed"
        );
        // Exactly at the limit once printed: accepted.
        let chain = format!("{}p", "p&".repeat(1023));
        assert_eq!(parse(&chain).to_string().len(), 4093);
        let fits = format!("{}u:ab", "p&".repeat(1023));
        assert_eq!(parse(&fits).to_string().len(), 4096);
        let over = format!("{}u:abc", "p&".repeat(1023));
        assert_eq!(Acl::parse(&over).unwrap_err().column, 2047);
    }

    #[test]
    #[should_panic(expected = "contains ' '")]
    fn user_rejects_bad_names() {
        Acl::user("alice smith");
    }

    #[test]
    fn serde_uses_the_canonical_text() {
        let acl = parse("u:alice|(g:ops&!u:mallory)");
        let json = serde_json::to_string(&acl).unwrap();
        assert_eq!(json, r#""u:alice | g:ops & !u:mallory""#);
        assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), acl);
        let err = serde_json::from_str::<Acl>(r#""u:alice &""#).unwrap_err();
        assert!(err.to_string().starts_with("column 10: expected"), "{err}");
    }

    #[test]
    fn deep_and_long_garbage_is_an_error() {
        for unit in ["(", "!", ")", "&", "!(", "u:", "é", "(p"] {
            for n in [65, 2000, 4096, 10_000] {
                let s = unit.repeat(n);
                if let Err(e) = Acl::parse(&s) {
                    assert!((1..=s.chars().count() + 1).contains(&e.column), "{e}");
                }
            }
        }
        assert!(Acl::parse(&"(".repeat(10_000)).is_err());
        assert!(Acl::parse(&"!".repeat(10_000)).is_err());
        assert!(Acl::parse(&format!("{}p", "!".repeat(4000))).is_err());
    }

    // --- model-based property tests -------------------------------------------------------

    const USERS: [&str; 3] = ["a", "b", "c"];
    const GROUPS: [&str; 2] = ["x", "y"];

    /// Random syntax trees over users a, b, c, groups x, y and `p`.
    fn expr() -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            Just(Expr::Public),
            prop::sample::select(&USERS[..]).prop_map(|u| Expr::User(u.to_owned())),
            prop::sample::select(&GROUPS[..]).prop_map(|g| Expr::Group(g.to_owned())),
        ];
        leaf.prop_recursive(6, 40, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(l, r)| Expr::And(Box::new(l), Box::new(r))),
                (inner.clone(), inner).prop_map(|(l, r)| Expr::Or(Box::new(l), Box::new(r))),
            ]
        })
    }

    /// The model: evaluates the tree directly.
    fn eval(e: &Expr, user: &str, groups: &[&str]) -> bool {
        match e {
            Expr::Public => true,
            Expr::User(u) => u == user,
            Expr::Group(g) => groups.contains(&g.as_str()),
            Expr::Not(e) => !eval(e, user, groups),
            Expr::And(l, r) => eval(l, user, groups) && eval(r, user, groups),
            Expr::Or(l, r) => eval(l, user, groups) || eval(r, user, groups),
        }
    }

    /// Every user of the universe (and one outsider) with every subset of its groups.
    fn universe() -> Vec<(&'static str, Vec<&'static str>)> {
        let subsets: [&[&str]; 4] = [&[], &["x"], &["y"], &["x", "y"]];
        let mut all = Vec::new();
        for user in USERS.iter().chain(&["z"]) {
            for groups in subsets {
                all.push((*user, groups.to_vec()));
            }
        }
        all
    }

    /// Random choices for the renderer; cycles, and is all zeros when empty.
    struct Noise {
        bytes: Vec<u8>,
        i: usize,
    }

    impl Noise {
        fn next(&mut self) -> u8 {
            let b = self.bytes.get(self.i % self.bytes.len().max(1));
            self.i += 1;
            b.copied().unwrap_or(0)
        }

        fn space(&mut self, out: &mut String) {
            let spaces = ["", "", " ", "  ", "\t", "\n", " \r\n "];
            out.push_str(spaces[usize::from(self.next()) % spaces.len()]);
        }
    }

    /// Renders `e` independently of `Display`: parentheses where precedence needs them, plus
    /// random redundant ones, and random whitespace between tokens.
    fn render(e: &Expr, min: u8, noise: &mut Noise, out: &mut String) {
        let prec = match e {
            Expr::Or(..) => 1,
            Expr::And(..) => 2,
            _ => 3,
        };
        let parens = prec < min || noise.next() < 64;
        if parens {
            out.push('(');
            noise.space(out);
        }
        match e {
            Expr::Public => out.push('p'),
            Expr::User(u) => out.push_str(&format!("u:{u}")),
            Expr::Group(g) => out.push_str(&format!("g:{g}")),
            Expr::Not(e) => {
                out.push('!');
                noise.space(out);
                render(e, 3, noise, out);
            }
            Expr::And(l, r) | Expr::Or(l, r) => {
                render(l, prec, noise, out);
                noise.space(out);
                out.push(if prec == 2 { '&' } else { '|' });
                noise.space(out);
                render(r, prec + 1, noise, out);
            }
        }
        if parens {
            noise.space(out);
            out.push(')');
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn allows_matches_the_truth_table(
            e in expr(),
            noise in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut text = String::new();
            let mut noise = Noise { bytes: noise, i: 0 };
            noise.space(&mut text);
            render(&e, 1, &mut noise, &mut text);
            noise.space(&mut text);
            let acl = Acl::parse(&text)
                .map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
            prop_assert_eq!(&acl, &Acl { expr: Some(e.clone()) }, "{:?}", text);
            for (user, groups) in universe() {
                prop_assert_eq!(
                    acl.allows(&principal(user, &groups)),
                    eval(&e, user, &groups),
                    "{:?} for {} in {:?}", text, user, groups
                );
            }
        }

        #[test]
        fn canonical_text_round_trips(e in expr()) {
            let acl = Acl { expr: Some(e) };
            let text = acl.to_string();
            prop_assert_eq!(&Acl::parse(&text).unwrap(), &acl, "{:?}", text);
            prop_assert!(!text.contains("  ") && !text.starts_with(' ') && !text.ends_with(' '));
            let json = serde_json::to_string(&acl).unwrap();
            prop_assert_eq!(serde_json::from_str::<Acl>(&json).unwrap(), acl);
        }

        #[test]
        fn arbitrary_text_never_panics(s in prop_oneof![
            any::<String>(),
            "[ \tupgxab:!&|()é$]{0,80}",
            ("[(!]{0,100}", "[ upgxab:!&|()]{0,10}", "[)]{0,100}")
                .prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        ]) {
            match Acl::parse(&s) {
                Ok(acl) => {
                    prop_assert_eq!(Acl::parse(&acl.to_string()).unwrap(), acl.clone());
                    for (user, groups) in universe() {
                        acl.allows(&principal(user, &groups));
                    }
                }
                Err(e) => {
                    prop_assert!((1..=s.chars().count() + 1).contains(&e.column), "{}", e);
                    let prefix = format!("column {}: ", e.column);
                    prop_assert!(e.to_string().starts_with(&prefix));
                }
            }
        }
    }
}
