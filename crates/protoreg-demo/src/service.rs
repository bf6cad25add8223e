//! `acme.users.v1.UserService` on an in-memory store: proper status codes, the caller's
//! deadline honoured (DEADLINE_EXCEEDED, not CANCELLED), cancellation stops streams.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{RwLock, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status, Streaming};

use crate::pb::acme::users::v1::user_service_server::UserService;
use crate::pb::acme::users::v1::{
    GetUserRequest, ImportUsersResponse, ListUsersRequest, SyncUsersRequest, SyncUsersResponse,
    UpdateUserRequest, User, sync_users_request::Change,
};

/// Metadata a caller sets to make the server "work" this many milliseconds (to show deadlines).
pub const WORK_HEADER: &str = "x-demo-work-ms";

/// The in-memory service.
#[derive(Clone, Default)]
pub struct Users {
    store: Arc<RwLock<BTreeMap<String, User>>>,
}

impl Users {
    /// A store with a few users.
    pub fn seeded() -> Self {
        let mut m = BTreeMap::new();
        for (id, email, name) in [
            ("u1", "ada@acme.test", "Ada"),
            ("u2", "grace@acme.test", "Grace"),
            ("u3", "linus@acme.test", "Linus"),
        ] {
            m.insert(
                id.to_string(),
                User {
                    id: id.into(),
                    email: email.into(),
                    display_name: name.into(),
                    status: 1,
                    ..Default::default()
                },
            );
        }
        Users {
            store: Arc::new(RwLock::new(m)),
        }
    }
}

