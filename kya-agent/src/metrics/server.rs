//! The `/metrics` endpoint: a deliberately small HTTP/1.1 server, one request per connection,
//! and the parser of the `--metrics` listen address.
//!
//! It only has to answer Prometheus scrapes, so it reads a bounded request head within a
//! deadline, answers `GET /metrics` (and `HEAD`), and closes. Anything a client does slowly or
//! at length costs it the connection, never the daemon more than one task and 8 KiB.
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::timeout,
};

use super::{DEFAULT_METRICS_ADDR, Metrics};

/// Largest request head (request line and headers) accepted, in bytes.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Time a client has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Time a client has to take the response.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Time spent reading what a client still sends after the response, so that closing the
/// socket with unread bytes does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(1);

/// Connections served at once; further clients wait in the listen backlog.
const MAX_CONNECTIONS: usize = 32;

/// The text exposition format, version 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What bounds one connection. The constants above in production; shorter in tests.
#[derive(Clone, Copy, Debug)]
struct Limits {
    head_timeout: Duration,
    max_head: usize,
}

/// Serves `GET /metrics` on `listener` for as long as the task runs. An error on one
/// connection ends that connection only; a failing `accept` (descriptor exhaustion) is logged
/// and retried.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) {
    serve_with(
        listener,
        metrics,
        Limits {
            head_timeout: HEAD_TIMEOUT,
            max_head: MAX_HEAD_BYTES,
        },
    )
    .await;
}

async fn serve_with(listener: TcpListener, metrics: Arc<Metrics>, limits: Limits) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = Arc::clone(&slots)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(error = %error, "accepting a metrics connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            if let Err(error) = handle_connection(stream, &metrics, limits).await {
                tracing::debug!(error = %error, "metrics connection ended with an error");
            }
            drop(slot);
        });
    }
}

async fn handle_connection(
    mut stream: TcpStream,
    metrics: &Metrics,
    limits: Limits,
) -> std::io::Result<()> {
    let response = match timeout(limits.head_timeout, read_head(&mut stream, limits.max_head)).await
    {
        Err(_elapsed) => Response::text(
            Status::RequestTimeout,
            format!(
                "request head not received within {} s\n",
                limits.head_timeout.as_secs_f32()
            ),
        ),
        Ok(Err(error)) => return Err(error),
        Ok(Ok(Head::Closed)) => return Ok(()),
        Ok(Ok(Head::TooLarge)) => Response::text(
            Status::HeadTooLarge,
            format!("request head larger than {} bytes\n", limits.max_head),
        ),
        Ok(Ok(Head::Complete(head))) => respond(&head, metrics),
    };
    timeout(WRITE_TIMEOUT, stream.write_all(&response.into_bytes()))
        .await
        .map_err(|_elapsed| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.shutdown().await?;
    // The answer is sent; wait briefly for the client to close, discarding whatever it sends.
    let _ = timeout(LINGER, async {
        let mut sink = [0_u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(1..)) {}
    })
    .await;
    Ok(())
}

enum Head {
    /// The request line and headers, without the blank line that ends them.
    Complete(Vec<u8>),
    TooLarge,
    /// The client closed the connection before finishing its request head.
    Closed,
}

async fn read_head(stream: &mut TcpStream, max_head: usize) -> std::io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(Head::Closed);
        }
        let searched_to = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..read]);
        if let Some(end) = head_end(&head, searched_to) {
            if end > max_head {
                return Ok(Head::TooLarge);
            }
            head.truncate(end);
            return Ok(Head::Complete(head));
        }
        if head.len() > max_head {
            return Ok(Head::TooLarge);
        }
    }
}

/// Where the head ends (just past its blank line), searching from `from`. Bare `\n` line ends
/// are tolerated, as RFC 9112 allows.
fn head_end(bytes: &[u8], from: usize) -> Option<usize> {
    // Skip the empty lines a client may send before the request line.
    let start = bytes
        .iter()
        .position(|&byte| byte != b'\r' && byte != b'\n')?;
    let from = from.max(start);
    (from..bytes.len()).find_map(|index| {
        let rest = &bytes[index..];
        if rest.starts_with(b"\r\n\r\n") {
            Some(index + 4)
        } else if rest.starts_with(b"\n\n") {
            Some(index + 2)
        } else if rest.starts_with(b"\n\r\n") {
            Some(index + 3)
        } else {
            None
        }
    })
}

