//! `statelock serve`: opens the store, binds, prints the backend block, serves until SIGINT
//! or SIGTERM, then finishes the requests in flight.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use statelock_http::{AppState, HttpConfig, router};
use tokio::net::TcpListener;

use crate::cli::{S3Args, ServeArgs};
use crate::store_url::StoreUrl;

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct ServeConfig {
    config_file: Option<PathBuf>,
    listen: SocketAddr,
    store: StoreUrl,
    s3: S3Args,
    http: HttpConfig,
}

impl ServeConfig {
    pub fn from_args(args: ServeArgs) -> anyhow::Result<ServeConfig> {
        if args.s3.s3_kms_key_id.is_some() && args.s3.s3_sse.is_none() {
            anyhow::bail!("--s3-kms-key-id needs --s3-sse kms");
        }
        let store = StoreUrl::parse(&args.store)?;
        let bucket = args
            .bucket_name
            .unwrap_or_else(|| store.default_bucket_name());
        let mut http = HttpConfig::new(bucket);
        http.max_state_size = args.max_state_size.bytes();
        http.stale_write_guard = !args.no_stale_write_guard;
        http.history_retention = args.history_retention;
        http.locking = args.locking.policy();
        Ok(ServeConfig {
            config_file: args.config,
            listen: args.listen,
            store,
            s3: args.s3,
            http,
        })
    }
}

pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(serve(config))
}

async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let store = config.store.open(&config.s3).await?;
    if config.store.is_remote() {
        check_conditional_writes(&*store, config.s3.allow_unsafe_store, "serve").await?;
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    tracing::info!(
        config_file = ?config.config_file,
        store = %store.describe(),
        bucket = %config.http.bucket,
        max_state_size = config.http.max_state_size,
        stale_write_guard = config.http.stale_write_guard,
        history_retention = config.http.history_retention,
        lock_wait = ?config.http.locking.wait,
        lock_ttl = ?config.http.locking.ttl,
        "statelock serving on http://{addr}"
    );
    // Written, not printed: a reader that closes stdout after the first line (a script that
    // only wanted the address) must not take the server down with a broken pipe.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "{}", backend_block(addr)).and_then(|()| stdout.flush());
    let state = AppState::new(store, config.http);
    let app = router(state.clone());
    // Connect info gives history entries the client's address when no lock names the writer.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        // Waiting LOCKs would otherwise hold graceful shutdown up for their whole wait.
        state.begin_shutdown();
    })
    .await
    .context("the server failed")?;
    tracing::info!("statelock stopped");
    Ok(())
}

/// Refuses to `action` (`serve`, `roll back`) on a store that ignores conditional writes,
/// where locks would protect nothing, unless the operator insists (`--allow-unsafe-store`).
pub(crate) async fn check_conditional_writes(
    store: &dyn statelock_store::ObjectStore,
    allow_unsafe: bool,
    action: &str,
) -> anyhow::Result<()> {
    let report = statelock_store::probe_conditional_writes(store)
        .await
        .context("the conditional-write check of the store failed")?;
    for check in report.failures() {
        tracing::warn!(check = check.name, answer = %check.detail, "store probe failed a check");
    }
    if report.locking_is_safe() {
        tracing::info!(store = %store.describe(), "store honours conditional writes");
        return Ok(());
    }
    if allow_unsafe {
        tracing::error!(
            store = %store.describe(),
            "GOING ON ANYWAY (--allow-unsafe-store): this store ignores conditional writes, so \
             locks do not exclude each other and concurrent writers can lose state"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to {action}: the store does not honour conditional writes, so its locks would \
         not exclude each other.\n{report}Use a store that supports If-None-Match / If-Match, \
         or pass --allow-unsafe-store to {action} anyway."
    )
}

/// The ready-to-paste configuration; its first line is also how scripts learn the address.
fn backend_block(addr: SocketAddr) -> String {
    let url = format!("http://{addr}/v1/states/terraform.tfstate");
    format!(
        "statelock listening on http://{addr}\n\
         # Paste into your Terraform configuration; replace terraform.tfstate with the state's key.\n\
         terraform {{\n  backend \"http\" {{\n    address        = \"{url}\"\n    lock_address   = \"{url}\"\n    \
         unlock_address = \"{url}\"\n    lock_method    = \"LOCK\"\n    unlock_method  = \"UNLOCK\"\n  }}\n}}"
    )
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(%e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(%e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}
