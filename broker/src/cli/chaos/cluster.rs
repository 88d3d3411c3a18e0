//! The cluster a chaos run works on, and how faults are put into it: local `strom node`
//! processes that the run starts itself (signals), or a docker compose project (docker
//! commands, including network partitions).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A fault kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// kill -9 (or `docker kill`), then start again.
    Kill,
    /// SIGSTOP/SIGCONT (or `docker pause`/`unpause`).
    Pause,
    /// SIGTERM — a controlled shutdown — then start again (or `docker stop`/`start`).
    Term,
    /// Cut off from the other nodes and the clients (`docker network disconnect`).
    Partition,
}

impl FaultKind {
    pub fn parse(s: &str) -> Result<FaultKind, String> {
        Ok(match s {
            "kill" => FaultKind::Kill,
            "pause" => FaultKind::Pause,
            "term" | "restart" => FaultKind::Term,
            "partition" | "disconnect" => FaultKind::Partition,
            other => {
                return Err(format!(
                    "unknown fault {other:?}: kill, pause, term, partition"
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Term => "term",
            FaultKind::Partition => "partition",
        }
    }
}

/// Local node processes, as `strom dev` runs them.
pub struct Local {
    pub exe: PathBuf,
    pub nodes: Vec<LocalNode>,
}

pub struct LocalNode {
    pub id: i32,
    pub config: PathBuf,
    pub log: PathBuf,
    pub admin: String,
    pub child: Option<Child>,
}

/// A docker compose project whose services are `strom-1`, `strom-2`, ….
pub struct Compose {
    pub project: String,
    pub file: PathBuf,
    pub nodes: Vec<i32>,
}

pub enum Cluster {
    Local(Local),
    Compose(Compose),
}

async fn sh(cmd: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("{}: {e}", cmd.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn signal(child: &Child, sig: i32) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a pid this process started.
        unsafe {
            libc_kill(pid as i32, sig);
        }
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const SIGCONT: i32 = 18;
const SIGSTOP: i32 = 19;

impl Local {
    pub async fn start(&mut self, id: i32) -> Result<(), String> {
        let n = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("no node {id}"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .map_err(|e| format!("{}: {e}", n.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(&self.exe)
            .arg("node")
            .arg("--config")
            .arg(&n.config)
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        n.child = Some(child);
        Ok(())
    }

    fn node(&mut self, id: i32) -> Result<&mut LocalNode, String> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or_else(|| format!("no node {id}"))
    }
}

impl Cluster {
    pub fn node_ids(&self) -> Vec<i32> {
        match self {
            Cluster::Local(l) => l.nodes.iter().map(|n| n.id).collect(),
            Cluster::Compose(c) => c.nodes.clone(),
        }
    }

    pub fn supports(&self, kind: FaultKind) -> bool {
        !matches!((self, kind), (Cluster::Local(_), FaultKind::Partition))
    }

    /// Injects a fault into node `id`.
    pub async fn inject(&mut self, kind: FaultKind, id: i32) -> Result<(), String> {
        match self {
            Cluster::Local(l) => {
                let n = l.node(id)?;
                let child = n
                    .child
                    .as_mut()
                    .ok_or_else(|| format!("node {id} is not running"))?;
                match kind {
                    FaultKind::Kill => {
                        signal(child, SIGKILL);
                        let _ = child.wait().await;
                    }
                    FaultKind::Pause => signal(child, SIGSTOP),
                    FaultKind::Term => {
                        signal(child, SIGTERM);
                        if tokio::time::timeout(Duration::from_secs(60), child.wait())
                            .await
                            .is_err()
                        {
                            return Err(format!("node {id} did not stop within 60 s of SIGTERM"));
                        }
                    }
                    FaultKind::Partition => {
                        return Err(
                            "local nodes cannot be partitioned (use a compose cluster)".into()
                        )
                    }
                }
                Ok(())
            }
            Cluster::Compose(c) => {
                let container = c.container(id).await?;
                match kind {
                    FaultKind::Kill => sh(&["docker", "kill", &container]).await.map(drop),
                    FaultKind::Pause => sh(&["docker", "pause", &container]).await.map(drop),
                    FaultKind::Term => sh(&["docker", "stop", "-t", "60", &container])
                        .await
                        .map(drop),
                    FaultKind::Partition => {
                        let net = c.network();
                        sh(&["docker", "network", "disconnect", &net, &container])
                            .await
                            .map(drop)
                    }
                }
            }
        }
    }

    /// Ends a fault of node `id`.
    pub async fn heal(&mut self, kind: FaultKind, id: i32) -> Result<(), String> {
        match self {
            Cluster::Local(l) => match kind {
                FaultKind::Pause => {
                    let n = l.node(id)?;
                    if let Some(child) = &n.child {
                        signal(child, SIGCONT);
                    }
                    Ok(())
                }
                _ => l.start(id).await,
            },
            Cluster::Compose(c) => {
                let container = c.container(id).await?;
                match kind {
                    FaultKind::Pause => sh(&["docker", "unpause", &container]).await.map(drop),
                    FaultKind::Partition => {
                        let (net, alias) = (c.network(), format!("strom-{id}"));
                        sh(&[
                            "docker", "network", "connect", "--alias", &alias, &net, &container,
                        ])
                        .await
                        .map(drop)
                    }
                    _ => sh(&["docker", "start", &container]).await.map(drop),
                }
            }
        }
    }

    /// Whether node `id` says it is ready (`/health/ready` on its admin listener; for a
    /// compose node, docker's health status, which calls the same).
    pub async fn ready(&self, id: i32) -> bool {
        match self {
            Cluster::Local(l) => {
                let Some(n) = l.nodes.iter().find(|n| n.id == id) else {
                    return false;
                };
                http_status(&n.admin, "/health/ready").await == Some(200)
            }
            Cluster::Compose(c) => match c.container(id).await {
                Ok(container) => sh(&[
                    "docker",
                    "inspect",
                    "-f",
                    "{{.State.Health.Status}}",
                    &container,
                ])
                .await
                .is_ok_and(|s| s == "healthy"),
                Err(_) => false,
            },
        }
    }

    /// Stops local nodes (SIGCONT first, for paused ones; then SIGTERM).
    pub async fn stop(&mut self) {
        if let Cluster::Local(l) = self {
            for n in &mut l.nodes {
                if let Some(c) = n.child.as_mut() {
                    signal(c, SIGCONT);
                    signal(c, SIGTERM);
                    if tokio::time::timeout(Duration::from_secs(30), c.wait())
                        .await
                        .is_err()
                    {
                        let _ = c.kill().await;
                    }
                }
            }
        }
    }
}

impl Compose {
    fn compose(&self) -> Vec<String> {
        let file = self.file.display().to_string();
        let v2 = std::process::Command::new("docker")
            .args(["compose", "version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let mut cmd: Vec<String> = if v2 {
            vec!["docker".into(), "compose".into()]
        } else {
            vec!["docker-compose".into()]
        };
        cmd.extend(["-p".into(), self.project.clone(), "-f".into(), file]);
        cmd
    }

    async fn container(&self, id: i32) -> Result<String, String> {
        let mut cmd = self.compose();
        cmd.extend(["ps".into(), "-q".into(), format!("strom-{id}")]);
        let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let c = sh(&args).await?;
        if c.is_empty() {
            return Err(format!(
                "no container for strom-{id} in project {}",
                self.project
            ));
        }
        Ok(c)
    }

    fn network(&self) -> String {
        format!("{}_default", self.project)
    }
}

/// A plain HTTP GET's status code, if it answered within 2 s.
pub async fn http_status(addr: &str, path: &str) -> Option<u16> {
    let get = crate::cli::health::get(addr, path);
    match tokio::time::timeout(Duration::from_secs(2), get).await {
        Ok(Ok((status, _))) => Some(status),
        _ => None,
    }
}
