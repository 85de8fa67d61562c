//! A project's stack as every layer sees it: its validated config, the AWS names and tags
//! derived from it, and the AWS clients to reach it.

use std::collections::BTreeMap;

use crate::aws::Clients;
use crate::config::Config;
use crate::naming::{self, Names};

pub struct Stack {
    pub config: Config,
    pub names: Names,
    pub clients: Clients,
    pub tags: BTreeMap<String, String>,
}

impl Stack {
    pub fn new(config: Config, clients: Clients, account: &str) -> Stack {
        let names = Names::new(&config, clients.region(), account);
        let tags = naming::tags(&config);
        Stack {
            config,
            names,
            clients,
            tags,
        }
    }
}
