//! Bearer tokens and roles. Every RPC names the roles it admits; a request without a known token is
//! `UNAUTHENTICATED`, one whose token lacks the role is `PERMISSION_DENIED`. Tokens are never logged.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits, watches and cancels jobs (`JobService`).
    Operator,
    /// Administers workers and coordinators (`ClusterService`) and reads jobs.
    Engineer,
    /// Registers, polls and reports (`WorkerService`).
    Worker,
    /// Another coordinator (`RaftTransport`).
    Peer,
}

const ALL_ROLES: [Role; 4] = [Role::Operator, Role::Engineer, Role::Worker, Role::Peer];

/// Token → roles.
#[derive(Clone, Default)]
pub struct Tokens {
    roles: BTreeMap<String, Vec<Role>>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.roles.len())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Roles {
    One(Role),
    Many(Vec<Role>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: BTreeMap<String, Roles>,
}

impl Tokens {
    /// One token with every role (`KHOP_TOKEN`).
    pub fn single(token: &str) -> Tokens {
        Tokens {
            roles: BTreeMap::from([(token.to_string(), ALL_ROLES.to_vec())]),
        }
    }

    /// A TOML file: `[tokens]` then `"<token>" = "operator"` or `"<token>" = ["engineer", "operator"]`;
    /// roles are `operator`, `engineer`, `worker`, `peer`.
    pub fn from_toml(text: &str) -> Result<Tokens, String> {
        let file: TokenFile = toml::from_str(text).map_err(|e| e.message().to_string())?;
        let mut roles = BTreeMap::new();
        for (token, r) in file.tokens {
            if token.len() < 16 {
                return Err("tokens: every token must be at least 16 characters".into());
            }
            let r = match r {
                Roles::One(r) => vec![r],
                Roles::Many(r) => r,
            };
            roles.insert(token, r);
        }
        Ok(Tokens { roles })
    }

    pub fn from_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Tokens::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A token with the peer role, for this coordinator's own Raft traffic (the first in order).
    pub fn peer_token(&self) -> Option<String> {
        self.roles
            .iter()
            .find(|(_, roles)| roles.contains(&Role::Peer))
            .map(|(t, _)| t.clone())
    }

    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Admits the request if its bearer token has one of `allowed`.
    pub fn check(&self, metadata: &MetadataMap, allowed: &[Role]) -> Result<(), Status> {
        let token = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Status::unauthenticated("missing bearer token (authorization: Bearer <token>)")
            })?;
        let roles = self
            .roles
            .get(token.trim())
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        if roles.iter().any(|r| allowed.contains(r)) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "this call needs the role {}",
                allowed
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(token: Option<&str>) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Some(t) = token {
            m.insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        m
    }

    #[test]
    fn roles_are_checked() {
        let tokens = Tokens::from_toml(
            "[tokens]\n\"operator-token-0001\" = \"operator\"\n\"both-tokens-000001\" = [\"engineer\", \"peer\"]\n",
        )
        .unwrap();
        let cases: [(Option<&str>, &[Role], Option<tonic::Code>); 5] = [
            (Some("operator-token-0001"), &[Role::Operator], None),
            (
                Some("operator-token-0001"),
                &[Role::Engineer],
                Some(tonic::Code::PermissionDenied),
            ),
            (Some("both-tokens-000001"), &[Role::Peer], None),
            (
                Some("nope-nope-nope-nope"),
                &[Role::Operator],
                Some(tonic::Code::Unauthenticated),
            ),
            (None, &[Role::Operator], Some(tonic::Code::Unauthenticated)),
        ];
        for (token, allowed, want) in cases {
            let got = tokens.check(&with(token), allowed).err().map(|s| s.code());
            assert_eq!(got, want, "{token:?} {allowed:?}");
        }
        assert_eq!(tokens.peer_token().as_deref(), Some("both-tokens-000001"));
    }

    #[test]
    fn short_tokens_and_unknown_roles_are_refused() {
        assert!(Tokens::from_toml("[tokens]\nshort = \"operator\"\n").is_err());
        assert!(Tokens::from_toml("[tokens]\n\"long-enough-token-1\" = \"admin\"\n").is_err());
    }
}
