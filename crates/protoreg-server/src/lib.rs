//! The registry HTTP server. [`service`] owns every registry operation and rule; the front
//! doors translate to it: [`v1`] (the native API), [`confluent`] (the Confluent Schema
//! Registry API) and [`ui`] (server-rendered pages). [`app`] assembles their routes with the
//! middleware (auth, metrics, limits, errors in each door's shape); [`cache`] keeps versions
//! and decoded images in memory in front of the store.

pub mod api;
mod app;
mod auth;
mod cache;
pub mod confluent;
mod edge;
mod metrics;
pub mod service;
mod ui;
pub mod v1;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use protoreg_store::{Store, StoreError};

pub use api::rfc3339;
pub use app::router;
pub use auth::{Grant, parse_tokens};
pub use cache::{ImageCache, VersionCache};
pub use metrics::Metrics;
pub use service::{Caller, Registry, Role};
pub use v1::{ApiError, ROUTES, RouteDoc};

/// Shared state of all handlers: the registry service, and what the doors keep of their own.
#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    /// Empty: no authentication (the server then only listens on loopback).
    pub tokens: Arc<HashMap<String, Grant>>,
    /// The Confluent API's schema views.
    pub views: Arc<confluent::ViewCache>,
    /// The web UI's per-version indexes.
    pub ui: Arc<ui::IndexCache>,
    pub limits: Limits,
}

impl std::ops::Deref for AppState {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.registry
    }
}

impl AppState {
    /// State over a store, without tokens, with default limits.
    pub fn new(store: Store) -> AppState {
        AppState {
            registry: Registry::new(store),
            tokens: Arc::default(),
            views: Arc::default(),
            ui: Arc::default(),
            limits: Limits::default(),
        }
    }
}

/// Bounds on what one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body as sent (compressed or not).
    pub max_body: usize,
    /// Largest request body once a gzip body is inflated.
    pub max_inflated: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: DEFAULT_MAX_BODY,
            max_inflated: DEFAULT_MAX_INFLATED,
            request_timeout: std::time::Duration::from_secs(120),
        }
    }
}

/// Default request body limit (a googleapis-size push, gzipped, is about 10 MiB).
pub const DEFAULT_MAX_BODY: usize = 32 << 20;
/// Default limit of an inflated gzip body.
pub const DEFAULT_MAX_INFLATED: usize = 512 << 20;

/// Where the server listens and what it serves from.
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub database: String,
    pub tokens: HashMap<String, Grant>,
    pub allow_anonymous: bool,
    pub limits: Limits,
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error(
        "refusing to listen on {0} without authentication: configure tokens (--token-file or PROTOREG_TOKENS) or pass --allow-anonymous"
    )]
    Anonymous(SocketAddr),
}

/// Runs the server until SIGINT/SIGTERM; in-flight requests finish before it returns.
pub async fn serve(opts: ServeOptions) -> Result<(), ServeError> {
    if opts.tokens.is_empty() && !opts.listen.ip().is_loopback() && !opts.allow_anonymous {
        return Err(ServeError::Anonymous(opts.listen));
    }
    let store = Store::open(&opts.database).await?;
    let state = AppState {
        tokens: Arc::new(opts.tokens),
        limits: opts.limits,
        ..AppState::new(store.clone())
    };
    tokio::spawn(cache::watch_changes(store.clone(), state.cache.clone()));
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ServeError::Listen(opts.listen, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Listen(opts.listen, e))?;
    // The line tests and scripts wait for.
    println!(
        "protoreg: listening on http://{addr} ({:?})",
        store.backend()
    );
    tracing::info!(%addr, "listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| ServeError::Listen(addr, e))?;
    store.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing in-flight requests");
}
