//! How messages reach clients: the [`Pusher`] port, an in-process implementation for
//! `wsctl dev`, and (with the `aws` feature) the API Gateway management API.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::RwLock;

use async_trait::async_trait;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The connection is closed or never existed (API Gateway's 410 GoneException).
    #[error("connection {0} is gone")]
    Gone(String),
    /// The endpoint refused the call (403 ForbiddenException, usually a missing
    /// `execute-api:ManageConnections` permission).
    #[error("not allowed to post to connection {connection_id}")]
    Forbidden {
        connection_id: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// Anything else: throttling, payload too large, network, 5xx.
    #[error("posting to connection {connection_id} failed")]
    Failed {
        connection_id: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

#[async_trait]
pub trait Pusher: Send + Sync {
    /// Sends `data` to one connection through the management endpoint `endpoint`
    /// (`https://{domain}/{stage}`; implementations that do not need it ignore it).
    async fn post(&self, endpoint: &str, connection_id: &str, data: &[u8])
        -> Result<(), PushError>;
}

/// What the in-process pusher hands to a connection's writer.
pub type Outbound = Vec<u8>;

/// The connection is closing or gone: nothing more can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the connection is closed")]
pub struct Closed;

/// A connection's way out, provided by whatever holds its socket. `wsctl dev` hands the frame
/// to a writer that serves many sockets (no task of the connection's own is woken per message,
/// which keeps a broadcast to thousands of clients cheap); a channel sender is the outlet the
/// tests use.
pub trait Outlet: Send + Sync {
    /// Hands `data` (one message) to the client, in order with earlier messages.
    fn deliver(&self, data: &[u8]) -> Result<(), Closed>;
}

impl Outlet for mpsc::UnboundedSender<Outbound> {
    fn deliver(&self, data: &[u8]) -> Result<(), Closed> {
        self.send(data.to_vec()).map_err(|_| Closed)
    }
}

type Peers = HashMap<String, std::sync::Arc<dyn Outlet>>;

/// Delivers to connections held by this process: each open connection registers an
/// [`Outlet`]. Unknown ids answer [`PushError::Gone`] exactly as API Gateway does.
#[derive(Default)]
pub struct InProcessPusher {
    peers: RwLock<Peers>,
}

impl std::fmt::Debug for InProcessPusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessPusher")
            .field("connections", &self.read().len())
            .finish()
    }
}

impl InProcessPusher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a connection whose messages arrive on the returned channel.
    pub fn register(&self, connection_id: &str) -> mpsc::UnboundedReceiver<Outbound> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.attach(connection_id, std::sync::Arc::new(tx));
        rx
    }

    /// Registers a connection with its own outlet.
    pub fn attach(&self, connection_id: &str, outlet: std::sync::Arc<dyn Outlet>) {
        self.write().insert(connection_id.to_owned(), outlet);
    }

    /// Forgets a connection; later posts to it answer Gone.
    pub fn unregister(&self, connection_id: &str) -> bool {
        self.write().remove(connection_id).is_some()
    }

    /// Sends without the async trait machinery (the dev gateway's @connections endpoint).
    pub fn send(&self, connection_id: &str, data: &[u8]) -> Result<(), PushError> {
        // The outlet may write to a socket: do that outside the lock.
        let outlet = self.read().get(connection_id).cloned();
        match outlet {
            Some(outlet) => outlet
                .deliver(data)
                .map_err(|Closed| PushError::Gone(connection_id.to_owned())),
            None => Err(PushError::Gone(connection_id.to_owned())),
        }
    }

    // Each critical section is one map operation, so a poisoned lock is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Peers> {
        self.peers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Peers> {
        self.peers.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Pusher for InProcessPusher {
    async fn post(
        &self,
        _endpoint: &str,
        connection_id: &str,
        data: &[u8],
    ) -> Result<(), PushError> {
        self.send(connection_id, data)
    }
}

#[cfg(feature = "aws")]
pub use management::ManagementApiPusher;

#[cfg(feature = "aws")]
mod management {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use aws_sdk_apigatewaymanagement::primitives::Blob;
    use aws_sdk_apigatewaymanagement::{config, Client};

    use super::{PushError, Pusher};

    /// Posts through the API Gateway management API (`POST {endpoint}/@connections/{id}`).
    /// One SDK client per endpoint, built on first use from the shared SDK config and kept.
    #[derive(Debug)]
    pub struct ManagementApiPusher {
        sdk: aws_config::SdkConfig,
        clients: Mutex<HashMap<String, Client>>,
    }

    impl ManagementApiPusher {
        pub fn new(sdk: aws_config::SdkConfig) -> Self {
            ManagementApiPusher {
                sdk,
                clients: Mutex::new(HashMap::new()),
            }
        }

        fn client(&self, endpoint: &str) -> Client {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            clients
                .entry(endpoint.to_owned())
                .or_insert_with(|| {
                    let conf = config::Builder::from(&self.sdk)
                        .endpoint_url(endpoint)
                        .build();
                    Client::from_conf(conf)
                })
                .clone()
        }
    }

    #[async_trait]
    impl Pusher for ManagementApiPusher {
        async fn post(
            &self,
            endpoint: &str,
            connection_id: &str,
            data: &[u8],
        ) -> Result<(), PushError> {
            let result = self
                .client(endpoint)
                .post_to_connection()
                .connection_id(connection_id)
                .data(Blob::new(data))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(e) => {
                    let service = e.as_service_error();
                    if service.is_some_and(|s| s.is_gone_exception()) {
                        Err(PushError::Gone(connection_id.to_owned()))
                    } else if service.is_some_and(|s| s.is_forbidden_exception()) {
                        Err(PushError::Forbidden {
                            connection_id: connection_id.to_owned(),
                            source: Box::new(e),
                        })
                    } else {
                        Err(PushError::Failed {
                            connection_id: connection_id.to_owned(),
                            source: Box::new(e),
                        })
                    }
                }
            }
        }
    }
}
