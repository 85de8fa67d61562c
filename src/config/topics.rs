//! `[topics]`: which topics a client may subscribe and broadcast to (patterns that may name the
//! verified token's claims, [`handler::topics`]); and what a stack's clients may do with topics,
//! in words, for `up` and `status` ([`TopicAccess`]).

use handler::topics::{Pattern, Rules};
use serde::Serialize;
use toml::Spanned;

use super::checker::Checker;
use super::raw::RawTopics;
use super::ConfigError;

/// The room the two lists may take in the function's environment (Lambda allows 4 KB for
/// every variable together; the rest of wsctl's take well under half).
pub const MAX_RULES_BYTES: usize = 2048;

/// `[topics]`, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicsConfig {
    pub subscribe: Vec<String>,
    pub publish: Vec<String>,
    #[serde(skip)]
    pub rules: Rules,
}

pub(super) fn check_topics(
    c: &Checker<'_>,
    raw: Option<&Spanned<RawTopics>>,
    signed_in: bool,
    client_broadcast: bool,
) -> Result<Option<TopicsConfig>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let t = raw.get_ref();
    let list = |key: &str, l: &Option<Spanned<Vec<Spanned<String>>>>| {
        let mut out = Vec::new();
        for p in l.iter().flat_map(|l| l.get_ref()) {
            let pattern =
                Pattern::parse(p.get_ref()).map_err(|e| c.invalid(key, p.span(), e.to_string()))?;
            if !signed_in && pattern.claims().next().is_some() {
                return Err(c.invalid(
                    key,
                    p.span(),
                    format!(
                        "{:?} names a claim, and without [auth] no client has one: add [auth], or drop the placeholder",
                        p.get_ref()
                    ),
                ));
            }
            out.push(pattern);
        }
        Ok(out)
    };
    let subscribe = list("topics.subscribe", &t.subscribe)?;
    let publish = list("topics.publish", &t.publish)?;
    if let (false, Some(p)) = (client_broadcast, &t.publish) {
        if !p.get_ref().is_empty() {
            return Err(c.invalid(
                "topics.publish",
                p.span(),
                "has no effect without [function] allow_client_broadcast = true",
            ));
        }
    }
    let rules = Rules { subscribe, publish };
    let texts = |l: &[Pattern]| Rules::texts(l);
    let size = serde_json::to_string(&texts(&rules.subscribe)).map_or(0, |s| s.len())
        + serde_json::to_string(&texts(&rules.publish)).map_or(0, |s| s.len());
    if size > MAX_RULES_BYTES {
        return Err(c.invalid(
            "topics",
            raw.span(),
            format!(
                "the patterns take {size} bytes in the function's environment; at most {MAX_RULES_BYTES} fit (Lambda allows 4 KB for all variables): use wildcards and claims instead of listing topics"
            ),
        ));
    }
    Ok(Some(TopicsConfig {
        subscribe: texts(&rules.subscribe),
        publish: texts(&rules.publish),
        rules,
    }))
}

/// What a stack's clients may do with topics, for `up` and `status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicAccess {
    /// `open` (no `[auth]`, no `[topics]`: every client, every topic), `closed` (`[auth]`
    /// without `[topics]`: clients may subscribe to nothing), or `rules`.
    pub access: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subscribe: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<String>,
    /// Said loudly: topics any client may hear.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl TopicAccess {
    pub fn of(topics: Option<&TopicsConfig>, signed_in: bool, client_broadcast: bool) -> Self {
        let publish = |t: &TopicsConfig| {
            if client_broadcast {
                t.publish.clone()
            } else {
                Vec::new()
            }
        };
        match (topics, signed_in) {
            (None, false) => TopicAccess {
                access: "open",
                subscribe: Vec::new(),
                publish: Vec::new(),
                warning: Some(
                    "topics are open: without [auth], any client may subscribe to any topic".into(),
                ),
            },
            (None, true) => TopicAccess {
                access: "closed",
                subscribe: Vec::new(),
                publish: Vec::new(),
                warning: None,
            },
            (Some(t), signed_in) => TopicAccess {
                access: "rules",
                subscribe: t.subscribe.clone(),
                publish: publish(t),
                warning: t.rules.open_to_all().then(|| {
                    let who = if signed_in { "signed-in client" } else { "client" };
                    format!("topics are open: [topics] subscribe = [\"*\"] lets every {who} subscribe to every topic")
                }),
            },
        }
    }
}