/// The answer to a complete request head.
fn respond(head: &[u8], metrics: &Metrics) -> Response {
    let Ok(head) = std::str::from_utf8(head) else {
        return Response::text(Status::BadRequest, "request head is not UTF-8\n".to_owned());
    };
    let request_line = head
        .trim_start_matches(['\r', '\n'])
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Response::text(
            Status::BadRequest,
            "malformed request line; expected `GET /metrics HTTP/1.1`\n".to_owned(),
        );
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") {
        return if version.starts_with("HTTP/") {
            Response::text(
                Status::VersionNotSupported,
                "only HTTP/1.0 and HTTP/1.1 are served\n".to_owned(),
            )
        } else {
            Response::text(
                Status::BadRequest,
                "malformed request line; expected `GET /metrics HTTP/1.1`\n".to_owned(),
            )
        };
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => {
            return Response::text(
                Status::MethodNotAllowed,
                format!("method {method} not allowed; use GET\n"),
            );
        }
    };
    let path = target.split_once('?').map_or(target, |(path, _query)| path);
    let response = if path == "/metrics" {
        Response {
            status: Status::Ok,
            content_type: CONTENT_TYPE,
            body: metrics.render(),
            head_only: false,
        }
    } else {
        Response::text(
            Status::NotFound,
            "not found; metrics are served at /metrics\n".to_owned(),
        )
    };
    Response {
        head_only,
        ..response
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    HeadTooLarge,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Self::Ok => "200 OK",
            Self::BadRequest => "400 Bad Request",
            Self::NotFound => "404 Not Found",
            Self::MethodNotAllowed => "405 Method Not Allowed",
            Self::RequestTimeout => "408 Request Timeout",
            Self::HeadTooLarge => "431 Request Header Fields Too Large",
            Self::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }
}

struct Response {
    status: Status,
    content_type: &'static str,
    body: String,
    /// A `HEAD` request: the headers of the answer, without its body.
    head_only: bool,
}

impl Response {
    fn text(status: Status, body: String) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body,
            head_only: false,
        }
    }

    fn into_bytes(self) -> Vec<u8> {
        let allow = if self.status == Status::MethodNotAllowed {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        };
        let mut bytes = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
            self.status.line(),
            self.content_type,
            self.body.len(),
        )
        .into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(self.body.as_bytes());
        }
        bytes
    }
}

/// Parses a `--metrics` value: `ADDR:PORT` (`127.0.0.1:9464`, `0.0.0.0:9464`), `[V6]:PORT`
/// (`[::1]:9464`), or `off` (no endpoint: `Ok(None)`). Host names are refused: the daemon
/// starts before name resolution can be trusted, and the address must be exactly what is
/// exposed.
pub fn parse_listen(value: &str) -> Result<Option<SocketAddr>, String> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match value.parse::<SocketAddr>() {
        Ok(address) if address.port() == 0 => Err(format!(
            "`{value}`: port 0 would listen on a random port that Prometheus cannot be pointed \
             at; give a fixed port, such as {DEFAULT_METRICS_ADDR}"
        )),
        Ok(address) => Ok(Some(address)),
        Err(_) => Err(explain_listen(value)),
    }
}

