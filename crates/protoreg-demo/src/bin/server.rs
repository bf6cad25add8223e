//! `protoreg-demo-server`: the UserService, refusing to start when its contract drifted from
//! the pinned registered version.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use protoreg_demo::pb::acme::users::v1::user_service_server::UserServiceServer;
use protoreg_demo::{BUILT_DESCRIPTOR, PIN_HEADER, pin, service::Users};
use tonic::{Request, Status};
use tower_http::set_header::SetResponseHeaderLayer;

#[derive(Parser)]
#[command(about = "The protoreg demo UserService, pinned to a registered contract")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: std::net::SocketAddr,
    /// The pin written by `protoreg pin`.
    #[arg(long, default_value = "protoreg.lock")]
    lock: PathBuf,
    /// Bearer token callers must send (`authorization: Bearer TOKEN`).
    #[arg(
        long,
        env = "DEMO_TOKEN",
        default_value = "demo-token",
        hide_env_values = true
    )]
    token: String,
    /// Token for reading the pinned version from the registry.
    #[arg(long, env = "PROTOREG_TOKEN", hide_env_values = true)]
    registry_token: Option<String>,
    /// Start even when the built contract differs from the pinned version.
    #[arg(long)]
    allow_drift: bool,
    /// Report this instance to the registry as running in ENV, with a heartbeat every third
    /// of --report-ttl-secs, so `protoreg can-i-deploy` sees it.
    #[arg(long = "env", value_name = "ENV")]
    environment: Option<String>,
    /// The service name reported with --env.
    #[arg(long, default_value = "users")]
    service: String,
    /// The instance id reported with --env (default: host name and process id).
    #[arg(long)]
    instance: Option<String>,
    /// How long one report counts without the next.
    #[arg(long, default_value_t = 30)]
    report_ttl_secs: u64,
    /// A token with the write role for the reports (default: --registry-token).
    #[arg(long, env = "PROTOREG_REPORT_TOKEN", hide_env_values = true)]
    report_token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("DEMO_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(a: Args) -> anyhow::Result<ExitCode> {
    // The pin check: must cost milliseconds (measured and printed).
    let started = Instant::now();
    let pinned = pin::load(&a.lock, a.registry_token.as_deref())?;
    let drift = pin::drift(BUILT_DESCRIPTOR, &pinned.descriptor)?;
    let took = started.elapsed();
    let l = &pinned.lock;
    if pinned.source == pin::Source::Cache {
        eprintln!(
            "warning: registry {} unreachable: using the cached descriptor of {}@{}",
            l.registry, l.subject, l.version
        );
    }
    if !drift.is_empty() {
        eprintln!(
            "contract drift: this binary was built with a contract that differs from the pinned {}@{} ({}):",
            l.subject, l.version, l.digest
        );
        for d in &drift {
            eprintln!("  - {d}");
        }
        if !a.allow_drift {
            eprintln!(
                "refusing to start: push the contract and `protoreg pin` the new version, or pass --allow-drift"
            );
            return Ok(ExitCode::from(2));
        }
        eprintln!("--allow-drift: starting anyway");
    }
    println!(
        "pin: {}@{} {} verified in {:.1} ms ({:?})",
        l.subject,
        l.version,
        l.digest,
        took.as_secs_f64() * 1000.0,
        pinned.source
    );

    // Report this instance where it runs, then keep reporting while it serves.
    if let Some(environment) = &a.environment {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let report = pin::Report {
            environment: environment.clone(),
            service: a.service.clone(),
            instance: a
                .instance
                .clone()
                .unwrap_or_else(|| format!("{host}-{}", std::process::id())),
            ttl_secs: a.report_ttl_secs.max(1),
            token: a.report_token.clone().or_else(|| a.registry_token.clone()),
        };
        match pin::report(&pinned.lock, &report) {
            Ok(()) => println!(
                "reported {} ({}) in {} to {}",
                report.service, report.instance, report.environment, l.registry
            ),
            Err(e) => eprintln!("warning: {e:#}"),
        }
        let lock = pinned.lock.clone();
        let every =
            Duration::from_millis(report.ttl_secs * 1000 / 3).max(Duration::from_millis(200));
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(every);
                if let Err(e) = pin::report(&lock, &report) {
                    tracing::warn!(error = %format!("{e:#}"), "heartbeat to the registry failed");
                }
            }
        });
    }

    // Reflection serves exactly the pinned version's descriptor set, in both protocol
    // versions: grpc.reflection.v1 and v1alpha (which Python grpcio's stock client, older
    // grpcurl, grpcui and Postman still speak).
    let descriptor: &'static [u8] = Box::leak(pinned.descriptor.into_boxed_slice());
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(descriptor)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name(protoreg_demo::SERVICE)
            .with_service_name("grpc.health.v1.Health")
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<UserServiceServer<Users>>().await;

    let token: Arc<str> = Arc::from(format!("Bearer {}", a.token));
    let auth = move |req: Request<()>| -> Result<Request<()>, Status> {
        match req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
        {
            Some(v) if v == &*token => Ok(req),
            Some(_) => Err(Status::unauthenticated("invalid bearer token")),
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>` metadata",
            )),
        }
    };
    let users = UserServiceServer::with_interceptor(Users::seeded(), auth);

    // Request logging and counters for every call.
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let trace = tower_http::trace::TraceLayer::new_for_grpc()
        .on_request(
            move |req: &tonic::codegen::http::Request<_>, _span: &tracing::Span| {
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(path = %req.uri().path(), "call");
            },
        )
        .on_response(
            |resp: &tonic::codegen::http::Response<_>, latency: Duration, _span: &tracing::Span| {
                tracing::debug!(status = ?resp.headers().get("grpc-status"), ?latency, "done");
            },
        );
    let pin_value = format!("{}@{} {}", l.subject, l.version, l.digest);
    let pin_header = tonic::codegen::http::HeaderValue::from_str(&pin_value)?;

    let listener = tokio::net::TcpListener::bind(a.listen).await?;
    let addr = listener.local_addr()?;
    println!("protoreg-demo-server: listening on {addr}");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    tonic::transport::Server::builder()
        .layer(trace)
        .layer(SetResponseHeaderLayer::overriding(
            tonic::codegen::http::HeaderName::from_static(PIN_HEADER),
            pin_header,
        ))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(users)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    eprintln!("served {} calls", calls.load(Ordering::Relaxed));
    Ok(ExitCode::SUCCESS)
}
