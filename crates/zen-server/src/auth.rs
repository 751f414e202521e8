//! Bearer tokens and their scopes.
//!
//! A token has a name (what logs and the audit trail say; never the secret) and one scope:
//! `ingest` (the webhooks), `read` (the API, the history, the dashboard's data, `/metrics`) or
//! `admin` (everything, and alone what changes the daemon: alert rules, dead-letter replay,
//! recommendations and tuning). A request's token is compared with every configured one in
//! constant time, so neither the answer nor its timing says which one nearly matched.

use std::fmt;

use axum::http::Method;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// `POST /api/v1/ingest/{source}`.
    Ingest,
    /// Every `GET` behind authentication.
    Read,
    /// All of the above, and every other change.
    Admin,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Read, Scope::Admin];

    /// The scope a request needs: ingestion's for the webhooks, read for a `GET` (or `HEAD`),
    /// admin for every other change.
    pub fn needed(method: &Method, path: &str) -> Scope {
        if path.starts_with("/api/v1/ingest/") {
            Scope::Ingest
        } else if method == Method::GET || method == Method::HEAD {
            Scope::Read
        } else {
            Scope::Admin
        }
    }

    /// Whether a token of this scope may do what `needed` names.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bearer token. Its secret is never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    secret: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .field("secret", &"(redacted)")
            .finish()
    }
}

impl Token {
    pub fn new(name: impl Into<String>, scope: Scope, secret: impl Into<String>) -> Token {
        Token {
            name: name.into(),
            scope,
            secret: secret.into(),
        }
    }

    /// The secret, for a client of the daemon's own (the command line asking the daemon).
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

/// A token file's line that cannot be a token: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct TokenLineError {
    pub line: usize,
    pub problem: String,
}

/// The tokens of one scope from a file's text: one a line, `NAME:SECRET` or the secret alone
/// (named `<scope>-<line>`); blank lines and `#` comments skipped. A secret is at least 16
/// characters, with no white space.
pub fn parse_tokens(scope: Scope, text: &str) -> Result<Vec<Token>, TokenLineError> {
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, secret) = match line.split_once(':') {
            Some((name, secret)) => (name.trim().to_owned(), secret.trim()),
            None => (format!("{scope}-{n}"), line),
        };
        let problem = if name.is_empty() {
            Some("the name before `:` is empty".to_owned())
        } else if secret.chars().count() < 16 {
            Some(format!(
                "the secret of {name:?} is {} characters; at least 16 are needed",
                secret.chars().count()
            ))
        } else if secret.chars().any(char::is_whitespace) {
            Some(format!("the secret of {name:?} holds white space"))
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(TokenLineError { line: n, problem });
        }
        tokens.push(Token::new(name, scope, secret));
    }
    Ok(tokens)
}

/// The tokens a server accepts; none: it is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tokens(Vec<Token>);

impl Tokens {
    /// Refuses two tokens of one secret (which scope would it have?) or of one name.
    pub fn new(tokens: Vec<Token>) -> Result<Tokens, String> {
        for (i, a) in tokens.iter().enumerate() {
            for b in &tokens[i + 1..] {
                if a.secret == b.secret {
                    return Err(format!(
                        "tokens {:?} ({}) and {:?} ({}) have the same secret",
                        a.name, a.scope, b.name, b.scope
                    ));
                }
                if a.name == b.name {
                    return Err(format!("two tokens are named {:?}", a.name));
                }
            }
        }
        Ok(Tokens(tokens))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first token of a scope that allows `needed`, for the daemon's own clients.
    pub fn first_allowing(&self, needed: Scope) -> Option<&Token> {
        self.0.iter().find(|t| t.scope.allows(needed))
    }

    /// The token whose secret `given` is: compared with every one, in constant time each.
    pub fn find(&self, given: &[u8]) -> Option<&Token> {
        let mut found = None;
        for token in &self.0 {
            if bool::from(given.ct_eq(token.secret.as_bytes())) {
                found = Some(token);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_route_and_admin_allows_all() {
        assert_eq!(
            Scope::needed(&Method::POST, "/api/v1/ingest/falco"),
            Scope::Ingest
        );
        assert_eq!(
            Scope::needed(&Method::GET, "/api/v1/observations"),
            Scope::Read
        );
        assert_eq!(
            Scope::needed(&Method::PUT, "/api/v1/alerts/rules"),
            Scope::Admin
        );
        assert_eq!(
            Scope::needed(&Method::POST, "/api/v1/dead-letters/replay"),
            Scope::Admin
        );
        assert!(Scope::Admin.allows(Scope::Ingest) && Scope::Admin.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Ingest) && !Scope::Read.allows(Scope::Admin));
        assert!(!Scope::Ingest.allows(Scope::Read));
    }

    #[test]
    fn token_files_name_their_lines_and_refuse_weak_secrets() {
        let text = "# CI's\nci:0123456789abcdef0123\n\n  fedcba9876543210fedc  \n";
        let tokens = parse_tokens(Scope::Ingest, text).unwrap();
        assert_eq!(tokens[0].name, "ci");
        assert_eq!(tokens[1].name, "ingest-4");
        assert_eq!(tokens[1].secret(), "fedcba9876543210fedc");
        let short = parse_tokens(Scope::Read, "a\nb:short").unwrap_err();
        assert_eq!(short.line, 1);
        assert!(short.to_string().contains("at least 16"), "{short}");
        let spaced = parse_tokens(Scope::Read, "b:0123456789 abcdef").unwrap_err();
        assert!(spaced.problem.contains("white space"), "{spaced}");
        assert!(!format!("{:?}", tokens[0]).contains("0123456789abcdef"));
    }

    #[test]
    fn a_secret_finds_its_token_and_twins_are_refused() {
        let tokens = Tokens::new(vec![
            Token::new("a", Scope::Read, "aaaaaaaaaaaaaaaa"),
            Token::new("b", Scope::Admin, "bbbbbbbbbbbbbbbb"),
        ])
        .unwrap();
        assert_eq!(tokens.find(b"bbbbbbbbbbbbbbbb").unwrap().name, "b");
        assert!(tokens.find(b"bbbbbbbbbbbbbbb").is_none());
        assert!(tokens.find(b"").is_none());
        assert_eq!(tokens.first_allowing(Scope::Admin).unwrap().name, "b");
        let twins = Tokens::new(vec![
            Token::new("a", Scope::Read, "aaaaaaaaaaaaaaaa"),
            Token::new("c", Scope::Ingest, "aaaaaaaaaaaaaaaa"),
        ]);
        assert!(twins.unwrap_err().contains("same secret"));
    }
}
