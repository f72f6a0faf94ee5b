//! Socket addresses: how `network.unix_deny`, `network.unix_allow` and `kya grant --unix` name
//! an `AF_UNIX` socket (one absolute path, no globs, or `@name` for a socket in the abstract
//! namespace), why a string is not one, and how one is shown.

use std::{fmt, os::unix::ffi::OsStrExt as _, path::PathBuf};

use kya_common::protect::{ABSTRACT_DEV, UNIX_PATH_MAX, abstract_name_hash, abstract_sun_path};

use crate::text::AgentText;

/// One unix socket a rule or grant names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketAddress {
    /// A socket file, by its absolute path (in the form [`parse_socket_path`] accepts).
    Path(PathBuf),
    /// A socket in the abstract namespace: its name, the bytes after the leading NUL of
    /// `sun_path` (written `@name`). Never empty, never longer than [`MAX_ABSTRACT_NAME`].
    Abstract(Vec<u8>),
}

/// Bytes an abstract name can have: `sun_path` less the leading NUL.
pub const MAX_ABSTRACT_NAME: usize = UNIX_PATH_MAX - 1;

impl SocketAddress {
    /// The address as the kernel recorded it for a bound socket: `sun_path` and how many of
    /// its bytes are used. A leading NUL makes the rest an abstract name; otherwise it is a
    /// path (NUL-terminated or not). `None` for an unnamed socket.
    #[must_use]
    pub fn from_sun_path(sun_path: &[u8]) -> Option<Self> {
        match sun_path.split_first()? {
            (0, name) if !name.is_empty() => Some(Self::Abstract(name.to_vec())),
            (0, _) => None,
            _ => {
                let end = sun_path
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(sun_path.len());
                let path: &std::ffi::OsStr = std::ffi::OsStr::from_bytes(&sun_path[..end]);
                Some(Self::Path(PathBuf::from(path)))
            }
        }
    }

    /// The kernel's key for an abstract name: `ABSTRACT_DEV` and the name's hash, as the
    /// kernel computes it from `sun_path`. `None` for a path (its key is the file's identity).
    #[must_use]
    pub fn abstract_key(&self) -> Option<(u32, u64)> {
        let Self::Abstract(name) = self else {
            return None;
        };
        let (sun_path, len) = abstract_sun_path(name)?;
        Some((ABSTRACT_DEV, abstract_name_hash(&sun_path, len)))
    }

    /// `/path` or `@name` as text a server (or an agent) chose: shown escaped.
    #[must_use]
    pub fn text(&self) -> AgentText {
        match self {
            Self::Path(path) => AgentText::from(path.as_path()),
            Self::Abstract(name) => AgentText::from_bytes([b"@".as_slice(), name].concat()),
        }
    }

    /// Whether this is a path from `/` (not a relative one, nor an abstract name).
    #[must_use]
    pub fn is_absolute(&self) -> bool {
        matches!(self, Self::Path(path) if path.is_absolute())
    }
}

impl fmt::Display for SocketAddress {
    /// `/path` or `@name`, escaped as [`AgentText`] shows text (abstract names are often
    /// binary).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.text().fmt(f)
    }
}

/// Checks the config form of a socket: `@name` (an abstract socket) or a path as
/// [`parse_socket_path`] accepts it.
pub fn parse_socket_address(text: &str) -> Result<SocketAddress, SocketPathProblem> {
    let Some(name) = text.strip_prefix('@') else {
        return parse_socket_path(text).map(SocketAddress::Path);
    };
    if name.is_empty() {
        return Err(SocketPathProblem::AbstractEmpty);
    }
    if name.contains('\0') {
        return Err(SocketPathProblem::AbstractNul);
    }
    if name.len() > MAX_ABSTRACT_NAME {
        return Err(SocketPathProblem::AbstractTooLong { bytes: name.len() });
    }
    Ok(SocketAddress::Abstract(name.as_bytes().to_vec()))
}

/// Checks the config form of a socket path: absolute, each component named (no `//`, `.` or
/// `..`), no glob characters and no trailing `/`.
pub fn parse_socket_path(text: &str) -> Result<PathBuf, SocketPathProblem> {
    if text.is_empty() {
        return Err(SocketPathProblem::Empty);
    }
    if text.contains('\0') {
        return Err(SocketPathProblem::Nul);
    }
    // Checked before the rest so that "*.sock" is reported as a glob, not as relative.
    if text.contains(['*', '?', '[']) {
        return Err(SocketPathProblem::Glob);
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(SocketPathProblem::NotAbsolute);
    };
    if text.ends_with('/') {
        return Err(SocketPathProblem::TrailingSlash);
    }
    for component in rest.split('/') {
        match component {
            "" => return Err(SocketPathProblem::EmptyComponent),
            "." => return Err(SocketPathProblem::CurrentComponent),
            ".." => return Err(SocketPathProblem::ParentComponent),
            _ => {}
        }
    }
    Ok(PathBuf::from(text))
}

/// Why a string is not a socket for `network.unix_deny`, `network.unix_allow` or
/// `kya grant --unix`. The `Display` text completes "the entry …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketPathProblem {
    /// `""`.
    Empty,
    /// It contains a NUL character, which no path can.
    Nul,
    /// It contains `*`, `?` or `[`.
    Glob,
    /// It does not start with `/` (nor `@`).
    NotAbsolute,
    /// It ends with `/` (this includes `/` itself).
    TrailingSlash,
    /// It has an empty component (`//`).
    EmptyComponent,
    /// It has a `.` component.
    CurrentComponent,
    /// It has a `..` component.
    ParentComponent,
    /// `@` alone: no abstract name.
    AbstractEmpty,
    /// An abstract name with a NUL in it, which a config string cannot name reliably.
    AbstractNul,
    /// An abstract name longer than `sun_path` holds.
    AbstractTooLong { bytes: usize },
}

