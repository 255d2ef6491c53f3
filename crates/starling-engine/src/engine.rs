//! The engine itself: its lifecycle (open, the fan-out workers started and
//! joined, close) and its counters. Operations live in the modules of
//! their jobs (`users`, `posting`, `reads`, `social`, `direct`), each an
//! `impl Engine` block over the shared base.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use starling_core::paging::{PAGE, for_each_page};
use starling_core::{Config, Error, Result};
use starling_store::{Backend, ClusterAddress};

use crate::base::Shared;
use crate::codes::{CodeSource, OsCodes};

/// Fan-out counters since the engine opened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FanoutStats {
    /// Jobs queued or running.
    pub jobs_pending: u64,
    /// Jobs finished.
    pub jobs_done: u64,
    /// Unfinished jobs found at open and resumed.
    pub jobs_resumed: u64,
    /// Inbox entries written or removed by fan-out workers.
    pub entries_delivered: u64,
    /// `entries_delivered` per second of worker busy time.
    pub entries_per_sec: f64,
}

/// The engine over backend `B`. Operations take `&self` and may be called
/// from many threads; fan-out runs on a pool of owned worker threads that
/// [`Engine::close`] (or drop) joins.
pub struct Engine<B: Backend> {
    pub(crate) shared: Arc<Shared<B>>,
    workers: Vec<JoinHandle<()>>,
}

impl<B> Engine<B>
where
    B: Backend + for<'a> TryFrom<(&'a Path, &'a Config), Error = Error>,
{
    /// Opens (creating if missing) the store at `path` and resumes any
    /// unfinished fan-out, for backends that live at a path on disk (they
    /// say so by converting from a path and a configuration).
    pub fn open(path: impl AsRef<Path>, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let backend = B::try_from((path.as_ref(), &config))?;
        Engine::with_backend(backend, config)
    }
}

impl<B> Engine<B>
where
    B: Backend + for<'a> TryFrom<ClusterAddress<'a>, Error = Error>,
{
    /// Connects to the store `namespace` on the servers at `urls` (seed
    /// addresses, comma-separated) and resumes any unfinished fan-out, for
    /// backends of stores that live on servers (they say so by converting
    /// from a [`ClusterAddress`]).
    pub fn connect(urls: &str, namespace: &str, config: Config) -> Result<Engine<B>> {
        config.validate()?;
        let backend = B::try_from(ClusterAddress {
            urls,
            namespace,
            config: &config,
        })?;
        Engine::with_backend(backend, config)
    }
}

impl<B: Backend> Engine<B> {
    /// Starts an engine over an opened backend and resumes its pending jobs.
    /// Phone confirmation codes come from the operating system's CSPRNG.
    pub fn with_backend(backend: B, config: Config) -> Result<Engine<B>> {
        Engine::with_backend_and_codes(backend, config, Box::new(OsCodes))
    }

    /// [`Engine::with_backend`] with phone confirmation codes drawn from
    /// `codes` (tests give a source they can predict).
    pub fn with_backend_and_codes(
        backend: B,
        config: Config,
        codes: Box<dyn CodeSource>,
    ) -> Result<Engine<B>> {
        config.validate()?;
        let workers = config.fanout_workers;
        let (sender, receiver) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared::new(backend, config, codes, sender)?);
        let mut engine = Engine {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(workers),
        };
        for i in 0..workers {
            let shared = Arc::clone(&shared);
            let receiver = receiver.clone();
            let handle = std::thread::Builder::new()
                .name(format!("starling-fanout-{i}"))
                .spawn(move || shared.work(&receiver))
                .map_err(|e| Error::Internal(format!("cannot start a fan-out worker: {e}")))?;
            engine.workers.push(handle);
        }
        for_each_page(
            PAGE,
            |after, size, jobs| shared.backend.jobs(after, size, jobs),
            |job| job.post,
            |jobs| {
                for job in jobs {
                    shared.enqueue(job.post);
                }
                shared
                    .jobs_resumed
                    .fetch_add(jobs.len() as u64, Ordering::Relaxed);
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(engine)
    }

    /// The backend, for inspection (tests, tools).
    pub fn backend(&self) -> &B {
        &self.shared.backend
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Stops the fan-out workers after their current batch and joins them.
    /// Unfinished jobs stay durable and resume on the next open.
    pub fn close(mut self) -> Result<()> {
        self.shutdown();
        if self.shared.is_poisoned() {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.shared.close_queue();
        for handle in self.workers.drain(..) {
            // A worker that panicked has nothing left to join.
            let _ = handle.join();
        }
        // Nothing will run what is still queued.
        self.shared.clear_pending();
        // No worker publishes any more: end every subscription.
        self.shared.hub.close();
    }

    /// Whether a failed write poisoned the engine: it then refuses writes
    /// until reopened (reads keep working).
    pub fn is_poisoned(&self) -> bool {
        self.shared.is_poisoned()
    }

    /// Blocks until every queued fan-out job has finished.
    pub fn wait_for_fanout(&self) -> Result<()> {
        self.shared.wait_idle();
        self.shared.check_writable()
    }

    /// Fan-out counters since open.
    pub fn fanout_stats(&self) -> FanoutStats {
        let s = &self.shared;
        let delivered = s.delivered.load(Ordering::Relaxed);
        let busy = s.busy_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        FanoutStats {
            jobs_pending: s.pending(),
            jobs_done: s.jobs_done.load(Ordering::Relaxed),
            jobs_resumed: s.jobs_resumed.load(Ordering::Relaxed),
            entries_delivered: delivered,
            entries_per_sec: if busy > 0.0 {
                delivered as f64 / busy
            } else {
                0.0
            },
        }
    }
}

impl<B: Backend> Drop for Engine<B> {
    fn drop(&mut self) {
        self.shutdown();
    }
}