impl std::fmt::Display for TopicAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |l: &[String]| {
            if l.is_empty() {
                "nothing".to_owned()
            } else {
                l.join(", ")
            }
        };
        match self.access {
            "open" => write!(f, "any client may subscribe to any topic")?,
            "closed" => write!(
                f,
                "clients may subscribe to nothing ([auth] without [topics]); backends subscribe them"
            )?,
            _ => write!(
                f,
                "clients may subscribe to {}; broadcast to {}",
                list(&self.subscribe),
                list(&self.publish)
            )?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn load(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("wsctl.toml"), text).map_err(|e| e.to_string())
    }

    const AUTH: &str = "[auth]\nsecret_parameter = \"/demo/jwt\"\n";

    #[test]
    fn a_bad_pattern_is_refused_with_its_line_and_the_reason() {
        let cases = [
            (
                "[topics]\nsubscribe = [\n  \"news\",\n  \"user:{name}\",\n]\n",
                "wsctl.toml:5: topics.subscribe: \"user:{name}\": unknown placeholder {name}",
            ),
            (
                "[topics]\nsubscribe = [\"user:{sub\"]\n",
                "wsctl.toml:3: topics.subscribe",
            ),
            (
                "[topics]\nsubscribe = [\"user:{sub}\"]\n",
                "names a claim, and without [auth] no client has one",
            ),
            (
                "[topics]\npublish = [\"chat\"]\n",
                "topics.publish: has no effect without [function] allow_client_broadcast = true",
            ),
        ];
        for (text, want) in cases {
            let e = load(&format!("project = \"demo\"\n{text}")).unwrap_err();
            assert!(e.contains(want), "{e}\n  wanted {want}");
        }
        let long: Vec<String> = (0..200).map(|i| format!("\"topic-number-{i}\"")).collect();
        let e = load(&format!(
            "project = \"demo\"\n[topics]\nsubscribe = [{}]\n",
            long.join(", ")
        ))
        .unwrap_err();
        assert!(e.contains("at most 2048 fit"), "{e}");
    }

    #[test]
    fn access_says_what_clients_may_do() {
        let open = load("project = \"demo\"\n").unwrap();
        assert_eq!(open.topic_access().access, "open");
        assert!(open.topic_access().warning.is_some());
        let closed = load(&format!("project = \"demo\"\n{AUTH}")).unwrap();
        assert_eq!(closed.topic_access().access, "closed");
        assert_eq!(closed.topic_access().warning, None);
        let ruled = load(&format!(
            "project = \"demo\"\n{AUTH}[topics]\nsubscribe = [\"news\", \"user:{{sub}}\"]\n"
        ))
        .unwrap();
        let access = ruled.topic_access();
        assert_eq!((access.access, access.subscribe.len()), ("rules", 2));
        assert_eq!(access.warning, None);
        let wide = load(&format!(
            "project = \"demo\"\n{AUTH}[topics]\nsubscribe = [\"*\"]\n"
        ))
        .unwrap();
        let warning = wide.topic_access().warning.unwrap();
        assert!(
            warning.contains("lets every signed-in client subscribe to every topic"),
            "{warning}"
        );
    }

    #[test]
    fn an_environment_replaces_the_lists_it_names() {
        let text = format!(
            "project = \"demo\"\n{AUTH}[topics]\nsubscribe = [\"news\"]\n[env.staging.topics]\nsubscribe = [\"*\"]\n"
        );
        let staging = Config::parse_for(Path::new("wsctl.toml"), &text, Some("staging")).unwrap();
        assert_eq!(staging.topics.unwrap().subscribe, ["*"]);
        let base = Config::parse(Path::new("wsctl.toml"), &text).unwrap();
        assert_eq!(base.topics.unwrap().subscribe, ["news"]);
    }
}
