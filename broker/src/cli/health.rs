//! `strom health [live|ready]`: asks a node's admin listener for `/health/live` or
//! `/health/ready` and exits 0 on 200, 1 otherwise, printing the answer — a container
//! health check for an image that has no curl (the compose file's healthcheck).

use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Args)]
pub struct HealthArgs {
    /// Which check: live (the process answers) or ready (registered, unfenced, caught up).
    #[arg(default_value = "ready", value_parser = ["live", "ready"])]
    check: String,
    /// The node's admin listener (its `admin.listener` setting; 0.0.0.0 means this host).
    #[arg(long, env = "STROM_ADMIN_LISTENER", default_value = "127.0.0.1:9644")]
    admin: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

pub async fn run(a: HealthArgs) -> i32 {
    let addr = match a.admin.strip_prefix("0.0.0.0:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => a.admin.clone(),
    };
    let path = format!("/health/{}", a.check);
    match tokio::time::timeout(Duration::from_millis(a.timeout_ms), get(&addr, &path)).await {
        Ok(Ok((200, body))) => {
            println!("{}", body.trim_end());
            0
        }
        Ok(Ok((status, body))) => {
            println!("{status} {}", body.trim_end());
            1
        }
        Ok(Err(e)) => {
            eprintln!("cannot ask {addr}{path}: {e}");
            1
        }
        Err(_) => {
            eprintln!("{addr}{path} did not answer within {} ms", a.timeout_ms);
            1
        }
    }
}

/// A plain HTTP/1.0 GET: the status code and the body.
pub(super) async fn get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {head:?}")))?;
    Ok((status, body.to_string()))
}
