//! `protoreg-demo-client`: calls the UserService (all four call kinds), lists services by
//! reflection, benchmarks unary calls, and compares its pin with the server's on connect.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use protoreg_demo::pb::acme::users::v1::user_service_client::UserServiceClient;
use protoreg_demo::pb::acme::users::v1::{
    GetUserRequest, ListUsersRequest, SyncUsersRequest, User, sync_users_request::Change,
};
use protoreg_demo::{PIN_HEADER, service::WORK_HEADER};
use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

#[derive(Parser)]
#[command(about = "Client of the protoreg demo UserService")]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Bearer token (`authorization` metadata); empty sends none.
    #[arg(
        long,
        env = "DEMO_TOKEN",
        default_value = "demo-token",
        hide_env_values = true
    )]
    token: String,
    /// Deadline of each call (sent as grpc-timeout).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Ask the server to work this long per call (to show deadlines).
    #[arg(long)]
    work_ms: Option<u64>,
    /// The client's own pin; compared with the server's on connect.
    #[arg(long)]
    lock: Option<PathBuf>,
    #[arg(long, env = "PROTOREG_TOKEN", hide_env_values = true)]
    registry_token: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Unary GetUser.
    Get { id: String },
    /// Server-streaming ListUsers.
    List {
        #[arg(long, default_value = "")]
        filter: String,
    },
    /// Client-streaming ImportUsers: each argument is ID:EMAIL:NAME.
    Import { users: Vec<String> },
    /// Bidirectional SyncUsers: each argument is `ID:EMAIL:NAME` (upsert) or `del:ID` (delete).
    Sync { changes: Vec<String> },
    /// All four call kinds in a row.
    Demo,
    /// List the server's services through gRPC reflection.
    Reflect,
    /// Unary GetUser throughput and latency over one HTTP/2 connection.
    Bench {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
}

/// gRPC's canonical name of a status code.
fn code_name(c: Code) -> &'static str {
    match c {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// tonic reports its own client-side deadline as CANCELLED "Timeout expired"; it is a
/// DEADLINE_EXCEEDED in gRPC terms.
fn normalize(s: Status) -> Status {
    if s.code() == Code::Cancelled && s.message().contains("Timeout expired") {
        Status::deadline_exceeded(format!("deadline exceeded ({})", s.message()))
    } else {
        s
    }
}

struct Ctx {
    token: String,
    timeout: Option<Duration>,
    work_ms: Option<u64>,
}

impl Ctx {
    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if !self.token.is_empty() {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {}", self.token)
                    .parse()
                    .expect("ascii token"),
            );
        }
        if let Some(t) = self.timeout {
            r.set_timeout(t);
        }
        if let Some(w) = self.work_ms {
            r.metadata_mut()
                .insert(WORK_HEADER, w.to_string().parse().expect("number"));
        }
        r
    }
}

fn parse_user(s: &str) -> User {
    let mut p = s.splitn(3, ':');
    User {
        id: p.next().unwrap_or_default().to_string(),
        email: p.next().unwrap_or_default().to_string(),
        display_name: p.next().unwrap_or_default().to_string(),
        status: 1,
        ..Default::default()
    }
}

fn show(u: &User) -> String {
    format!("{}\t{}\t{}", u.id, u.email, u.display_name)
}

