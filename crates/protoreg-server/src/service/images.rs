//! Decoded images of stored versions (kept in the image cache: versions are immutable) and
//! the CPU-bound work done with them (compiles, checks) off the async workers.

use std::sync::Arc;

use protoreg_check::Finding;
use protoreg_schema::Image;
use protoreg_store::{Config, VersionMeta};

use super::error::{Error, Result};
use super::{Registry, domain};

/// CPU-bound work (compiles, checks, diffs) off the async workers, on a thread of lower
/// scheduling priority: a large push then takes the cores only when reads leave them idle.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        lower_thread_priority();
        f()
    })
    .await
    .map_err(|e| Error::Internal(format!("background work failed: {e}")))
}

/// Nice level of the threads that run [`blocking`] work.
const BACKGROUND_NICE: libc::c_int = 10;

/// Makes the calling thread `BACKGROUND_NICE` (Linux schedules threads, so this leaves the
/// async workers alone). The blocking pool's threads only run such work, so it is not
/// undone.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        if libc::getpriority(libc::PRIO_PROCESS, tid) < BACKGROUND_NICE {
            libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE);
        }
    }
}

impl Registry {
    /// A live version's decoded image (kept in the image cache: versions are immutable), or
    /// `None` when the version is gone.
    pub(crate) async fn version_image(
        &self,
        subject: &str,
        n: i64,
        digest: &str,
    ) -> Result<Option<Arc<Image>>> {
        if let Some(image) = self.images.get(subject, n, digest) {
            return Ok(Some(image));
        }
        let Some(stored) = self.store.descriptor(subject, n).await? else {
            return Ok(None);
        };
        let origin = format!("{subject}@{n}");
        let size = stored.bytes.len();
        let image = blocking(move || domain::stored_image(&stored, &origin))
            .await?
            .map_err(|e| Error::Internal(format!("cannot decode {subject}@{n}: {e}")))?;
        Ok(Some(self.images.put(
            subject,
            n,
            digest,
            size,
            Arc::new(image),
        )))
    }

    /// The decoded images of a subject's versions a push is checked against, as the mode
    /// picks among the live versions `live`.
    pub(crate) async fn prior_images(
        &self,
        subject: &str,
        live: &[VersionMeta],
        config: &Config,
    ) -> Result<Vec<Arc<Image>>> {
        let numbers: Vec<i64> = live.iter().map(|v| v.version).collect();
        let mut out = Vec::new();
        for n in domain::versions_to_check(config.mode, &numbers) {
            let digest = &live
                .iter()
                .find(|v| v.version == n)
                .expect("chosen from live")
                .digest;
            let image = self
                .version_image(subject, n, digest)
                .await?
                .ok_or_else(|| {
                    Error::LostRace(format!(
                        "{subject}@{n} was deleted during the push; try again"
                    ))
                })?;
            out.push(image);
        }
        Ok(out)
    }
}

/// Breaking changes of `current` against `previous` under `config`'s categories, off the
/// async workers.
pub(crate) async fn breaking(
    current: Arc<Image>,
    previous: Arc<Image>,
    config: Config,
) -> Result<Vec<Finding>> {
    blocking(move || domain::breaking(&current, &previous, &config))
        .await?
        .map_err(|e| Error::Internal(format!("check failed: {e}")))
}
