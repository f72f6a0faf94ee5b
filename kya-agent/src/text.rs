//! Text that an agent chooses: file and directory names (a name read from a dentry may hold any
//! byte but `/` and NUL), executable paths, command names, socket names, host names. Everything
//! kya prints (the `kya` commands, the daemon's log, the audit trail, JSON) carries such text as
//! an [`AgentText`], whose only rendering is [`escape`]d: no byte of it can move a terminal's
//! cursor, clear the screen, start a new log line, reorder or hide what a human reads, and the
//! rendering reads back to the same bytes ([`AgentText::parse`]).
//!
//! What is escaped:
//! - `\` as `\\`, so that every other escape is unambiguous;
//! - newline, carriage return and tab as `\n`, `\r`, `\t`; the other C0 controls and DEL as
//!   `\xNN` (`\x1b` for ESC);
//! - the C1 controls (U+0080-U+009F, which some terminals obey like ESC sequences), Unicode's
//!   format characters (bidi overrides and isolates such as U+202E, zero-width characters, the
//!   invisible tag characters) and its line and paragraph separators, as `\u{202e}`;
//! - bytes that are not UTF-8 as `\xNN` (always `\x80` or above, so never confused with an
//!   escaped control character).
//!
//! Everything else, including letters of every script and ordinary spaces, is shown as is.
use std::{
    ffi::OsStr,
    fmt::{self, Write as _},
    os::unix::ffi::{OsStrExt as _, OsStringExt as _},
    path::Path,
};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Unicode's format characters (general category Cf, Unicode 16) and its line and paragraph
/// separators (Zl, Zp), as inclusive ranges: characters that change how the text around them
/// is shown, or are not shown at all.
const INVISIBLE: &[(char, char)] = &[
    ('\u{00ad}', '\u{00ad}'),   // soft hyphen
    ('\u{0600}', '\u{0605}'),   // Arabic number signs
    ('\u{061c}', '\u{061c}'),   // Arabic letter mark (bidi)
    ('\u{06dd}', '\u{06dd}'),   // Arabic end of ayah
    ('\u{070f}', '\u{070f}'),   // Syriac abbreviation mark
    ('\u{0890}', '\u{0891}'),   // Arabic pound and piastre marks above
    ('\u{08e2}', '\u{08e2}'),   // Arabic disputed end of ayah
    ('\u{180e}', '\u{180e}'),   // Mongolian vowel separator
    ('\u{200b}', '\u{200f}'),   // zero-width space, (non-)joiner, LRM, RLM
    ('\u{2028}', '\u{202e}'),   // line and paragraph separators, bidi embeddings and overrides
    ('\u{2060}', '\u{2064}'),   // word joiner, invisible operators
    ('\u{2066}', '\u{206f}'),   // bidi isolates, deprecated format characters
    ('\u{feff}', '\u{feff}'),   // zero-width no-break space (byte order mark)
    ('\u{fff9}', '\u{fffb}'),   // interlinear annotation
    ('\u{110bd}', '\u{110bd}'), // Kaithi number sign
    ('\u{110cd}', '\u{110cd}'), // Kaithi number sign above
    ('\u{13430}', '\u{1343f}'), // Egyptian hieroglyph format controls
    ('\u{1bca0}', '\u{1bca3}'), // shorthand format controls
    ('\u{1d173}', '\u{1d17a}'), // musical symbol format controls
    ('\u{e0001}', '\u{e0001}'), // language tag
    ('\u{e0020}', '\u{e007f}'), // tag characters (invisible ASCII look-alikes)
];

/// Whether `c` is written escaped: a control character or an invisible format character.
#[must_use]
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || INVISIBLE
            .iter()
            .any(|&(first, last)| (first..=last).contains(&c))
}

/// Writes `bytes` to `out` in the escaped form described in the module's documentation.
pub fn write_escaped(out: &mut impl fmt::Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid();
        let mut shown = 0;
        for (at, c) in valid.char_indices() {
            if c != '\\' && !needs_escape(c) {
                continue;
            }
            out.write_str(&valid[shown..at])?;
            shown = at + c.len_utf8();
            match c {
                '\\' => out.write_str("\\\\")?,
                '\n' => out.write_str("\\n")?,
                '\r' => out.write_str("\\r")?,
                '\t' => out.write_str("\\t")?,
                c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c))?,
                c => write!(out, "\\u{{{:x}}}", u32::from(c))?,
            }
        }
        out.write_str(&valid[shown..])?;
        for byte in chunk.invalid() {
            write!(out, "\\x{byte:02x}")?;
        }
    }
    Ok(())
}

