//! `--cluster` and the NATS flags of `chat` and `broker`: a room spread over
//! several servers.

use std::path::PathBuf;
use std::time::Duration;

use sockbox::chat::cluster::{ClusterConfig, ClusterError, NatsAuth, NatsTls};

use crate::cmd::serve::path_arg;
use crate::exit::usage;

/// Flags of a clustered room.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Cluster (NATS)")]
pub struct ClusterArgs {
    /// Join a room spread over several servers through NATS at this URL (nats://HOST:PORT,
    /// tls://HOST:PORT). Repeat it, or separate URLs with commas, for a NATS cluster. Chat needs
    /// JetStream on the NATS server (`nats-server -js`) for room-wide nicknames.
    #[arg(long, value_name = "URL", value_delimiter = ',')]
    pub cluster: Vec<String>,
    /// The room: servers with the same --room on the same NATS share their clients (letters,
    /// digits, _ and -).
    #[arg(long, value_name = "NAME", default_value = "lobby")]
    pub room: String,
    /// This server's name in /who and announcements (default: HOST:PORT).
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
    /// Authenticate to NATS with this token.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SOCKBOX_NATS_TOKEN",
        hide_env_values = true
    )]
    pub nats_token: Option<String>,
    /// Authenticate to NATS as this user (with --nats-password).
    #[arg(long, value_name = "USER", requires = "nats_password")]
    pub nats_user: Option<String>,
    /// Password for --nats-user.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "SOCKBOX_NATS_PASSWORD",
        hide_env_values = true
    )]
    pub nats_password: Option<String>,
    /// Authenticate to NATS with this credentials file (JWT and NKey seed, as `nsc` writes it).
    #[arg(long, value_name = "FILE", value_parser = path_arg)]
    pub nats_creds: Option<PathBuf>,
    /// Require TLS to the NATS servers (implied by tls:// URLs, --nats-ca and --nats-cert).
    #[arg(long)]
    pub nats_tls: bool,
    /// Trust only the CA certificates in this PEM file for the NATS servers (default: the
    /// system store).
    #[arg(long, value_name = "PEM", value_parser = path_arg)]
    pub nats_ca: Option<PathBuf>,
    /// Client certificate (PEM) for NATS servers that verify clients (needs --nats-key).
    #[arg(long, value_name = "PEM", requires = "nats_key", value_parser = path_arg)]
    pub nats_cert: Option<PathBuf>,
    /// Private key (PEM) for --nats-cert.
    #[arg(long, value_name = "PEM", requires = "nats_cert", value_parser = path_arg)]
    pub nats_key: Option<PathBuf>,
    /// How often this server tells the others it is alive.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::input::duration)]
    pub heartbeat: Duration,
    /// A server not heard from for this long is declared gone and its clients are announced as
    /// having left.
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = crate::input::duration)]
    pub dead_after: Duration,
    /// Bytes waiting to go to NATS at most; past it, lines are dropped and the other servers
    /// tell their clients how many did not arrive (1KiB to 1GiB).
    #[arg(long, value_name = "BYTES", default_value = "8MiB", value_parser = super::flags::queue_limit)]
    pub cluster_queue: usize,
    /// Exit (status 3) when no NATS server answers at start. Without it the server starts split:
    /// it serves its own clients, tells them the room is split, and joins the room when a NATS
    /// server answers.
    #[arg(long, requires = "cluster")]
    pub cluster_required: bool,
}

impl ClusterArgs {
    /// The library's configuration, or `None` without --cluster. The node
    /// name defaults to `host:port` once the port is known.
    pub fn config(&self) -> anyhow::Result<Option<ClusterConfig>> {
        if self.cluster.is_empty() {
            return Ok(None);
        }
        if self.heartbeat.is_zero() {
            return Err(usage("--heartbeat must be more than 0"));
        }
        if self.dead_after <= self.heartbeat {
            return Err(usage(format!(
                "--dead-after ({}) must be longer than --heartbeat ({}): use 3 heartbeats or more",
                humantime::format_duration(self.dead_after),
                humantime::format_duration(self.heartbeat)
            )));
        }
        let mut c = ClusterConfig::new(self.cluster.clone(), self.room.clone());
        if let Some(n) = &self.node_name {
            c.node_name.clone_from(n);
        }
        c.auth = match (&self.nats_token, &self.nats_user, &self.nats_creds) {
            (_, Some(_), Some(_)) | (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(usage(
                    "give one of --nats-token, --nats-user/--nats-password and --nats-creds",
                ));
            }
            (Some(t), None, None) => NatsAuth::Token(t.clone()),
            (None, Some(u), None) => NatsAuth::UserPassword {
                user: u.clone(),
                password: self.nats_password.clone().unwrap_or_default(),
            },
            (None, None, Some(f)) => NatsAuth::CredsFile(f.clone()),
            (None, None, None) => NatsAuth::None,
        };
        let tls_urls = self.cluster.iter().any(|u| u.starts_with("tls://"));
        if self.nats_tls || tls_urls || self.nats_ca.is_some() || self.nats_cert.is_some() {
            c.tls = Some(NatsTls {
                ca: self.nats_ca.clone(),
                client: self.nats_cert.clone().zip(self.nats_key.clone()),
            });
        }
        c.heartbeat = self.heartbeat;
        c.dead_after = self.dead_after;
        c.queue_limit = self.cluster_queue;
        c.start_split = !self.cluster_required;
        Ok(Some(c))
    }
}

/// The CLI's word on a cluster error: the flag to fix, and the exit code
/// class (usage for what the user typed, system otherwise).
pub fn explain(e: ClusterError) -> anyhow::Error {
    match e {
        ClusterError::Room(_) => usage(format!("--room: {e}")),
        ClusterError::NoServers | ClusterError::Url { .. } => usage(format!("--cluster: {e}")),
        ClusterError::Creds { .. } => usage(format!("--nats-creds: {e}")),
        ClusterError::Tls(_) => usage(format!("--nats-ca/--nats-cert/--nats-key: {e}")),
        ClusterError::Store { .. } => anyhow::anyhow!(
            "{e}: start nats-server with -js (or a jetstream {{}} block in its configuration)"
        ),
        ClusterError::Connect { .. } => anyhow::anyhow!(
            "{e}; check --cluster, and --nats-token/--nats-user/--nats-creds/--nats-tls"
        ),
        other => anyhow::anyhow!(other),
    }
}
