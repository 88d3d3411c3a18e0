//! `kafka-metadata-quorum`: Kafka's `MetadataQuorumCommand` — `describe --status` and
//! `describe --replication` of the metadata quorum (KIP-595, KIP-836), with its output.

use clap::{Parser, Subcommand};
use strom_client::{Admin, QuorumDescription, QuorumReplica};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-metadata-quorum",
    about = "Describe the metadata quorum (Kafka's kafka-metadata-quorum, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// A Kafka server to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// A controller to connect to (strom's nodes are controllers and brokers: any
    /// node's Kafka address serves).
    #[arg(long)]
    bootstrap_controller: Option<String>,
    /// Property file with client configs (accepted, not read: strom's tools speak
    /// PLAINTEXT).
    #[arg(long)]
    command_config: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Describe the metadata quorum.
    Describe {
        /// The leader, epoch, high watermark, voters and observers.
        #[arg(long)]
        status: bool,
        /// Each replica's log end offset, lag and last fetch.
        #[arg(long)]
        replication: bool,
        /// Times as "N ms ago" instead of timestamps (with --replication).
        #[arg(long)]
        human_readable: bool,
    },
}

fn status(cluster_id: &str, q: &QuorumDescription) -> String {
    let leader = q.voters.iter().find(|v| v.id == q.leader_id);
    let leader_end = leader.map_or(q.high_watermark, |l| l.log_end_offset);
    // The replica furthest behind the leader (voters and observers alike), as Kafka's
    // tool picks it; the lag time is the leader's catch-up time minus its.
    let laggard = q
        .voters
        .iter()
        .chain(&q.observers)
        .max_by_key(|r| leader_end - r.log_end_offset);
    let max_lag = laggard.map_or(0, |r| (leader_end - r.log_end_offset).max(0));
    let max_lag_ms = match (laggard, leader) {
        (Some(r), Some(l)) if r.id == l.id => 0,
        (Some(r), Some(l))
            if r.last_caught_up_timestamp >= 0 && l.last_caught_up_timestamp >= 0 =>
        {
            l.last_caught_up_timestamp - r.last_caught_up_timestamp
        }
        _ => -1,
    };
    let ids = |rs: &[QuorumReplica]| {
        rs.iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "ClusterId:              {cluster_id}\n\
         LeaderId:               {}\n\
         LeaderEpoch:            {}\n\
         HighWatermark:          {}\n\
         MaxFollowerLag:         {max_lag}\n\
         MaxFollowerLagTimeMs:   {max_lag_ms}\n\
         CurrentVoters:          [{}]\n\
         CurrentObservers:       [{}]\n",
        q.leader_id,
        q.leader_epoch,
        q.high_watermark,
        ids(&q.voters),
        ids(&q.observers),
    )
}

fn replication(q: &QuorumDescription, human: bool, now_ms: i64) -> String {
    let leader_end = q
        .voters
        .iter()
        .find(|v| v.id == q.leader_id)
        .map_or(q.high_watermark, |l| l.log_end_offset);
    let time = |ts: i64| {
        if ts < 0 {
            "-1".to_string()
        } else if human {
            format!("{} ms ago", (now_ms - ts).max(0))
        } else {
            ts.to_string()
        }
    };
    let row = |r: &QuorumReplica, status: &str| {
        vec![
            r.id.to_string(),
            r.log_end_offset.to_string(),
            (leader_end - r.log_end_offset).max(0).to_string(),
            time(r.last_fetch_timestamp),
            time(r.last_caught_up_timestamp),
            status.to_string(),
        ]
    };
    // The leader first, then the other voters, then the observers (Kafka's order).
    let mut rows = Vec::new();
    rows.extend(
        q.voters
            .iter()
            .filter(|v| v.id == q.leader_id)
            .map(|v| row(v, "Leader")),
    );
    rows.extend(
        q.voters
            .iter()
            .filter(|v| v.id != q.leader_id)
            .map(|v| row(v, "Follower")),
    );
    rows.extend(q.observers.iter().map(|o| row(o, "Observer")));
    super::pretty_table(
        &[
            "NodeId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status",
        ],
        &rows,
    )
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-metadata-quorum", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(bootstrap) = a.bootstrap_server.or(a.bootstrap_controller) else {
        eprintln!("One of --bootstrap-server or --bootstrap-controller must be specified");
        return 1;
    };
    let Some(Cmd::Describe {
        status: want_status,
        replication: want_replication,
        human_readable,
    }) = a.cmd
    else {
        eprintln!(
            "kafka-metadata-quorum: a command is required: describe --status | --replication"
        );
        return 1;
    };
    if want_status == want_replication {
        eprintln!("One of --status or --replication must be specified with describe sub-command");
        return 1;
    }
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    let q = match admin.describe_quorum().await {
        Ok(q) => q,
        Err(e) => {
            eprintln!("{}", super::message(&e));
            return 1;
        }
    };
    if want_status {
        let cluster_id = match admin.describe_cluster().await {
            Ok(c) => c.cluster_id.unwrap_or_default(),
            Err(e) => {
                eprintln!("{}", super::message(&e));
                return 1;
            }
        };
        print!("{}", status(&cluster_id, &q));
    } else {
        print!(
            "{}",
            replication(&q, human_readable, strom_common::clock::now_ms())
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i32, end: i64, caught_up: i64) -> QuorumReplica {
        QuorumReplica {
            id,
            log_end_offset: end,
            last_fetch_timestamp: caught_up,
            last_caught_up_timestamp: caught_up,
        }
    }

    fn quorum() -> QuorumDescription {
        QuorumDescription {
            leader_id: 2,
            leader_epoch: 7,
            high_watermark: 100,
            voters: vec![
                replica(1, 95, 900),
                replica(2, 100, 1000),
                replica(3, 100, 1000),
            ],
            observers: vec![],
        }
    }

    #[test]
    fn status_is_kafkas_lines() {
        let s = status("abc", &quorum());
        assert_eq!(
            s,
            "ClusterId:              abc\nLeaderId:               2\nLeaderEpoch:            7\n\
             HighWatermark:          100\nMaxFollowerLag:         5\nMaxFollowerLagTimeMs:   100\n\
             CurrentVoters:          [1,2,3]\nCurrentObservers:       []\n"
        );
    }

    #[test]
    fn replication_lists_the_leader_first_with_lags() {
        let t = replication(&quorum(), false, 2000);
        let lines: Vec<Vec<&str>> = t
            .lines()
            .map(|l| {
                l.split('\t')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(lines[0][0], "NodeId");
        assert_eq!(lines[1], ["2", "100", "0", "1000", "1000", "Leader"]);
        assert_eq!(lines[2], ["1", "95", "5", "900", "900", "Follower"]);
        assert_eq!(lines[3][5], "Follower");
        let human = replication(&quorum(), true, 2000);
        assert!(human.contains("1100 ms ago"), "{human}");
    }
}
