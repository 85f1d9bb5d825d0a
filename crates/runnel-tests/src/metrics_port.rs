//! The broker's HTTP port (`--metrics-listen`): a broker serving it, plain HTTP/1.1 requests
//! and sample look-ups in the exposition.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::{free_port, TestBroker};

/// Starts a broker serving metrics on a free port, with `--override key=value` per pair.
pub fn broker_with_metrics(overrides: &[(&str, &str)]) -> (TestBroker, u16) {
    let port = free_port();
    let mut args = vec!["--metrics-listen".to_string(), format!("127.0.0.1:{port}")];
    for (key, value) in overrides {
        args.push("--override".into());
        args.push(format!("{key}={value}"));
    }
    (TestBroker::start_with_args(args), port)
}

/// Sends `request` verbatim to the metrics port: (status line, whole head, body).
pub fn http_raw(port: u16, request: &str) -> std::io::Result<(String, String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        head.to_string(),
        body.to_string(),
    ))
}

/// `GET path`: (status line, body), or the I/O error (a port closing during shutdown).
pub fn try_http_get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    http_raw(port, &request).map(|(status, _, body)| (status, body))
}

/// `GET path` on a port that must answer: (status line, body).
pub fn http_get(port: u16, path: &str) -> (String, String) {
    try_http_get(port, path).expect("the metrics port answers")
}

/// The value of the sample `name{labels}` (labels exactly as exposed), if present.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().expect("numeric sample value"))
    })
}
