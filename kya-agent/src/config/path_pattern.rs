//! Path patterns: how `[agents.files]` (and the built-in credential catalogue) name a file or a
//! directory tree, either absolutely or in every user's home, and why a string is not one.
//!
//! The forms are deliberately few: `/abs/path`, `~/rel/path`, and either with a trailing `/` for
//! a whole directory tree. No globs: the kernel matches files by identity, so a pattern must
//! name paths that can be resolved to inodes when the daemon starts.

use std::{fmt, path::PathBuf, str::FromStr};

/// Where a [`PathPattern`] starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternBase {
    /// `/…`: one path on the host.
    Absolute,
    /// `~/…`: the same path in every user's home directory.
    Home,
}

/// A file or directory tree, absolute or in every home: `/etc/shadow`, `/srv/app/secrets/`,
/// `~/.aws/credentials`, `~/.config/gcloud/`.
///
/// Parsed with [`PathPattern::parse`] (or `str::parse`); its `Display` gives back the config
/// form, so `pattern.to_string().parse()` returns the same pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern {
    base: PatternBase,
    /// Never empty; no component is empty, `.` or `..`.
    components: Vec<String>,
    tree: bool,
}

impl PathPattern {
    /// Parses the config form of a pattern.
    pub fn parse(text: &str) -> Result<Self, PatternProblem> {
        if text.is_empty() {
            return Err(PatternProblem::Empty);
        }
        if text.contains('\0') {
            return Err(PatternProblem::Nul);
        }
        // Checked before the base so that "*.pem" is reported as a glob, not as relative.
        if text.contains(['*', '?', '[']) {
            return Err(PatternProblem::Glob);
        }
        let (base, rest) = if let Some(rest) = text.strip_prefix('/') {
            (PatternBase::Absolute, rest)
        } else if text == "~" {
            return Err(PatternProblem::WholeHome);
        } else if let Some(rest) = text.strip_prefix("~/") {
            (PatternBase::Home, rest)
        } else if text.starts_with('~') {
            return Err(PatternProblem::OtherUserHome);
        } else {
            return Err(PatternProblem::NotAbsolute);
        };
        if text.contains("//") {
            return Err(PatternProblem::EmptyComponent);
        }
        let (rest, tree) = match rest.strip_suffix('/') {
            Some(rest) => (rest, true),
            None => (rest, false),
        };
        if rest.is_empty() {
            return Err(match base {
                PatternBase::Absolute => PatternProblem::Root,
                PatternBase::Home => PatternProblem::WholeHome,
            });
        }
        let mut components = Vec::new();
        for component in rest.split('/') {
            match component {
                ".." => return Err(PatternProblem::ParentComponent),
                "." => return Err(PatternProblem::CurrentComponent),
                _ => components.push(component.to_owned()),
            }
        }
        Ok(Self {
            base,
            components,
            tree,
        })
    }

    #[must_use]
    pub fn base(&self) -> PatternBase {
        self.base
    }

    /// The path's components after `/` or `~/`; never empty, none of them empty, `.` or `..`.
    #[must_use]
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// Whether the pattern names a whole directory tree (it was written with a trailing `/`).
    #[must_use]
    pub fn is_tree(&self) -> bool {
        self.tree
    }

    /// The concrete paths the pattern names on a host whose home directories are `homes`: one
    /// path for an absolute pattern, one per home for a `~/` pattern. The paths have no
    /// trailing `/`; [`is_tree`](Self::is_tree) says whether each is a tree.
    #[must_use]
    pub fn expand(&self, homes: &[PathBuf]) -> Vec<PathBuf> {
        match self.base {
            PatternBase::Absolute => {
                let mut path = PathBuf::from("/");
                path.extend(&self.components);
                vec![path]
            }
            PatternBase::Home => homes
                .iter()
                .map(|home| {
                    let mut path = home.clone();
                    path.extend(&self.components);
                    path
                })
                .collect(),
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.base {
            PatternBase::Absolute => "/",
            PatternBase::Home => "~/",
        })?;
        f.write_str(&self.components.join("/"))?;
        if self.tree {
            f.write_str("/")?;
        }
        Ok(())
    }
}

impl FromStr for PathPattern {
    type Err = PatternProblem;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Why a string is not a [`PathPattern`]. The `Display` text completes "the path …".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternProblem {
    /// `""`.
    Empty,
    /// It contains a NUL character, which no path can.
    Nul,
    /// It contains `*`, `?` or `[`.
    Glob,
    /// It starts with neither `/` nor `~/`.
    NotAbsolute,
    /// `~user/…`: another user's home.
    OtherUserHome,
    /// It has an empty component (`//`).
    EmptyComponent,
    /// It has a `..` component.
    ParentComponent,
    /// It has a `.` component.
    CurrentComponent,
    /// `/`: every file on the host.
    Root,
    /// `~/` or `~`: every file in every home.
    WholeHome,
}

impl PatternProblem {
    /// What the user should write instead.
    #[must_use]
    pub fn fix(self) -> &'static str {
        match self {
            Self::Empty => "write a path, e.g. \"~/.config/acme/\", or remove the empty string",
            Self::Nul => "remove the NUL character ('\\u0000') from the path",
            Self::Glob => {
                "glob patterns are not supported in the config: name each file, or end a \
                 directory with '/' to cover its whole tree, e.g. \"/srv/app/secrets/\""
            }
            Self::NotAbsolute => {
                "start the path with '/' for one absolute path, or with '~/' for the same path \
                 in every user's home, e.g. \"~/.config/acme/\""
            }
            Self::OtherUserHome => {
                "write that user's home as an absolute path, e.g. \"/home/alice/.config/acme/\", \
                 or use '~/' for the path in every user's home"
            }
            Self::EmptyComponent => "write each '/' once",
            Self::ParentComponent => "write the path without '..' components",
            Self::CurrentComponent => "write the path without '.' components",
            Self::Root => {
                "name the files or directories that hold credentials, e.g. \"/srv/app/secrets/\""
            }
            Self::WholeHome => {
                "name the files or directories in the home that hold credentials, e.g. \
                 \"~/.config/acme/\""
            }
        }
    }
}

impl fmt::Display for PatternProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "is empty",
            Self::Nul => "contains a NUL character",
            Self::Glob => "contains a glob character ('*', '?' or '['), which is not supported",
            Self::NotAbsolute => "is relative: it starts with neither '/' nor '~/'",
            Self::OtherUserHome => "names another user's home ('~user'), which is not supported",
            Self::EmptyComponent => "contains an empty component ('//')",
            Self::ParentComponent => "contains a '..' component",
            Self::CurrentComponent => "contains a '.' component",
            Self::Root => "is the root directory '/', which would cover every file on the host",
            Self::WholeHome => {
                "is a whole home directory ('~/'), which would cover every file in every home"
            }
        })
    }
}
