//! Who may hear a topic, and who may broadcast to one: patterns that may name the verified
//! token's claims (`[topics]` in the project file, `TOPICS_SUBSCRIBE` / `TOPICS_PUBLISH` in
//! the function's environment).
//!
//! A pattern is matched against a topic byte for byte (no case folding, no Unicode
//! normalisation):
//! - `*` matches one or more characters, any characters (`status:*` matches `status:eu` and
//!   `status:eu:west`, not `status:`);
//! - `{sub}` is the token's subject and `{claims.NAME}` its claim `NAME` (the rest of the name
//!   up to `}`, so `{claims.https://example.com/org}` works): replaced by the claim's value,
//!   which is then matched *literally*. A value of `*`, `bob:*` or `..`, or one holding the
//!   pattern's separators or `{`, never widens what the pattern allows. A claim that is
//!   missing, or is not a string or a number, makes the pattern match nothing;
//! - `\*`, `\{`, `\}` and `\\` are the characters themselves; anything else is itself.
//!
//! A topic is allowed when any pattern of the list matches it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A placeholder's claim.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Claim {
    /// `{sub}`: the token's subject.
    Sub,
    /// `{claims.NAME}`.
    Named(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Claim(Claim),
    /// `*`: one or more characters.
    Any,
}

/// One pattern, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    parts: Vec<Part>,
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("a pattern must not be empty")]
    Empty,
    #[error("{0:?} is longer than 512 bytes")]
    TooLong(String),
    #[error("{0:?} holds a control character")]
    Control(String),
    #[error("{0:?} has a `{{` without its `}}`")]
    Unclosed(String),
    #[error("{0:?} has a `}}` without its `{{` (write `\\}}` for the character)")]
    Unopened(String),
    #[error("{pattern:?}: unknown placeholder {{{name}}}: use {{sub}} or {{claims.NAME}}")]
    Placeholder { pattern: String, name: String },
    #[error("{0:?}: `**` is one `*` (it matches one or more characters of any kind)")]
    DoubleWildcard(String),
    #[error("{0:?}: `\\` escapes only `*`, `{{`, `}}` and `\\`")]
    Escape(String),
    #[error("{0:?}: a placeholder right after `*` (or two side by side) cannot tell where the claim starts")]
    Ambiguous(String),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let owned = || text.to_owned();
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > 512 {
            return Err(PatternError::TooLong(owned()));
        }
        if text.chars().any(char::is_control) {
            return Err(PatternError::Control(owned()));
        }
        let mut parts: Vec<Part> = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        let flush = |literal: &mut String, parts: &mut Vec<Part>| {
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(literal)));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '{' | '}' | '\\')) => literal.push(e),
                    _ => return Err(PatternError::Escape(owned())),
                },
                '*' => {
                    flush(&mut literal, &mut parts);
                    if matches!(parts.last(), Some(Part::Any)) {
                        return Err(PatternError::DoubleWildcard(owned()));
                    }
                    parts.push(Part::Any);
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            None => return Err(PatternError::Unclosed(owned())),
                            Some('}') => break,
                            Some('{') => return Err(PatternError::Unclosed(owned())),
                            Some(n) => name.push(n),
                        }
                    }
                    let claim = match name.as_str() {
                        "sub" => Claim::Sub,
                        n => match n.strip_prefix("claims.") {
                            Some(claim) if !claim.is_empty() => Claim::Named(claim.to_owned()),
                            _ => {
                                return Err(PatternError::Placeholder {
                                    pattern: owned(),
                                    name,
                                })
                            }
                        },
                    };
                    flush(&mut literal, &mut parts);
                    if matches!(parts.last(), Some(Part::Any | Part::Claim(_))) {
                        return Err(PatternError::Ambiguous(owned()));
                    }
                    parts.push(Part::Claim(claim));
                }
                '}' => return Err(PatternError::Unopened(owned())),
                c => literal.push(c),
            }
        }
        flush(&mut literal, &mut parts);
        if parts
            .windows(2)
            .any(|w| matches!(w, [Part::Claim(_), Part::Any]))
        {
            return Err(PatternError::Ambiguous(owned()));
        }
        Ok(Pattern {
            text: text.to_owned(),
            parts,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The claims its placeholders name.
    pub fn claims(&self) -> impl Iterator<Item = &Claim> {
        self.parts.iter().filter_map(|p| match p {
            Part::Claim(c) => Some(c),
            _ => None,
        })
    }

    /// Whether `topic` matches, with each placeholder replaced by `who`'s claim, literally.
    pub fn matches(&self, topic: &str, who: &Identity) -> bool {
        let mut resolved: Vec<Token> = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            resolved.push(match p {
                Part::Literal(l) => Token::Bytes(l.as_bytes()),
                Part::Any => Token::Any,
                Part::Claim(c) => match who.claim(c) {
                    Some(value) => Token::Bytes(value.as_bytes()),
                    None => return false,
                },
            });
        }
        glob(&resolved, topic.as_bytes())
    }
}