fn explain_listen(value: &str) -> String {
    const FORMS: &str = "expected ADDR:PORT (such as 127.0.0.1:9464), [IPV6]:PORT (such as \
                         [::1]:9464) or `off`";
    if value.trim().is_empty() {
        return format!("empty metrics address; {FORMS}");
    }
    if value.trim() != value {
        return format!("`{value}` has spaces around it; remove them");
    }
    match value.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => {
            return format!("`{value}` has no port; write {ip}:9464 (or another port)");
        }
        Ok(IpAddr::V6(ip)) => {
            return format!(
                "`{value}` is read as one IPv6 address without a port; put the address in \
                 brackets and the port after them, such as [{ip}]:9464"
            );
        }
        Err(_) => {}
    }
    let Some((host, port)) = value.rsplit_once(':') else {
        return format!("`{value}` is not an address; {FORMS}");
    };
    if port.parse::<u16>().is_err() {
        return format!("`{value}`: `{port}` is not a port number (1-65535); {FORMS}");
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        // A valid address and port that still failed: brackets on IPv4, or missing on IPv6.
        return format!(
            "`{value}`: write an IPv4 address without brackets (127.0.0.1:{port}) and an IPv6 \
             address in brackets ([::1]:{port})"
        );
    }
    format!(
        "`{value}`: `{host}` is not an IP address (host names are not resolved here); give an \
         address, such as 127.0.0.1:{port} for this host only or 0.0.0.0:{port} for every \
         interface"
    )
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read as _, Write as _},
        net::TcpStream as StdTcpStream,
    };

    use super::*;
    use crate::metrics::AgentLabels;

    fn metrics() -> Arc<Metrics> {
        let approvers = vec!["alice".to_owned()];
        Arc::new(Metrics::new(&[AgentLabels {
            name: "coder",
            approvers: &approvers,
        }]))
    }

    /// Starts a server with `limits` on an ephemeral loopback port.
    async fn start(limits: Limits) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding an ephemeral loopback port");
        let address = listener
            .local_addr()
            .expect("a bound listener has an address");
        tokio::spawn(serve_with(listener, metrics(), limits));
        address
    }

    async fn start_default() -> SocketAddr {
        start(Limits {
            head_timeout: HEAD_TIMEOUT,
            max_head: MAX_HEAD_BYTES,
        })
        .await
    }

    /// Sends `request` with a blocking client, as a scraper would, and returns the whole answer.
    async fn exchange(address: SocketAddr, request: Vec<u8>) -> String {
        tokio::task::spawn_blocking(move || {
            let mut stream = StdTcpStream::connect(address).expect("connecting to the server");
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("setting a read timeout");
            stream.write_all(&request).expect("sending the request");
            let mut answer = String::new();
            stream
                .read_to_string(&mut answer)
                .expect("reading the answer until the server closes");
            answer
        })
        .await
        .expect("the client thread panicked")
    }

    fn split(answer: &str) -> (&str, &str) {
        answer
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("expected a head and a body, got {answer:?}"))
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn get_metrics_answers_the_exposition() {
        let address = start_default().await;
        let answer = exchange(
            address,
            b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n".to_vec(),
        )
        .await;
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(
            header(head, "Content-Type"),
            Some(CONTENT_TYPE),
            "expected the 0.0.4 text format, got {head}"
        );
        assert_eq!(header(head, "Connection"), Some("close"), "{head}");
        assert_eq!(
            header(head, "Content-Length"),
            Some(body.len().to_string().as_str()),
            "{head}"
        );
        assert!(
            body.contains("kya_denied_total{agent=\"coder\",kind=\"file-open\"} 0\n"),
            "expected the pre-registered denial series in:\n{body}"
        );
        assert!(body.contains("# TYPE kya_build_info gauge\n"), "{body}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn query_strings_and_http_1_0_are_served() {
        let address = start_default().await;
        let answer = exchange(address, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n".to_vec()).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        let answer = exchange(address, b"GET /metrics HTTP/1.1\n\n".to_vec()).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn head_answers_headers_only() {
        let address = start_default().await;
        let answer = exchange(address, b"HEAD /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        let (head, body) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(body.is_empty(), "expected no body for HEAD, got {body:?}");
        let length: usize = header(head, "Content-Length")
            .and_then(|length| length.parse().ok())
            .unwrap_or_else(|| panic!("expected a Content-Length in {head}"));
        assert!(length > 0, "{head}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_paths_are_not_found() {
        let address = start_default().await;
        for target in ["/", "/metricsx", "/metrics/", "/favicon.ico"] {
            let answer = exchange(
                address,
                format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
            )
            .await;
            let (head, _) = split(&answer);
            assert!(
                head.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{target}: {head}"
            );
            assert_eq!(header(head, "Connection"), Some("close"), "{head}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn other_methods_are_not_allowed() {
        let address = start_default().await;
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "get"] {
            let answer = exchange(
                address,
                format!("{method} /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").into_bytes(),
            )
            .await;
            let (head, _) = split(&answer);
            assert!(
                head.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
                "{method}: {head}"
            );
            assert_eq!(header(head, "Allow"), Some("GET, HEAD"), "{head}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn malformed_requests_are_refused() {
        let address = start_default().await;
        for (request, status) in [
            (&b"GET /metrics\r\n\r\n"[..], "400"),
            (b"GET  /metrics HTTP/1.1\r\n\r\n", "400"),
            (b"GET /metrics SPDY/3\r\n\r\n", "400"),
            (b"GET /metrics HTTP/2.0\r\n\r\n", "505"),
            (b"GET /metrics\xff HTTP/1.1\r\n\r\n", "400"),
        ] {
            let answer = exchange(address, request.to_vec()).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{:?}: {answer}",
                String::from_utf8_lossy(request)
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn oversized_heads_are_refused() {
        let address = start_default().await;
        let mut request = b"GET /metrics HTTP/1.1\r\nX-Padding: ".to_vec();
        request.resize(MAX_HEAD_BYTES + 100, b'a');
        let answer = exchange(address, request.clone()).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 "),
            "expected 431 for a head without end past the limit, got {answer}"
        );
        request.extend_from_slice(b"\r\n\r\n");
        let answer = exchange(address, request).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 "),
            "expected 431 for a complete head past the limit, got {answer}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_heads_time_out() {
        let address = start(Limits {
            head_timeout: Duration::from_millis(300),
            max_head: MAX_HEAD_BYTES,
        })
        .await;
        let answer = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n".to_vec()).await;
        assert!(
            answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "expected 408 for an unfinished head, got {answer}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_client_does_not_block_others() {
        let address = start(Limits {
            head_timeout: Duration::from_secs(30),
            max_head: MAX_HEAD_BYTES,
        })
        .await;
        let _silent = tokio::net::TcpStream::connect(address)
            .await
            .expect("connecting");
        let answer = exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n".to_vec()).await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }

    #[test]
    fn head_end_finds_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n", 0), Some(16));
        assert_eq!(head_end(b"\r\nGET / HTTP/1.1\r\n\r\n", 0), Some(20));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n", 0), None);
        assert_eq!(head_end(b"\r\n\r\n", 0), None);
    }

    #[test]
    fn listen_addresses_parse() {
        assert_eq!(
            parse_listen("127.0.0.1:9464"),
            Ok(Some("127.0.0.1:9464".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("0.0.0.0:80"),
            Ok(Some("0.0.0.0:80".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("[::1]:9464"),
            Ok(Some("[::1]:9464".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("[fe80::1%2]:9464").map(|address| address.map(|a| a.port())),
            Ok(Some(9464))
        );
        assert_eq!(parse_listen("off"), Ok(None));
        assert_eq!(parse_listen("OFF"), Ok(None));
        assert_eq!(
            parse_listen(super::super::DEFAULT_METRICS_ADDR),
            Ok(Some("127.0.0.1:9464".parse().unwrap()))
        );
    }

    #[test]
    fn listen_address_errors_name_the_value_and_the_fix() {
        for (value, expected) in [
            ("", "empty metrics address"),
            ("  ", "empty metrics address"),
            (" 127.0.0.1:9464", "remove them"),
            ("127.0.0.1", "has no port; write 127.0.0.1:9464"),
            ("::1", "brackets"),
            ("::1:9464", "brackets"),
            ("127.0.0.1:0", "port 0"),
            ("[::1]:0", "port 0"),
            ("127.0.0.1:99999", "`99999` is not a port number"),
            ("127.0.0.1:http", "`http` is not a port number"),
            ("[127.0.0.1]:9464", "IPv4 address without brackets"),
            ("localhost:9464", "`localhost` is not an IP address"),
            ("metrics.example:9464", "127.0.0.1:9464"),
            ("on", "expected ADDR:PORT"),
        ] {
            let error =
                parse_listen(value).expect_err(&format!("expected `{value}` to be refused"));
            assert!(
                error.contains(expected),
                "error for {value:?} should contain {expected:?}: {error}"
            );
            if !value.trim().is_empty() {
                assert!(
                    error.contains(&format!("`{value}`")),
                    "error for {value:?} should name the value: {error}"
                );
            }
        }
    }
}
