//! Who may decide for an agent. The caller is whoever the kernel says is on the other end of
//! the control socket; nothing the caller writes counts.
use crate::config::{Agent, Config};

/// A human on the control socket, as the kernel identified them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub pid: u32,
    pub uid: u32,
    /// The user name of `uid`, or `uid <N>` if the user database has none.
    pub user: String,
}

impl Caller {
    /// Identifies `uid` through the user database.
    #[must_use]
    pub fn new(pid: u32, uid: u32) -> Self {
        let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {uid}"), |user| user.name);
        Self { pid, uid, user }
    }
}

/// Why a caller may not decide for an agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotAllowed {
    #[error(
        "{user} (uid {uid}) is the user agent `{agent}` runs as; an agent's own user cannot \
         decide for it"
    )]
    AgentsOwnUser {
        user: String,
        uid: u32,
        agent: String,
    },
    #[error(
        "{user} (uid {uid}) may not decide for agent `{agent}`: its approvers in {config} are \
         {approvers} (root may always); add the user to `approvers` of that agent to allow it"
    )]
    NotAnApprover {
        user: String,
        uid: u32,
        agent: String,
        /// The config file, as a path to show.
        config: String,
        /// The agent's approvers, as a list to show.
        approvers: String,
    },
}

/// Whether `caller` may approve, deny, grant or revoke for `agent`: root or a listed approver,
/// but never the agent's own user.
pub fn may_decide(caller: &Caller, agent: &Agent, config: &Config) -> Result<(), NotAllowed> {
    if agent.rules().uid().contains(&caller.uid) {
        return Err(NotAllowed::AgentsOwnUser {
            user: caller.user.clone(),
            uid: caller.uid,
            agent: agent.name().to_owned(),
        });
    }
    if caller.uid == 0 || agent.may_be_approved_by(&caller.user) {
        return Ok(());
    }
    Err(NotAllowed::NotAnApprover {
        user: caller.user.clone(),
        uid: caller.uid,
        agent: agent.name().to_owned(),
        config: config.origin().display().to_string(),
        approvers: if agent.approvers().is_empty() {
            "none listed".to_owned()
        } else {
            agent.approvers().join(", ")
        },
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config() -> Config {
        Config::from_toml_str(
            "[[agents]]\nname = \"coder\"\nowner = \"alice\"\napprovers = [\"alice\"]\n\
             [agents.match]\nuid = [1001]\n",
            Path::new("kya.toml"),
        )
        .unwrap()
    }

    fn caller(uid: u32, user: &str) -> Caller {
        Caller {
            pid: 1,
            uid,
            user: user.into(),
        }
    }

    #[test]
    fn root_and_listed_approvers_may_decide() {
        let config = config();
        let agent = config.agent_by_name("coder").unwrap();
        assert!(may_decide(&caller(0, "root"), agent, &config).is_ok());
        assert!(may_decide(&caller(1000, "alice"), agent, &config).is_ok());
    }

    #[test]
    fn others_and_the_agents_own_user_may_not() {
        let config = config();
        let agent = config.agent_by_name("coder").unwrap();
        let refused = may_decide(&caller(1002, "mallory"), agent, &config)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("approvers in kya.toml are alice"),
            "{refused}"
        );
        let own = may_decide(&caller(1001, "alice"), agent, &config)
            .unwrap_err()
            .to_string();
        assert!(own.contains("runs as"), "{own}");
    }
}