/// What a pattern becomes once its claims are known.
#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    Bytes(&'a [u8]),
    Any,
}

/// Whether `tokens` match all of `topic`: literal bytes exactly, `Any` one or more bytes.
/// Dynamic programming over (token, position): linear in their product.
fn glob(tokens: &[Token], topic: &[u8]) -> bool {
    // reach[i]: the tokens seen so far can end at topic position i.
    let mut reach = vec![false; topic.len() + 1];
    reach[0] = true;
    for token in tokens {
        let mut next = vec![false; topic.len() + 1];
        match token {
            Token::Bytes(b) => {
                for i in 0..=topic.len() {
                    if reach[i] && topic[i..].starts_with(b) {
                        next[i + b.len()] = true;
                    }
                }
            }
            Token::Any => {
                let mut seen = false;
                for i in 0..=topic.len() {
                    if seen {
                        next[i] = true;
                    }
                    seen |= reach[i];
                }
            }
        }
        reach = next;
    }
    reach[topic.len()]
}

/// Who a connection is: the token's subject and the claims the rules name (strings, and
/// numbers as their decimal text).
#[derive(Debug, Clone, Copy, Default)]
pub struct Identity<'a> {
    pub sub: Option<&'a str>,
    pub claims: Option<&'a BTreeMap<String, String>>,
}

impl<'a> Identity<'a> {
    fn claim(&self, c: &Claim) -> Option<&'a str> {
        match c {
            Claim::Sub => self.sub,
            Claim::Named(name) => self.claims?.get(name).map(String::as_str),
        }
        // An empty value is no value: `org:{claims.org}:*` must not open `org::x` to every
        // token without an organisation.
        .filter(|v| !v.is_empty())
    }
}

/// What a client asks to do with a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Subscribe,
    Publish,
}

impl Verb {
    /// The client's `action` it answers (`subscribe`, `broadcast`).
    pub fn action(self) -> &'static str {
        match self {
            Verb::Subscribe => "subscribe",
            Verb::Publish => "broadcast",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Subscribe => "subscribe to",
            Verb::Publish => "broadcast to",
        }
    }
}

/// What clients may do with topics on a stack: every topic when it has neither rules nor
/// sign-in (a local or demo stack, as before rules existed); none when it has sign-in but no
/// rules (closed by default: any signed-in user must not hear any topic); what the rules
/// allow otherwise. Backends are not bound by any of this.
#[derive(Debug, Clone, Copy)]
pub enum Policy<'a> {
    Open,
    Closed,
    Rules(&'a Rules),
}

impl<'a> Policy<'a> {
    pub fn of(rules: Option<&'a Rules>, signed_in: bool) -> Policy<'a> {
        match (rules, signed_in) {
            (Some(rules), _) => Policy::Rules(rules),
            (None, false) => Policy::Open,
            (None, true) => Policy::Closed,
        }
    }

    /// Whether checking needs the connection's subject and claims (its row).
    pub fn needs_identity(&self) -> bool {
        matches!(self, Policy::Rules(r) if r.uses_claims())
    }

    pub fn allows(&self, verb: Verb, topic: &str, who: &Identity) -> bool {
        match (self, verb) {
            (Policy::Open, _) => true,
            (Policy::Closed, _) => false,
            (Policy::Rules(r), Verb::Subscribe) => r.may_subscribe(topic, who),
            (Policy::Rules(r), Verb::Publish) => r.may_publish(topic, who),
        }
    }

    /// Whether a client may broadcast to every connection (no topic): only on an open stack.
    pub fn allows_untopiced(&self) -> bool {
        matches!(self, Policy::Open)
    }
}

/// The claim values a connection keeps: of `claims` (a verified token's), those `names` asks
/// for that are strings or numbers, as text. Nothing else of the token is kept.
pub fn keep_claims(
    claims: &serde_json::Map<String, serde_json::Value>,
    names: &BTreeSet<String>,
) -> BTreeMap<String, String> {
    names
        .iter()
        .filter_map(|name| {
            let text = match claims.get(name)? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name.clone(), text))
        })
        .collect()
}

