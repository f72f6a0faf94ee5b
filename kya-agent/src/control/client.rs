//! The CLI's side of the control socket (blocking: the CLI does one request at a time).
use std::{
    io::{BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
};

use super::protocol::{Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot reach kya-agent at {socket}: {source}; is the daemon running? Start it with \
         `kya-agent` (or `systemctl start kya-agent`), or pass --socket PATH"
    )]
    Connect {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "kya-agent's control socket {socket} refused this process: agent processes cannot use \
         the control socket"
    )]
    Refused { socket: PathBuf },
    #[error("talking to kya-agent at {socket}")]
    Io {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kya-agent at {socket} sent an unreadable answer")]
    Decode {
        socket: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// Sends one request and waits for its response.
pub fn call(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let mut answers = follow(socket, request)?;
    answers.receive()?.ok_or_else(|| ClientError::Io {
        socket: socket.to_owned(),
        source: std::io::ErrorKind::UnexpectedEof.into(),
    })
}

/// The answers to a request that the daemon answers more than once ([`Request::Watch`]), read
/// as they come.
pub struct Answers {
    socket: PathBuf,
    reader: BufReader<UnixStream>,
}

impl Answers {
    /// Waits for the next answer; `None` once the daemon closed the connection.
    pub fn receive(&mut self) -> Result<Option<Response>, ClientError> {
        let mut answer = String::new();
        let read = self
            .reader
            .read_line(&mut answer)
            .map_err(|source| ClientError::Io {
                socket: self.socket.clone(),
                source,
            })?;
        if read == 0 {
            return Ok(None);
        }
        serde_json::from_str(&answer)
            .map(Some)
            .map_err(|source| ClientError::Decode {
                socket: self.socket.clone(),
                source,
            })
    }
}

/// Sends one request and returns a reader of its answers.
pub fn follow(socket: &Path, request: &Request) -> Result<Answers, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| {
        // kya's kernel programs refuse agents the socket with EPERM.
        if source.raw_os_error() == Some(libc::EPERM) {
            ClientError::Refused {
                socket: socket.to_owned(),
            }
        } else {
            ClientError::Connect {
                socket: socket.to_owned(),
                source,
            }
        }
    })?;
    let mut line = serde_json::to_vec(request).expect("requests always serialize");
    line.push(b'\n');
    stream.write_all(&line).map_err(|source| ClientError::Io {
        socket: socket.to_owned(),
        source,
    })?;
    Ok(Answers {
        socket: socket.to_owned(),
        reader: BufReader::new(stream),
    })
}
