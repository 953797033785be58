//! `statelock serve`: opens the store, binds, prints the backend block, serves until SIGINT
//! or SIGTERM, then finishes the requests in flight.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use statelock_http::{AppState, HttpConfig, router};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::signals::shutdown_signal;
use crate::store_check::check_conditional_writes;
use crate::store_url::{S3Args, StoreUrl};
use crate::transport::Transport;

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct ServeConfig {
    config_file: Option<PathBuf>,
    listen: SocketAddr,
    store: StoreUrl,
    s3: S3Args,
    dual_lock: crate::dual_lock::DualLockArgs,
    http: HttpConfig,
    transport: Transport,
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
        http.auth = args.security.authenticator(args.listen)?;
        http.audit = args.security.audit_log()?;
        http.body_timeout = args.transport.body_timeout;
        let transport = Transport::from_args(&args.transport)?;
        args.dual_lock
            .validate(&store, http.locking.ttl.is_some())?;
        Ok(ServeConfig {
            config_file: args.config,
            listen: args.listen,
            store,
            s3: args.s3,
            dual_lock: args.dual_lock,
            http,
            transport,
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

async fn serve(mut config: ServeConfig) -> anyhow::Result<()> {
    let store = config.store.open(&config.s3).await?;
    let checked = config.store.is_remote()
        && check_conditional_writes(&*store, config.s3.allow_unsafe_store, "serve").await?;
    config.http.secondary_lock = config
        .dual_lock
        .open(
            &config.store,
            &config.http.bucket,
            config.s3.s3_region.clone(),
        )
        .await?;
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
        principals = ?config.http.auth.as_ref().map(|a| a.path()),
        "statelock serving on {}://{addr}",
        config.transport.scheme()
    );
    // Written, not printed: a reader that closes stdout after the first line (a script that
    // only wanted the address) must not take the server down with a broken pipe.
    let mut stdout = std::io::stdout();
    let mut block = backend_block(config.transport.scheme(), addr);
    if config.http.auth.is_some() {
        block.push_str(
            "\n# This server needs credentials: add username = \"<principal>\" to the block and \
             set TF_HTTP_PASSWORD=<token> (see `statelock token create --help`).",
        );
    }
    let _ = writeln!(stdout, "{block}").and_then(|()| stdout.flush());
    if let Some(auth) = &config.http.auth {
        crate::security::reload_on_sighup(auth.clone())?;
    }
    let state = AppState::new(store, config.http);
    if checked {
        state.store_checked();
    }
    let app = router(state.clone());
    crate::transport::serve(listener, app, config.transport, async move {
        shutdown_signal().await;
        // Waiting LOCKs would otherwise hold graceful shutdown up for their whole wait.
        state.begin_shutdown();
    })
    .await;
    tracing::info!("statelock stopped");
    Ok(())
}

/// The ready-to-paste configuration; its first line is also how scripts learn the address.
fn backend_block(scheme: &str, addr: SocketAddr) -> String {
    let url = format!("{scheme}://{addr}/v1/states/terraform.tfstate");
    format!(
        "statelock listening on {scheme}://{addr}\n\
         # Paste into your Terraform configuration; replace terraform.tfstate with the state's key.\n\
         terraform {{\n  backend \"http\" {{\n    address        = \"{url}\"\n    lock_address   = \"{url}\"\n    \
         unlock_address = \"{url}\"\n    lock_method    = \"LOCK\"\n    unlock_method  = \"UNLOCK\"\n  }}\n}}"
    )
}