impl SocketPathProblem {
    /// What the user should write instead.
    #[must_use]
    pub fn fix(self) -> String {
        match self {
            Self::Empty => "write the socket's path, e.g. \"/run/containerd/containerd.sock\", \
                            or \"@name\" for an abstract socket, or remove the empty string"
                .into(),
            Self::Nul => "remove the NUL character ('\\u0000') from the path".into(),
            Self::Glob => "glob patterns are not supported: name each socket by its full path, \
                           e.g. \"/run/containerd/containerd.sock\""
                .into(),
            Self::NotAbsolute => "write the full path of the socket, starting with '/', e.g. \
                                  \"/run/containerd/containerd.sock\", or \"@name\" for a \
                                  socket in the abstract namespace"
                .into(),
            Self::TrailingSlash => "name the socket file itself, without a trailing '/'".into(),
            Self::EmptyComponent => "write each '/' once".into(),
            Self::CurrentComponent => "write the path without '.' components".into(),
            Self::ParentComponent => "write the path without '..' components".into(),
            Self::AbstractEmpty => "write the abstract socket's name after '@', as `ss -xl` \
                                    shows it, e.g. \"@/tmp/.X11-unix/X0\""
                .into(),
            Self::AbstractNul => "remove the NUL character ('\\u0000') from the name".into(),
            Self::AbstractTooLong { .. } => format!(
                "an abstract name has at most {MAX_ABSTRACT_NAME} bytes (sun_path less its \
                 leading NUL): write the name the server binds"
            ),
        }
    }
}

impl fmt::Display for SocketPathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("is empty"),
            Self::Nul => f.write_str("contains a NUL character"),
            Self::Glob => {
                f.write_str("contains a glob character ('*', '?' or '['), which is not supported")
            }
            Self::NotAbsolute => f.write_str("starts with neither '/' nor '@'"),
            Self::TrailingSlash => f.write_str("ends with '/'"),
            Self::EmptyComponent => f.write_str("contains an empty component ('//')"),
            Self::CurrentComponent => f.write_str("contains a '.' component"),
            Self::ParentComponent => f.write_str("contains a '..' component"),
            Self::AbstractEmpty => f.write_str("is '@' without an abstract socket name"),
            Self::AbstractNul => f.write_str("is an abstract name with a NUL character"),
            Self::AbstractTooLong { bytes } => write!(
                f,
                "is an abstract name of {bytes} bytes, longer than the {MAX_ABSTRACT_NAME} a \
                 socket address holds"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_and_paths_parse_to_their_kind() {
        assert_eq!(
            parse_socket_address("/run/user/1000/bus"),
            Ok(SocketAddress::Path("/run/user/1000/bus".into()))
        );
        assert_eq!(
            parse_socket_address("@/tmp/.X11-unix/X0"),
            Ok(SocketAddress::Abstract(b"/tmp/.X11-unix/X0".to_vec()))
        );
        assert_eq!(
            parse_socket_address("@@x"),
            Ok(SocketAddress::Abstract(b"@x".to_vec())),
            "only the first '@' marks the namespace"
        );
        let longest = format!("@{}", "n".repeat(MAX_ABSTRACT_NAME));
        assert!(parse_socket_address(&longest).is_ok());
        assert_eq!(
            parse_socket_address(&format!("{longest}n")),
            Err(SocketPathProblem::AbstractTooLong { bytes: 108 })
        );
        assert_eq!(
            parse_socket_address("@"),
            Err(SocketPathProblem::AbstractEmpty)
        );
        assert_eq!(
            parse_socket_address("@a\0b"),
            Err(SocketPathProblem::AbstractNul)
        );
        assert_eq!(
            parse_socket_address("sock"),
            Err(SocketPathProblem::NotAbsolute)
        );
    }

    #[test]
    fn abstract_keys_are_the_kernels() {
        let address = SocketAddress::Abstract(b"kya-test".to_vec());
        let mut sun_path = [0; UNIX_PATH_MAX];
        sun_path[1..9].copy_from_slice(b"kya-test");
        assert_eq!(
            address.abstract_key(),
            Some((ABSTRACT_DEV, abstract_name_hash(&sun_path, 9)))
        );
        assert_eq!(SocketAddress::Path("/run/x".into()).abstract_key(), None);
    }

    #[test]
    fn kernel_addresses_decode_and_show_escaped() {
        let decoded = SocketAddress::from_sun_path(b"\0kya\x01\xff\\").unwrap();
        assert_eq!(decoded, SocketAddress::Abstract(b"kya\x01\xff\\".to_vec()));
        assert_eq!(decoded.to_string(), "@kya\\x01\\xff\\\\");
        let path = SocketAddress::from_sun_path(b"/run/x.sock\0garbage").unwrap();
        assert_eq!(path.to_string(), "/run/x.sock");
        assert_eq!(
            SocketAddress::from_sun_path(b"\0"),
            None,
            "autobind, unnamed"
        );
        assert_eq!(SocketAddress::from_sun_path(b""), None);
        assert_eq!(
            SocketAddress::Path("/tmp/ünï\ncode".into()).to_string(),
            "/tmp/ünï\\ncode"
        );
    }
}
