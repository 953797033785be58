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
use crate::transport::{Front, Transport};

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct ServeConfig {
    config_file: Option<PathBuf>,
    listen: SocketAddr,
    /// Where the S3 front listens; `None` when it is off.
    s3_listen: Option<SocketAddr>,
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
        http.s3_domains = args.s3_domain;
        let s3_listen = (!args.no_s3_front).then_some(args.s3_listen);
        http.auth = args.security.authenticator(args.listen)?;
        if let Some(s3_listen) = s3_listen {
            // The same refusal to serve the network without authentication, for the S3 port.
            args.security.authenticator(s3_listen)?;
        }
        http.audit = args.security.audit_log()?;
        http.s3_secret_key = args.security.s3_secret_key()?;
        http.body_timeout = args.transport.body_timeout;
        let transport = Transport::from_args(&args.transport)?;
        http.tls = transport.scheme() == "https";
        args.dual_lock
            .validate(&store, http.locking.ttl.is_some())?;
        Ok(ServeConfig {
            config_file: args.config,
            listen: args.listen,
            s3_listen,
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
    let s3_listener = match config.s3_listen {
        Some(s3_listen) => {
            let bound = TcpListener::bind(s3_listen).await.with_context(|| {
                format!(
                    "cannot listen on {s3_listen} for the S3 front (--s3-listen; \
                     --no-s3-front turns it off)"
                )
            })?;
            Some(bound)
        }
        None => None,
    };
    let s3_addr = match &s3_listener {
        Some(l) => Some(l.local_addr().context("cannot read the bound address")?),
        None => None,
    };
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
        s3_front = ?s3_addr,
        "statelock serving on {}://{addr}",
        config.transport.scheme()
    );
    if s3_addr.is_some() && config.http.auth.is_some() && config.http.s3_secret_key.is_none() {
        tracing::warn!(
            "the S3 front refuses every request (AccessDenied): the server has --principals \
             but no --s3-secret-key-file to derive their S3 secrets from (`statelock token s3 \
             --help`)"
        );
    }
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
    if let Some(s3_addr) = s3_addr {
        block.push('\n');
        block.push_str(&s3_backend_block(
            config.transport.scheme(),
            s3_addr,
            &config.http.bucket,
        ));
        if config.http.auth.is_some() {
            block.push_str(
                "\n# This server needs credentials: AWS_ACCESS_KEY_ID=<principal> and the \
                 AWS_SECRET_ACCESS_KEY that `statelock token s3 <principal>` prints.",
            );
        }
    }
    block.push_str(&format!(
        "\n# The web UI (states, history, locks): {}://{addr}/ui/",
        config.transport.scheme()
    ));
    let _ = writeln!(stdout, "{block}").and_then(|()| stdout.flush());
    if let Some(auth) = &config.http.auth {
        crate::security::reload_on_sighup(auth.clone())?;
    }
    let state = AppState::new(store, config.http);
    if checked {
        state.store_checked();
    }
    let app = Front::Http(router(state.clone()));
    let (stopping, stop) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut stop = stop.clone();
        async move {
            // The sender lives until both loops are done, so only `true` ends this.
            let _ = stop.wait_for(|stopping| *stopping).await;
        }
    };
    let s3 = s3_listener.map(|l| {
        let front = Front::S3(statelock_http::s3::s3_service(state.clone()));
        tokio::spawn(crate::transport::serve(
            l,
            front,
            config.transport.clone(),
            stopped(),
        ))
    });
    let settle = state.clone();
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        // Waiting LOCKs would otherwise hold graceful shutdown up for their whole wait.
        state.begin_shutdown();
        let _ = stopping.send(true);
    });
    crate::transport::serve(listener, app, config.transport, stopped()).await;
    if let Some(s3) = s3 {
        let _ = s3.await;
    }
    signal.abort();
    // A history prune started by the last writes would otherwise be cut off halfway (harmless,
    // the next one finishes it, but a clean stop leaves nothing to finish).
    settle.settled().await;
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

/// The `backend "s3"` block for the S3 front. Any access key and secret are accepted without
/// principals; the AWS SDK still needs some to sign with.
fn s3_backend_block(scheme: &str, addr: SocketAddr, bucket: &str) -> String {
    let url = format!("{scheme}://{addr}");
    format!(
        "statelock S3 front listening on {url}\n\
         # Or keep backend \"s3\" and point it here (Terraform >= 1.6; with AWS_ACCESS_KEY_ID and\n\
         # AWS_SECRET_ACCESS_KEY set to anything, e.g. statelock/statelock):\n\
         terraform {{\n  backend \"s3\" {{\n    bucket       = \"{bucket}\"\n    \
         key          = \"terraform.tfstate\"\n    region       = \"us-east-1\"\n    \
         use_lockfile = true\n    endpoints    = {{ s3 = \"{url}\" }}\n    \
         use_path_style              = true\n    skip_credentials_validation = true\n    \
         skip_requesting_account_id  = true\n    skip_region_validation      = true\n  }}\n}}\n\
         # Terraform < 1.6: endpoint = \"{url}\" and force_path_style = true instead of endpoints\n\
         # and use_path_style, and no use_lockfile (it locks with DynamoDB only)."
    )
}
