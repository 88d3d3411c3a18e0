//! The runtime seam: what differs between a real process and a node simulated under
//! madsim, kept in this one file. Real nodes bind the internal gRPC listener on a TCP
//! socket and keep the Raft log in sled under the data dir; simulated nodes let
//! madsim-tonic bind the address and must be given a simulated Raft backend (sled's
//! threads cannot run in the simulator).

use std::net::SocketAddr;
use std::sync::Arc;

use strom_common::watch;
use strom_controller::quorum::Controller;
use strom_controller::store::Backend;
#[cfg(not(madsim))]
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::NodeConfig;
use crate::node::{NodeEnv, StartError};

impl NodeEnv {
    /// The real file system and sled.
    #[cfg(not(madsim))]
    pub fn real() -> NodeEnv {
        NodeEnv {
            storage: Arc::new(crate::log::FsStorage),
            raft_backend: None,
            on_metadata_applied: None,
            on_image_published: None,
            connection_resets: None,
        }
    }
}

#[cfg(not(madsim))]
pub fn default_raft_backend(cfg: &NodeConfig) -> Result<Arc<dyn Backend>, StartError> {
    let dir = cfg.data_dir.join("controller");
    let b = strom_controller::store::SledBackend::open(&dir)
        .map_err(|e| StartError::Io(dir.display().to_string(), e))?;
    Ok(Arc::new(b))
}

#[cfg(madsim)]
pub fn default_raft_backend(_cfg: &NodeConfig) -> Result<Arc<dyn Backend>, StartError> {
    Err(StartError::Config(
        "simulated nodes need a raft backend in NodeEnv".into(),
    ))
}

/// The internal gRPC listener (controller service and Raft transport).
pub struct InternalListener {
    addr: SocketAddr,
    #[cfg(not(madsim))]
    sock: TcpListener,
}

impl InternalListener {
    pub async fn bind(addr: &str) -> Result<InternalListener, StartError> {
        #[cfg(not(madsim))]
        {
            let sock = TcpListener::bind(addr)
                .await
                .map_err(|e| StartError::Io(addr.to_string(), e))?;
            let local = sock
                .local_addr()
                .map_err(|e| StartError::Io(addr.to_string(), e))?;
            Ok(InternalListener { addr: local, sock })
        }
        #[cfg(madsim)]
        {
            let local = addr
                .parse()
                .map_err(|_| StartError::Config(format!("bad internal.listener {addr}")))?;
            Ok(InternalListener { addr: local })
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn serve(self, ctl: Arc<Controller>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
        use strom_controller::network::RaftService;
        use strom_controller::service::ControllerService;
        use strom_proto::controller::controller_server::ControllerServer;
        use strom_proto::raft::raft_server::RaftServer;

        let controller_svc = ControllerServer::new(ControllerService::new(ctl.clone()))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let raft_svc = RaftServer::new(RaftService::new(ctl.raft().clone()))
            .max_decoding_message_size(256 << 20)
            .max_encoding_message_size(256 << 20);
        let signal = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let router = tonic::transport::Server::builder()
            .add_service(controller_svc)
            .add_service(raft_svc);
        #[cfg(not(madsim))]
        let serving = router.serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(self.sock),
            signal,
        );
        #[cfg(madsim)]
        let serving = router.serve_with_shutdown(self.addr, signal);
        tokio::spawn(async move {
            if let Err(e) = serving.await {
                tracing::error!(error = %e, "internal listener failed");
            }
        })
    }
}
