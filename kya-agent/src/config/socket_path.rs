//! Socket paths: how `network.unix_deny` and `network.unix_allow` name an `AF_UNIX` socket
//! (one absolute path, no globs), and why a string is not one.

use std::{fmt, path::PathBuf};

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

/// Why a string is not a socket path for `network.unix_deny` or `network.unix_allow`. The
/// `Display` text completes "the path …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketPathProblem {
    /// `""`.
    Empty,
    /// It contains a NUL character, which no path can.
    Nul,
    /// It contains `*`, `?` or `[`.
    Glob,
    /// It does not start with `/`.
    NotAbsolute,
    /// It ends with `/` (this includes `/` itself).
    TrailingSlash,
    /// It has an empty component (`//`).
    EmptyComponent,
    /// It has a `.` component.
    CurrentComponent,
    /// It has a `..` component.
    ParentComponent,
}

impl SocketPathProblem {
    /// What the user should write instead.
    #[must_use]
    pub fn fix(self) -> &'static str {
        match self {
            Self::Empty => {
                "write the socket's path, e.g. \"/run/containerd/containerd.sock\", or remove \
                 the empty string"
            }
            Self::Nul => "remove the NUL character ('\\u0000') from the path",
            Self::Glob => {
                "glob patterns are not supported: name each socket by its full path, e.g. \
                 \"/run/containerd/containerd.sock\""
            }
            Self::NotAbsolute => {
                "write the full path of the socket, starting with '/', e.g. \
                 \"/run/containerd/containerd.sock\""
            }
            Self::TrailingSlash => "name the socket file itself, without a trailing '/'",
            Self::EmptyComponent => "write each '/' once",
            Self::CurrentComponent => "write the path without '.' components",
            Self::ParentComponent => "write the path without '..' components",
        }
    }
}

impl fmt::Display for SocketPathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::Nul => "contains a NUL character",
            Self::Glob => "contains a glob character ('*', '?' or '['), which is not supported",
            Self::NotAbsolute => "does not start with '/'",
            Self::TrailingSlash => "ends with '/'",
            Self::EmptyComponent => "contains an empty component ('//')",
            Self::CurrentComponent => "contains a '.' component",
            Self::ParentComponent => "contains a '..' component",
        })
    }
}
