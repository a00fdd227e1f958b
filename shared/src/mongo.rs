//! MongoDB: one client per process with safe defaults, index creation, and error classification.

use std::time::Duration;

use mongodb::error::{Error, ErrorKind, WriteFailure};
use mongodb::event::{EventHandler, command::CommandEvent};
use mongodb::options::{ClientOptions, WriteConcern};
use mongodb::{Client, IndexModel};

use crate::config::CommonConfig;

/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Connects lazily: building the client never fails because the server is down.
///
/// Retryable writes stay on (the driver default) unless the URI turns them off, and every write
/// waits for a majority of the replica set unless the URI names another write concern.
pub async fn connect(config: &CommonConfig, app_name: &str) -> anyhow::Result<Client> {
    let mut options = ClientOptions::parse(config.mongodb_uri()).await?;
    let timeout = Duration::from_millis(config.mongodb_timeout_ms);
    options.app_name.get_or_insert_with(|| app_name.to_owned());
    options.max_pool_size = Some(config.mongodb_max_pool_size);
    options.min_pool_size = Some(config.mongodb_min_pool_size);
    options.server_selection_timeout = Some(timeout);
    options.connect_timeout.get_or_insert(timeout);
    options
        .write_concern
        .get_or_insert_with(WriteConcern::majority);
    let client_name = app_name.to_owned();
    options.command_event_handler = Some(EventHandler::callback(move |event| {
        count_command(&client_name, event);
    }));
    Ok(Client::with_options(options)?)
}

/// Name of the counter of MongoDB commands sent, by command name: the database round trips.
pub const COMMANDS: &str = "mongodb_commands_total";

/// Counts every command the driver sends (command monitoring), so round trips per request can
/// be read off `/metrics`: `origin="request"` for commands sent while serving a request,
/// `origin="background"` for the services' own tasks (recovery, start-up).
fn count_command(client: &str, event: CommandEvent) {
    if let CommandEvent::Started(started) = event {
        let origin = if crate::context::RequestContext::is_set() {
            "request"
        } else {
            "background"
        };
        metrics::counter!(
            COMMANDS,
            "client" => client.to_owned(),
            "command" => started.command_name,
            "origin" => origin,
        )
        .increment(1);
    }
}

/// Whether an error means the database could not be reached (answered 503, not 500).
pub fn is_unavailable(err: &Error) -> bool {
    matches!(
        *err.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    ) || err.contains_label("RetryableWriteError")
}

/// Whether an error is a unique-index violation.
pub fn is_duplicate_key(err: &Error) -> bool {
    match &*err.kind {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(e) => e
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().any(|e| e.code == DUPLICATE_KEY)),
        _ => false,
    }
}

/// Pings the server, for readiness.
pub async fn ping(client: &Client, timeout: Duration) -> bool {
    let admin = client.database("admin");
    let ping = admin.run_command(bson::doc! { "ping": 1 });
    matches!(tokio::time::timeout(timeout, ping).await, Ok(Ok(_)))
}

/// Creates indexes idempotently, retrying while the server is unreachable for up to `patience`.
pub async fn ensure_indexes<T: Send + Sync>(
    collection: &mongodb::Collection<T>,
    indexes: Vec<IndexModel>,
    patience: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match collection.create_indexes(indexes.clone()).await {
            Ok(_) => return Ok(()),
            Err(err) if is_unavailable(&err) && tokio::time::Instant::now() < deadline => {
                tracing::warn!(collection = collection.name(), error = %err, "database not reachable yet; retrying index creation");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}
