//! How a unix socket a human typed (`kya grant --unix PATH|@NAME`) becomes a grantable
//! resource: the identity the kernel judges, the socket file itself for a path.
use std::{fs, os::unix::fs::FileTypeExt as _, path::Path};

use super::Resource;
use crate::{
    config::{SocketAddress, parse_socket_address},
    identity::identity_of,
    text::AgentText,
};

/// How a socket is written, for the fix of a mistake in one.
const SOCKET_FORMS: &str = "write the socket's absolute path, such as /run/user/1000/bus, or \
                            @NAME for an abstract socket, as `ss -xl` shows it";

impl Resource {
    /// The socket `text` names: `@NAME` (an abstract socket, whether or not one is bound now)
    /// or an absolute path, which must lead to a socket now. Symlinks are followed: the kernel
    /// judges the socket file itself, so a grant names that, and says where the path led.
    pub fn unix(text: &str) -> Result<Self, String> {
        let address = parse_socket_address(text)
            .map_err(|problem| format!("`{text}` {problem}; {}", problem.fix()))?;
        let typed = match &address {
            SocketAddress::Abstract(_) => {
                let (dev, ino) = address
                    .abstract_key()
                    .ok_or_else(|| format!("`{text}` is too long; {SOCKET_FORMS}"))?;
                return Ok(Self::Unix {
                    dev,
                    ino,
                    socket: address.text(),
                    via: None,
                });
            }
            SocketAddress::Path(path) => path,
        };
        let socket = fs::canonicalize(typed)
            .map_err(|error| format!("`{}`: {error}; {SOCKET_FORMS}", typed.display()))?;
        let shown = |path: &Path| SocketAddress::Path(path.to_owned()).to_string();
        let file_type = fs::metadata(&socket)
            .map_err(|error| format!("`{}`: {error}", socket.display()))?
            .file_type();
        if !file_type.is_socket() {
            let elsewhere = if &socket == typed {
                String::new()
            } else {
                format!(" (it leads to {})", shown(&socket))
            };
            return Err(format!(
                "`{}` is not a unix socket{elsewhere}; {SOCKET_FORMS}",
                shown(typed)
            ));
        }
        let key = identity_of(&socket).map_err(|error| format!("`{}`: {error}", shown(&socket)))?;
        Ok(Self::Unix {
            dev: key.dev,
            ino: key.ino,
            via: (&socket != typed).then(|| AgentText::from(typed.as_path())),
            socket: AgentText::from(socket),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::{fs::symlink, net::UnixListener};

    use kya_common::protect::ABSTRACT_DEV;

    use super::*;

    fn scratch() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("kya-unix-grant-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
    }

    #[test]
    fn sockets_are_named_by_path_or_abstract_name() {
        let dir = scratch();
        let path = dir.join("server.sock");
        let _listener = UnixListener::bind(&path).unwrap();
        symlink(&path, dir.join("link")).unwrap();
        fs::write(dir.join("plain"), "x").unwrap();

        let Ok(Resource::Unix {
            dev,
            ino,
            socket,
            via,
        }) = Resource::unix(&path.display().to_string())
        else {
            panic!("a bound socket refused");
        };
        let key = identity_of(&path).unwrap();
        assert_eq!((dev, ino), (key.dev, key.ino));
        assert_eq!((socket, via), (AgentText::from(path.as_path()), None));

        let Ok(Resource::Unix { socket, via, .. }) =
            Resource::unix(&dir.join("link").display().to_string())
        else {
            panic!("a symlink to a socket refused");
        };
        assert_eq!(socket, AgentText::from(path.as_path()), "the socket itself");
        assert_eq!(via, Some(AgentText::from(dir.join("link"))));

        let Ok(Resource::Unix { dev, socket, .. }) = Resource::unix("@kya-test") else {
            panic!("an abstract name refused");
        };
        assert_eq!((dev, socket), (ABSTRACT_DEV, AgentText::from("@kya-test")));

        let refused = |text: &str| Resource::unix(text).expect_err(text);
        assert!(refused(&dir.join("plain").display().to_string()).contains("is not a unix socket"));
        assert!(refused(&dir.join("missing").display().to_string()).contains("No such file"));
        assert!(refused("@").contains("after '@'"));
        assert!(refused("relative.sock").contains("neither '/' nor '@'"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