/// `bytes` in the escaped form described in the module's documentation.
#[must_use]
pub fn escape(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len());
    write_escaped(&mut text, bytes).expect("writing to a String cannot fail");
    text
}

/// A message of several lines (a daemon's error, which may quote what was typed): each line
/// escaped, the line breaks kept.
#[must_use]
pub fn escape_lines(message: &str) -> String {
    message
        .split('\n')
        .map(|line| escape(line.as_bytes()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text an agent chose (or could have chosen), kept as the bytes it is made of. It shows
/// itself only escaped: `Display`, `Debug` and its serde form (a JSON string) are all the
/// escaped text, so no output path can print it raw by forgetting a call.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgentText(Vec<u8>);

impl AgentText {
    /// The text made of `bytes` (any bytes; nothing is checked or changed).
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Reads the escaped form back into the bytes it shows: the inverse of `Display`. Text that
    /// was never escaped (a state file or audit trail written before kya escaped) reads as
    /// itself, except for its escape-like sequences: a `\` that starts no escape stays a `\`.
    #[must_use]
    pub fn parse(escaped: &str) -> Self {
        let mut bytes = Vec::with_capacity(escaped.len());
        let mut rest = escaped;
        while let Some(at) = rest.find('\\') {
            bytes.extend_from_slice(&rest.as_bytes()[..at]);
            let after = &rest[at + 1..];
            let (unescaped, used) = unescape_one(after).unwrap_or((vec![b'\\'], 0));
            bytes.extend_from_slice(&unescaped);
            rest = &after[used..];
        }
        bytes.extend_from_slice(rest.as_bytes());
        Self(bytes)
    }

    /// Appends more text: a message that quotes an agent's text is composed raw, and escaped
    /// once, as a whole, when it is shown.
    pub fn push(&mut self, more: impl AsRef<[u8]>) {
        self.0.extend_from_slice(more.as_ref());
    }

    /// The bytes themselves: for comparing and matching, never for printing.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes as a path (for the daemon's own use, such as a grant's lookup).
    #[must_use]
    pub fn as_path(&self) -> &Path {
        Path::new(OsStr::from_bytes(&self.0))
    }
}

/// One escape after its `\`: the bytes it stands for and how many characters of `after` it
/// used; `None` when `after` starts no escape.
fn unescape_one(after: &str) -> Option<(Vec<u8>, usize)> {
    let simple = |byte: u8| Some((vec![byte], 1));
    match after.as_bytes().first()? {
        b'\\' => simple(b'\\'),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'x' => {
            let hex = after.get(1..3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            hex.bytes()
                .all(|digit| digit.is_ascii_hexdigit())
                .then(|| (vec![byte], 3))
        }
        b'u' => {
            let inner = after.strip_prefix("u{")?;
            let end = inner.find('}')?;
            let hex = &inner[..end];
            if hex.is_empty() || hex.len() > 6 || !hex.bytes().all(|d| d.is_ascii_hexdigit()) {
                return None;
            }
            let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
            let mut buf = [0; 4];
            Some((c.encode_utf8(&mut buf).as_bytes().to_vec(), end + 3))
        }
        _ => None,
    }
}

impl AsRef<[u8]> for AgentText {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Optional text as a table cell or log field shows it: escaped, or `-` when there is none.
#[must_use]
pub fn or_dash(text: Option<&AgentText>) -> OrDash<'_> {
    OrDash(text)
}

/// See [`or_dash`].
pub struct OrDash<'a>(Option<&'a AgentText>);

impl fmt::Display for OrDash<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(text) => text.fmt(f),
            None => f.write_char('-'),
        }
    }
}

impl fmt::Display for AgentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, &self.0)
    }
}

impl fmt::Debug for AgentText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_char('"')?;
        write_escaped(f, &self.0)?;
        f.write_char('"')
    }
}

impl From<&str> for AgentText {
    fn from(text: &str) -> Self {
        Self(text.as_bytes().to_vec())
    }
}

impl From<String> for AgentText {
    fn from(text: String) -> Self {
        Self(text.into_bytes())
    }
}

impl From<&Path> for AgentText {
    fn from(path: &Path) -> Self {
        Self(path.as_os_str().as_bytes().to_vec())
    }
}

impl From<std::path::PathBuf> for AgentText {
    fn from(path: std::path::PathBuf) -> Self {
        Self(path.into_os_string().into_vec())
    }
}

impl PartialEq<str> for AgentText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for AgentText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

