//! The `strom` binary under Kafka's tool names (`kafka-topics`, `kafka-topics.sh`, …):
//! a link with such a name runs the tool of that name with Kafka's flags and output, so
//! a tutorial's commands run unchanged. `strom install-tools DIR` makes the links.

mod configs;
mod console;
mod consumer_groups;
mod leader_election;
mod metadata_quorum;
mod perf;
mod reassign_partitions;
mod topics;
mod transactions;

use std::path::Path;

use strom_client::ClientError;

/// The tools strom answers to, by Kafka's name (without `.sh`).
pub const TOOLS: &[&str] = &[
    "kafka-topics",
    "kafka-consumer-groups",
    "kafka-console-consumer",
    "kafka-console-producer",
    "kafka-configs",
    "kafka-metadata-quorum",
    "kafka-leader-election",
    "kafka-reassign-partitions",
    "kafka-transactions",
    "kafka-producer-perf-test",
    "kafka-consumer-perf-test",
];

/// The Kafka tool `argv0` names (`/usr/bin/kafka-topics.sh` → `kafka-topics`), if any.
pub fn tool_of(argv0: &str) -> Option<&'static str> {
    let base = Path::new(argv0).file_name()?.to_str()?;
    let name = base.strip_suffix(".sh").unwrap_or(base);
    TOOLS.iter().copied().find(|t| *t == name)
}

/// Runs `tool` with `args` (after the program name); the exit code.
pub async fn run(tool: &str, args: Vec<String>) -> i32 {
    match tool {
        "kafka-topics" => topics::run(args).await,
        "kafka-consumer-groups" => consumer_groups::run(args).await,
        "kafka-console-consumer" => console::consumer(args).await,
        "kafka-console-producer" => console::producer(args).await,
        "kafka-configs" => configs::run(args).await,
        "kafka-metadata-quorum" => metadata_quorum::run(args).await,
        "kafka-leader-election" => leader_election::run(args).await,
        "kafka-reassign-partitions" => reassign_partitions::run(args).await,
        "kafka-transactions" => transactions::run(args).await,
        "kafka-producer-perf-test" => perf::producer(args).await,
        "kafka-consumer-perf-test" => perf::consumer(args).await,
        _ => {
            eprintln!("{tool} is not a tool strom provides");
            2
        }
    }
}

/// A client of `bootstrap`, or the exit code after the connection error was printed.
async fn connect(bootstrap: String) -> Result<strom_client::Client, i32> {
    crate::cli::connect(&crate::cli::Conn {
        bootstrap_server: bootstrap,
    })
    .await
}

/// A broker's error as Kafka's tools show it: its message, else the error's description.
fn message(e: &ClientError) -> String {
    match e {
        ClientError::Kafka(k) => k
            .message
            .clone()
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| k.to_string()),
        other => other.to_string(),
    }
}

/// A tool's arguments, parsed with `name` as the program name; on bad usage (or
/// `--help`) the parser's text is printed and the exit code returned (Kafka's tools exit
/// 1 on bad usage).
fn parse<T: clap::Parser>(name: &str, args: Vec<String>) -> Result<T, i32> {
    T::try_parse_from(std::iter::once(name.to_string()).chain(args)).map_err(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        code
    })
}

/// Kafka's tables (ToolsUtils.prettyPrintTable): each value padded to its column's
/// width, then a tab; one line per row, the headers first.
fn pretty_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, v) in r.iter().enumerate() {
            widths[i] = widths[i].max(v.len());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<w$}\t", w = widths[i]))
            .collect::<String>()
    };
    let mut out = line(headers.to_vec());
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// `strom install-tools DIR`: a symbolic link to this executable for every tool name,
/// with and without `.sh`.
pub fn install(dir: &Path) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find the strom executable: {e}");
            return 1;
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("cannot create {}: {e}", dir.display());
        return 1;
    }
    for tool in TOOLS {
        for name in [tool.to_string(), format!("{tool}.sh")] {
            let link = dir.join(&name);
            if link.symlink_metadata().is_ok() {
                if let Err(e) = std::fs::remove_file(&link) {
                    eprintln!("cannot replace {}: {e}", link.display());
                    return 1;
                }
            }
            if let Err(e) = std::os::unix::fs::symlink(&exe, &link) {
                eprintln!("cannot link {}: {e}", link.display());
                return 1;
            }
            println!("{} -> {}", link.display(), exe.display());
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tools_are_found_by_their_names_with_or_without_sh() {
        assert_eq!(
            tool_of("/opt/kafka/bin/kafka-topics.sh"),
            Some("kafka-topics")
        );
        assert_eq!(tool_of("kafka-topics"), Some("kafka-topics"));
        assert_eq!(tool_of("/usr/bin/strom"), None);
        assert_eq!(tool_of("kafka-nonsense"), None);
    }
}