#[tokio::main]
async fn main() -> ExitCode {
    let a = Args::parse();
    match run(a).await {
        Ok(code) => code,
        Err(e) => {
            match e.downcast_ref::<Status>() {
                Some(s) => eprintln!("error: {}: {}", code_name(s.code()), s.message()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(1)
        }
    }
}

/// Compares the client's pin with the server's (from response metadata of a health check).
async fn compare_pins(
    channel: Channel,
    lock: &std::path::Path,
    registry_token: Option<&str>,
) -> anyhow::Result<Option<ExitCode>> {
    let ours = protoreg_schema::Lock::read(lock)?;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let resp = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: protoreg_demo::SERVICE.into(),
        })
        .await
        .map_err(normalize)?;
    let theirs = resp
        .metadata()
        .get(PIN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow::anyhow!("the server does not announce a pin ({PIN_HEADER})"))?
        .to_string();
    let (sv, digest) = theirs.split_once(' ').unwrap_or((theirs.as_str(), ""));
    let (subject, version) = sv.rsplit_once('@').unwrap_or((sv, "0"));
    if digest == ours.digest {
        eprintln!(
            "pin: server and client both on {}@{}",
            ours.subject, ours.version
        );
        return Ok(None);
    }
    if subject != ours.subject {
        eprintln!(
            "refusing: the server serves {subject}, this client is pinned to {}",
            ours.subject
        );
        return Ok(Some(ExitCode::from(3)));
    }
    // Different versions of one subject: the registry decides whether the server's version
    // still serves a client built on ours.
    let url = format!(
        "{}/v1/subjects/{subject}/diff?from={}&to={version}",
        ours.registry.trim_end_matches('/'),
        ours.version
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = agent.get(&url);
    if let Some(t) = registry_token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req
        .call()
        .map_err(|e| anyhow::anyhow!("registry unreachable to compare pins: {e}"))?;
    let body: serde_json::Value = resp.body_mut().read_json()?;
    let breaking = body["breaking"].as_array().cloned().unwrap_or_default();
    if breaking.is_empty() {
        eprintln!(
            "warning: server runs {subject}@{version}, this client {subject}@{}: compatible per the registry, continuing",
            ours.version
        );
        return Ok(None);
    }
    eprintln!(
        "refusing: server runs {subject}@{version}, incompatible with this client's {subject}@{}:",
        ours.version
    );
    for f in breaking {
        eprintln!(
            "  {}:{}: {} [{}]",
            f["path"].as_str().unwrap_or("-"),
            f["start_line"],
            f["message"].as_str().unwrap_or_default(),
            f["type"].as_str().unwrap_or_default()
        );
    }
    Ok(Some(ExitCode::from(3)))
}

async fn run(a: Args) -> anyhow::Result<ExitCode> {
    let channel = Channel::from_shared(a.addr.clone())?.connect().await?;
    if let Some(lock) = &a.lock
        && let Some(code) = compare_pins(channel.clone(), lock, a.registry_token.as_deref()).await?
    {
        return Ok(code);
    }
    let cx = Ctx {
        token: a.token,
        timeout: a.timeout_ms.map(Duration::from_millis),
        work_ms: a.work_ms,
    };
    let mut client = UserServiceClient::new(channel.clone());
    match a.command {
        Cmd::Get { id } => {
            let u = client
                .get_user(cx.req(GetUserRequest { id }))
                .await
                .map_err(normalize)?
                .into_inner();
            println!("{}", show(&u));
        }
        Cmd::List { filter } => {
            let mut s = client
                .list_users(cx.req(ListUsersRequest { page: None, filter }))
                .await
                .map_err(normalize)?
                .into_inner();
            while let Some(u) = s.next().await {
                println!("{}", show(&u.map_err(normalize)?));
            }
        }
        Cmd::Import { users } => {
            let stream =
                tokio_stream::iter(users.iter().map(|u| parse_user(u)).collect::<Vec<_>>());
            let r = client
                .import_users(cx.req(stream))
                .await
                .map_err(normalize)?
                .into_inner();
            println!("created {} failed {:?}", r.created, r.failed_ids);
        }
        Cmd::Sync { changes } => {
            let reqs: Vec<SyncUsersRequest> = changes
                .iter()
                .map(|c| match c.strip_prefix("del:") {
                    Some(id) => SyncUsersRequest {
                        change: Some(Change::DeleteId(id.to_string())),
                    },
                    None => SyncUsersRequest {
                        change: Some(Change::Upsert(parse_user(c))),
                    },
                })
                .collect();
            let mut s = client
                .sync_users(cx.req(tokio_stream::iter(reqs)))
                .await
                .map_err(normalize)?
                .into_inner();
            while let Some(r) = s.next().await {
                let r = r.map_err(normalize)?;
                println!(
                    "{} {}",
                    if r.deleted { "deleted" } else { "upserted" },
                    r.user.as_ref().map(show).unwrap_or_default()
                );
            }
        }
        Cmd::Demo => {
            let u = client
                .get_user(cx.req(GetUserRequest { id: "u1".into() }))
                .await
                .map_err(normalize)?
                .into_inner();
            println!("unary GetUser: {}", show(&u));
            let mut s = client
                .list_users(cx.req(ListUsersRequest::default()))
                .await
                .map_err(normalize)?
                .into_inner();
            let mut n = 0;
            while let Some(u) = s.next().await {
                u.map_err(normalize)?;
                n += 1;
            }
            println!("server streaming ListUsers: {n} users");
            let batch = vec![
                parse_user("d1:d1@acme.test:Dee"),
                parse_user("d2:d2@acme.test:Dan"),
            ];
            let r = client
                .import_users(cx.req(tokio_stream::iter(batch)))
                .await
                .map_err(normalize)?
                .into_inner();
            println!("client streaming ImportUsers: created {}", r.created);
            let reqs = vec![
                SyncUsersRequest {
                    change: Some(Change::Upsert(parse_user("s1:s1@acme.test:Sam"))),
                },
                SyncUsersRequest {
                    change: Some(Change::DeleteId("s1".into())),
                },
            ];
            let mut s = client
                .sync_users(cx.req(tokio_stream::iter(reqs)))
                .await
                .map_err(normalize)?
                .into_inner();
            let mut n = 0;
            while let Some(r) = s.next().await {
                r.map_err(normalize)?;
                n += 1;
            }
            println!("bidirectional SyncUsers: {n} replies");
        }
        Cmd::Reflect => {
            use tonic_reflection::pb::v1::ServerReflectionRequest;
            use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
            use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
            let mut r = ServerReflectionClient::new(channel);
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut s = r
                .server_reflection_info(tokio_stream::iter(vec![req]))
                .await?
                .into_inner();
            while let Some(resp) = s.next().await {
                if let Some(MessageResponse::ListServicesResponse(l)) = resp?.message_response {
                    for svc in l.service {
                        println!("{}", svc.name);
                    }
                }
            }
        }
        Cmd::Bench {
            concurrency,
            seconds,
        } => {
            let end = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for i in 0..concurrency {
                let mut c = client.clone();
                let token = cx.token.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let ids = ["u1", "u2", "u3"];
                    while Instant::now() < end {
                        let mut r = Request::new(GetUserRequest {
                            id: ids[(i + lat.len()) % 3].into(),
                        });
                        r.metadata_mut()
                            .insert("authorization", format!("Bearer {token}").parse().unwrap());
                        let t = Instant::now();
                        c.get_user(r).await?;
                        lat.push(t.elapsed());
                    }
                    Ok::<_, Status>(lat)
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await??);
            }
            all.sort();
            let pct = |p: f64| {
                all[((all.len() as f64 * p) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0
            };
            println!(
                "unary GetUser over 1 HTTP/2 connection, {concurrency} concurrent streams, {seconds} s: {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
                all.len() as f64 / seconds as f64,
                pct(0.5),
                pct(0.99)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