/// The escaped form: JSON consumers see what a terminal shows, and read it back with
/// [`AgentText::parse`] (lossless, even for bytes that are not UTF-8).
impl Serialize for AgentText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AgentText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Ok(Self::parse(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(bytes: &[u8]) -> String {
        AgentText::from_bytes(bytes).to_string()
    }

    /// No character that a terminal acts on, or that changes how text around it reads.
    fn assert_inert(text: &str) {
        assert!(
            !text.chars().any(needs_escape),
            "a control or format character is shown raw: {text:?}"
        );
    }

    #[test]
    fn plain_text_is_shown_as_is() {
        for text in [
            "/home/alice/.aws/credentials",
            "Bitwarden CLI",
            "ключ.pem",
            "日本語 ✓ …",
        ] {
            assert_eq!(shown(text.as_bytes()), text);
        }
    }

    #[test]
    fn c0_controls_and_del_are_escaped() {
        assert_eq!(shown(b"a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            shown(b"\x1b[2J\x1b]0;pwned\x07"),
            "\\x1b[2J\\x1b]0;pwned\\x07"
        );
        assert_eq!(shown(b"\x00\x08\x7f"), "\\x00\\x08\\x7f");
    }

    #[test]
    fn c1_controls_are_escaped() {
        // U+009B is a one-character CSI on terminals that honour C1 controls.
        assert_eq!(shown("\u{9b}2J\u{85}".as_bytes()), "\\u{9b}2J\\u{85}");
    }

    #[test]
    fn bidi_and_invisible_format_characters_are_escaped() {
        assert_eq!(
            shown("evil\u{202e}gpj.sh".as_bytes()),
            "evil\\u{202e}gpj.sh"
        );
        for c in [
            '\u{200b}',
            '\u{200e}',
            '\u{200f}',
            '\u{202a}',
            '\u{202b}',
            '\u{202c}',
            '\u{202d}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{061c}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{00ad}',
            '\u{e0041}',
        ] {
            let text = shown(c.to_string().as_bytes());
            assert_eq!(text, format!("\\u{{{:x}}}", u32::from(c)));
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_escaped_one_by_one() {
        assert_eq!(shown(b"a\xffb\xc3"), "a\\xffb\\xc3");
        // An overlong encoding of `/` is three invalid bytes, not a `/`.
        assert_eq!(shown(b"\xe0\x80\xaf"), "\\xe0\\x80\\xaf");
    }

    #[test]
    fn a_backslash_is_escaped_so_escapes_cannot_be_forged() {
        // A name that spells an escape is shown differently from the byte it spells.
        assert_eq!(shown(b"\\x1b"), "\\\\x1b");
        assert_ne!(shown(b"\\x1b"), shown(b"\x1b"));
        assert_eq!(shown(b"\\n"), "\\\\n");
    }

    #[test]
    fn every_rendering_reads_back_to_its_bytes() {
        let mut samples: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"plain".to_vec(),
            b"\\".to_vec(),
            b"\\\\x41\\u{41}\\".to_vec(),
            b"\n\x1b[2J\r\x08\x7f\x00".to_vec(),
            "\u{202e}\u{9b}\u{e007f}é".as_bytes().to_vec(),
            b"\xff\xfe\x80\xc3(".to_vec(),
        ];
        // Every single byte, and every pair of a lead byte with a continuation byte.
        samples.extend((0..=255_u8).map(|byte| vec![byte]));
        samples.extend((0xc0..=0xff_u8).map(|lead| vec![lead, 0x80, b'\\']));
        for bytes in samples {
            let text = shown(&bytes);
            assert_inert(&text);
            assert_eq!(
                AgentText::parse(&text).as_bytes(),
                bytes,
                "{text} reads back"
            );
        }
    }

    #[test]
    fn text_written_before_escaping_reads_as_itself() {
        assert_eq!(AgentText::parse("C:\\q \\x4 \\u{zz}"), "C:\\q \\x4 \\u{zz}");
        assert_eq!(AgentText::parse("raw\u{1b}"), "raw\u{1b}");
    }

    #[test]
    fn messages_keep_their_lines_and_escape_the_rest() {
        assert_eq!(
            escape_lines("bad value\n  fix: \x1b[2J\r"),
            "bad value\n  fix: \\x1b[2J\\r"
        );
    }

    #[test]
    fn json_carries_the_escaped_text_losslessly() {
        let text = AgentText::from_bytes(&b"a\nb\x1b\xff\\"[..]);
        let json = serde_json::to_string(&text).unwrap();
        assert_eq!(json, r#""a\\nb\\x1b\\xff\\\\""#);
        assert_eq!(serde_json::from_str::<AgentText>(&json).unwrap(), text);
        assert_eq!(format!("{text:?}"), r#""a\nb\x1b\xff\\""#);
    }
}