/// `[topics]`: which topics a client may subscribe to, and broadcast to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub subscribe: Vec<Pattern>,
    pub publish: Vec<Pattern>,
}

impl Rules {
    /// Parses both lists.
    pub fn parse(subscribe: &[String], publish: &[String]) -> Result<Rules, PatternError> {
        let all = |list: &[String]| {
            list.iter()
                .map(|p| Pattern::parse(p))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Rules {
            subscribe: all(subscribe)?,
            publish: all(publish)?,
        })
    }

    pub fn may_subscribe(&self, topic: &str, who: &Identity) -> bool {
        self.subscribe.iter().any(|p| p.matches(topic, who))
    }

    pub fn may_publish(&self, topic: &str, who: &Identity) -> bool {
        self.publish.iter().any(|p| p.matches(topic, who))
    }

    /// The claims (besides `sub`) any pattern names: what a connection keeps of its token.
    pub fn claim_names(&self) -> BTreeSet<String> {
        self.subscribe
            .iter()
            .chain(&self.publish)
            .flat_map(Pattern::claims)
            .filter_map(|c| match c {
                Claim::Named(n) => Some(n.clone()),
                Claim::Sub => None,
            })
            .collect()
    }

    /// Whether a pattern names a claim (a connection's row must then be read to check it).
    pub fn uses_claims(&self) -> bool {
        self.subscribe
            .iter()
            .chain(&self.publish)
            .any(|p| p.claims().next().is_some())
    }

    /// Whether every signed-in client may subscribe to every topic (a lone `*`).
    pub fn open_to_all(&self) -> bool {
        self.subscribe.iter().any(|p| p.parts == [Part::Any])
    }