/// The caller's remaining time, from `grpc-timeout` (`100m`, `2S`, ...).
pub fn grpc_timeout(md: &MetadataMap) -> Option<Duration> {
    let v = md.get("grpc-timeout")?.to_str().ok()?;
    let (num, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Runs `work` within the caller's deadline. Ends a little before it, so the caller gets this
/// DEADLINE_EXCEEDED rather than tonic's transport-level CANCELLED.
async fn within_deadline<T>(
    md: &MetadataMap,
    what: &str,
    work: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match grpc_timeout(md) {
        Some(d) => {
            let budget = d.saturating_sub(Duration::from_millis(2).min(d / 10));
            tokio::time::timeout(budget, work)
                .await
                .unwrap_or_else(|_| {
                    Err(Status::deadline_exceeded(format!(
                        "{what} did not finish within the caller's deadline of {d:?}"
                    )))
                })
        }
        None => work.await,
    }
}

async fn simulated_work(md: &MetadataMap) {
    if let Some(ms) = md
        .get(WORK_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
}

fn validate(u: &User) -> Result<(), Status> {
    if u.id.is_empty() {
        return Err(Status::invalid_argument("user.id is required"));
    }
    if !u.email.is_empty() && !u.email.contains('@') {
        return Err(Status::invalid_argument(format!(
            "user.email {:?} is not an email address",
            u.email
        )));
    }
    Ok(())
}

type UserStream = Pin<Box<dyn Stream<Item = Result<User, Status>> + Send>>;
type SyncStream = Pin<Box<dyn Stream<Item = Result<SyncUsersResponse, Status>> + Send>>;

#[tonic::async_trait]
impl UserService for Users {
    async fn get_user(&self, req: Request<GetUserRequest>) -> Result<Response<User>, Status> {
        let md = req.metadata().clone();
        let id = req.into_inner().id;
        within_deadline(&md, "GetUser", async {
            simulated_work(&md).await;
            if id.is_empty() {
                return Err(Status::invalid_argument("id is required"));
            }
            self.store
                .read()
                .await
                .get(&id)
                .cloned()
                .map(Response::new)
                .ok_or_else(|| Status::not_found(format!("no user {id:?}")))
        })
        .await
    }

    type ListUsersStream = UserStream;

    async fn list_users(
        &self,
        req: Request<ListUsersRequest>,
    ) -> Result<Response<Self::ListUsersStream>, Status> {
        let md = req.metadata().clone();
        let r = req.into_inner();
        let page_size = r.page.as_ref().map(|p| p.page_size).unwrap_or(0);
        if page_size < 0 {
            return Err(Status::invalid_argument(
                "page.page_size must not be negative",
            ));
        }
        let filter = r.filter.to_lowercase();
        let users: Vec<User> = self
            .store
            .read()
            .await
            .values()
            .filter(|u| {
                filter.is_empty()
                    || u.display_name.to_lowercase().contains(&filter)
                    || u.email.contains(&filter)
            })
            .take(if page_size == 0 {
                usize::MAX
            } else {
                page_size as usize
            })
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            for u in users {
                simulated_work(&md).await;
                // The client cancelled or went away: stop producing.
                if tx.send(Ok(u)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn import_users(
        &self,
        req: Request<Streaming<User>>,
    ) -> Result<Response<ImportUsersResponse>, Status> {
        let mut stream = req.into_inner();
        let mut created = 0;
        let mut failed_ids = Vec::new();
        while let Some(u) = stream.next().await {
            let u = u?;
            validate(&u)?;
            let mut store = self.store.write().await;
            if store.contains_key(&u.id) {
                failed_ids.push(u.id.clone());
            } else {
                store.insert(u.id.clone(), u);
                created += 1;
            }
        }
        if created == 0 && !failed_ids.is_empty() {
            return Err(Status::already_exists(format!(
                "every imported user already exists: {}",
                failed_ids.join(", ")
            )));
        }
        Ok(Response::new(ImportUsersResponse {
            created,
            failed_ids,
        }))
    }

    type SyncUsersStream = SyncStream;

    async fn sync_users(
        &self,
        req: Request<Streaming<SyncUsersRequest>>,
    ) -> Result<Response<Self::SyncUsersStream>, Status> {
        let mut input = req.into_inner();
        let store = self.store.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(msg) = input.next().await {
                let reply = match msg {
                    Err(e) => Err(e),
                    Ok(SyncUsersRequest {
                        change: Some(Change::Upsert(u)),
                    }) => match validate(&u) {
                        Ok(()) => {
                            store.write().await.insert(u.id.clone(), u.clone());
                            Ok(SyncUsersResponse {
                                user: Some(u),
                                deleted: false,
                            })
                        }
                        Err(e) => Err(e),
                    },
                    Ok(SyncUsersRequest {
                        change: Some(Change::DeleteId(id)),
                    }) => match store.write().await.remove(&id) {
                        Some(u) => Ok(SyncUsersResponse {
                            user: Some(u),
                            deleted: true,
                        }),
                        None => Err(Status::not_found(format!("no user {id:?} to delete"))),
                    },
                    Ok(SyncUsersRequest { change: None }) => {
                        Err(Status::invalid_argument("change is required"))
                    }
                };
                let stop = reply.is_err();
                if tx.send(reply).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn update_user(&self, req: Request<UpdateUserRequest>) -> Result<Response<User>, Status> {
        let r = req.into_inner();
        let patch = r
            .user
            .ok_or_else(|| Status::invalid_argument("user is required"))?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        if mask.is_empty() {
            return Err(Status::invalid_argument(
                "update_mask must name the fields to change",
            ));
        }
        let mut store = self.store.write().await;
        let u = store
            .get_mut(&patch.id)
            .ok_or_else(|| Status::not_found(format!("no user {:?}", patch.id)))?;
        for path in &mask {
            match path.as_str() {
                "email" => u.email = patch.email.clone(),
                "display_name" => u.display_name = patch.display_name.clone(),
                "status" => u.status = patch.status,
                "labels" => u.labels = patch.labels.clone(),
                other => {
                    return Err(Status::invalid_argument(format!(
                        "update_mask path {other:?} cannot be updated"
                    )));
                }
            }
        }
        validate(u)?;
        Ok(Response::new(u.clone()))
    }
}
