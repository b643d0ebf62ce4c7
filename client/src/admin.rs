//! `meridian admin`: who waits for whom, and one-at-a-time membership
//! changes at a group's leader.

use std::process::ExitCode;

use clap::Subcommand;
use meridian_client::cli::GlobalArgs;
use meridian_proto::pb;
use meridian_proto::pb::admin_client::AdminClient;

/// Exit code when no node answers.
const UNREACHABLE: u8 = 4;

/// Admin subcommands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Lists who waits for whom in every group each node leads.
    WaitsFor,
    /// Adds or removes one voter of a group (sent to each node until the
    /// group's leader accepts it).
    ChangeMembership {
        /// The group.
        #[arg(long)]
        group: u64,
        /// Node to add as a voter.
        #[arg(long, conflicts_with = "remove", required_unless_present = "remove")]
        add: Option<u64>,
        /// Node to remove.
        #[arg(long)]
        remove: Option<u64>,
    },
}

async fn header(global: &GlobalArgs) -> Result<(pb::Header, Vec<String>), ExitCode> {
    if global.endpoints.is_empty() {
        eprintln!("meridian: --endpoints (or MERIDIAN_ENDPOINTS) is required");
        return Err(ExitCode::from(2));
    }
    let client = match meridian_client::Client::connect(&global.endpoints).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("meridian: {e}");
            return Err(ExitCode::from(UNREACHABLE));
        }
    };
    let h = pb::Header {
        cluster_id: client.cluster_id(),
        epoch: client.epoch(),
    };
    let status = client.status().await.map_err(|e| {
        eprintln!("meridian: {e}");
        ExitCode::from(UNREACHABLE)
    })?;
    Ok((h, status.nodes.into_iter().map(|(_, a)| a).collect()))
}

async fn connect(address: &str) -> Option<AdminClient<tonic::transport::Channel>> {
    AdminClient::connect(format!("http://{address}")).await.ok()
}

/// Runs an admin subcommand.
pub async fn run(global: &GlobalArgs, cmd: AdminCommand) -> ExitCode {
    let (header, nodes) = match header(global).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    match cmd {
        AdminCommand::WaitsFor => {
            for a in &nodes {
                let Some(mut c) = connect(a).await else {
                    eprintln!("meridian: node {a} is unreachable");
                    continue;
                };
                match c
                    .waits_for(pb::WaitsForRequest {
                        header: Some(header),
                    })
                    .await
                {
                    Ok(r) => {
                        for e in r.into_inner().edges {
                            let id = |t: Option<pb::TxnId>| {
                                t.map_or("?".into(), |t| format!("{:x}.{}", t.origin, t.seq))
                            };
                            println!(
                                "group {} {} waits for {} on {}",
                                e.group,
                                id(e.waiter),
                                id(e.holder),
                                String::from_utf8_lossy(&e.key)
                            );
                        }
                    }
                    Err(s) => eprintln!("meridian: node {a}: {}", s.message()),
                }
            }
            ExitCode::SUCCESS
        }
        AdminCommand::ChangeMembership { group, add, remove } => {
            let change = match (add, remove) {
                (Some(n), None) => pb::change_membership_request::Change::Add(n),
                (None, Some(n)) => pb::change_membership_request::Change::Remove(n),
                _ => {
                    eprintln!("meridian: give exactly one of --add and --remove");
                    return ExitCode::from(2);
                }
            };
            let mut last = String::from("no node answered");
            for a in &nodes {
                let Some(mut c) = connect(a).await else {
                    continue;
                };
                let r = c
                    .change_membership(pb::ChangeMembershipRequest {
                        header: Some(header),
                        group,
                        change: Some(change),
                    })
                    .await;
                match r.map(|r| r.into_inner()) {
                    Ok(pb::ChangeMembershipResponse {
                        error: None,
                        voters,
                    }) => {
                        println!("group {group}: change proposed; voters now {voters:?}");
                        return ExitCode::SUCCESS;
                    }
                    Ok(pb::ChangeMembershipResponse { error: Some(e), .. }) => last = e.message,
                    Err(s) => last = s.message().to_string(),
                }
            }
            eprintln!("meridian: membership change refused: {last}");
            ExitCode::from(1)
        }
    }
}