    /// The patterns as written.
    pub fn texts(list: &[Pattern]) -> Vec<String> {
        list.iter().map(|p| p.text.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn who<'a>(sub: &'a str, claims: &'a BTreeMap<String, String>) -> Identity<'a> {
        Identity {
            sub: Some(sub),
            claims: Some(claims),
        }
    }

    #[test]
    fn patterns_with_claims_allow_the_caller_its_own_topics_only() {
        let rules = Rules::parse(
            &[
                "news".into(),
                "status:*".into(),
                "user:{sub}".into(),
                "org:{claims.org_id}:*".into(),
            ],
            &[],
        )
        .unwrap();
        let claims = BTreeMap::from([("org_id".to_owned(), "acme".to_owned())]);
        let alice = who("alice", &claims);
        for ok in [
            "news",
            "status:eu",
            "status:eu:west",
            "user:alice",
            "org:acme:x",
        ] {
            assert!(rules.may_subscribe(ok, &alice), "{ok}");
        }
        for no in [
            "News",
            "status:",
            "user:bob",
            "user:alice:x",
            "org:other:x",
            "org:acme:",
            "org:acme",
        ] {
            assert!(!rules.may_subscribe(no, &alice), "{no}");
        }
        assert_eq!(rules.claim_names(), BTreeSet::from(["org_id".to_owned()]));
    }

    #[test]
    fn hostile_claim_values_never_widen_a_pattern() {
        let rules = Rules::parse(&["user:{sub}".into(), "org:{claims.org}:x".into()], &[]).unwrap();
        for sub in ["*", "bob:*", "..", "{sub}", "\\*", "a*b"] {
            let claims = BTreeMap::from([("org".to_owned(), "*".to_owned())]);
            let hostile = who(sub, &claims);
            assert!(
                rules.may_subscribe(&format!("user:{sub}"), &hostile),
                "{sub}"
            );
            for other in ["user:bob", "user:bob:x", "user:", "user:..", "org:acme:x"] {
                if other != format!("user:{sub}") {
                    assert!(
                        !rules.may_subscribe(other, &hostile),
                        "{sub} opened {other}"
                    );
                }
            }
            assert!(rules.may_subscribe("org:*:x", &hostile));
        }
    }

    #[test]
    fn a_missing_or_structured_claim_matches_nothing() {
        let rules = Rules::parse(&["org:{claims.org}".into()], &[]).unwrap();
        let none = BTreeMap::new();
        assert!(!rules.may_subscribe("org:", &who("a", &none)));
        let token = serde_json::json!({"org": ["acme"], "level": 3, "ok": true, "name": "x"});
        let kept = keep_claims(
            token.as_object().unwrap(),
            &["org", "level", "ok", "name", "absent"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
        assert_eq!(
            kept,
            BTreeMap::from([
                ("level".to_owned(), "3".to_owned()),
                ("name".to_owned(), "x".to_owned())
            ])
        );
        assert!(!rules.may_subscribe("org:[\"acme\"]", &who("a", &kept)));
        let anonymous = Identity::default();
        assert!(!Rules::parse(&["user:{sub}".into()], &[])
            .unwrap()
            .may_subscribe("user:", &anonymous));
    }

    #[test]
    fn bad_patterns_are_refused_with_the_reason() {
        let bad = [
            ("", "empty"),
            ("user:{sub", "without its"),
            ("user:sub}", "without its"),
            ("user:{name}", "unknown placeholder {name}"),
            ("user:{claims.}", "unknown placeholder"),
            ("a**", "`**`"),
            ("a\\b", "escapes only"),
            ("*{sub}", "cannot tell"),
            ("{sub}{claims.org}", "cannot tell"),
            ("{sub}*", "cannot tell"),
            ("a\tb", "control"),
        ];
        for (pattern, why) in bad {
            let e = Pattern::parse(pattern).unwrap_err();
            assert!(e.to_string().contains(why), "{pattern:?}: {e}");
        }
        assert!(Pattern::parse("\\*\\{\\}\\\\")
            .unwrap()
            .matches("*{}\\", &Identity::default()));
        assert!(Pattern::parse("{claims.https://example.com/org}:x").is_ok());
    }

    /// A reference: the pattern with its placeholders written out as escaped literals, then
    /// matched by a plain recursive glob over characters.
    fn reference(
        pattern: &str,
        sub: Option<&str>,
        claims: &BTreeMap<String, String>,
        topic: &str,
    ) -> bool {
        let Ok(p) = Pattern::parse(pattern) else {
            return false;
        };
        // Build the literal-or-any sequence by hand, independently of `matches`.
        let mut seq: Vec<Option<char>> = Vec::new(); // None = `*`
        for part in &p.parts {
            match part {
                Part::Literal(l) => seq.extend(l.chars().map(Some)),
                Part::Any => seq.push(None),
                Part::Claim(Claim::Sub) => match sub {
                    Some(s) if !s.is_empty() => seq.extend(s.chars().map(Some)),
                    _ => return false,
                },
                Part::Claim(Claim::Named(n)) => match claims.get(n) {
                    Some(v) if !v.is_empty() => seq.extend(v.chars().map(Some)),
                    _ => return false,
                },
            }
        }
        fn go(seq: &[Option<char>], t: &[char]) -> bool {
            match seq.split_first() {
                None => t.is_empty(),
                Some((Some(c), rest)) => t.first() == Some(c) && go(rest, &t[1..]),
                Some((None, rest)) => (1..=t.len()).any(|n| go(rest, &t[n..])),
            }
        }
        go(&seq, &topic.chars().collect::<Vec<_>>())
    }

    fn piece() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "user:",
            "org:",
            ":",
            "*",
            "a",
            "b",
            "{sub}",
            "{claims.org}",
            "\\*",
            "x:y",
            "é",
        ])
        .prop_map(str::to_owned)
    }

    fn value() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "alice", "bob", "*", "bob:*", "..", "{sub}", "a:b", "", "é*",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// A topic is allowed exactly when some pattern matches it with every placeholder
        /// replaced by the claim's literal value.
        #[test]
        fn a_topic_is_allowed_only_by_a_pattern_with_its_claims_written_out(
            patterns in prop::collection::vec(prop::collection::vec(piece(), 1..5).prop_map(|p| p.concat()), 1..4),
            sub in prop::option::of(value()),
            org in prop::option::of(value()),
            topic_parts in prop::collection::vec(prop::sample::select(vec!["user:", "org:", ":", "alice", "bob", "*", "a", "b", "x:y", "..", "é", "{sub}", "\\"]), 0..6),
        ) {
            let topic = topic_parts.concat();
            let claims: BTreeMap<String, String> = org.iter().map(|o| ("org".to_owned(), o.clone())).collect();
            let identity = Identity { sub: sub.as_deref(), claims: Some(&claims) };
            let parsed: Vec<Pattern> = patterns.iter().filter_map(|p| Pattern::parse(p).ok()).collect();
            let rules = Rules { subscribe: parsed.clone(), publish: vec![] };
            let want = parsed
                .iter()
                .any(|p| reference(p.as_str(), sub.as_deref(), &claims, &topic));
            prop_assert_eq!(rules.may_subscribe(&topic, &identity), want);
        }
    }
}
