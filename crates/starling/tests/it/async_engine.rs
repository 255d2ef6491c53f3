//! The async front: mirrored operations, the bound on running calls,
//! cancellation, closing, and subscription streams.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use starling::{
    AsyncEngine, Config, Error, Event, GenericEngine, MemBackend, PostId, Subscription,
};

type Mem = AsyncEngine<MemBackend>;

fn engine(threads: usize) -> Mem {
    let engine =
        GenericEngine::with_backend(MemBackend::new(), Config::default()).expect("engine opens");
    AsyncEngine::with_threads(engine, threads).expect("in range")
}

/// A gate a blocking call waits at until the test releases it.
type Gate = Arc<(Mutex<bool>, Condvar)>;

fn gate() -> Gate {
    Arc::new((Mutex::new(false), Condvar::new()))
}

fn hold(gate: &Gate) {
    let (open, changed) = &**gate;
    let mut open = open.lock().expect("gate");
    while !*open {
        open = changed.wait(open).expect("gate");
    }
}

fn release(gate: &Gate) {
    *gate.0.lock().expect("gate") = true;
    gate.1.notify_all();
}

async fn next(events: &mut Subscription) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event or the end, in time")
}

#[tokio::test]
async fn operations_run_and_events_stream_until_close() -> Result<(), Error> {
    let engine = engine(4);
    let ada = engine.create_user("ada").await?;
    let bob = engine.create_user("bob").await?;
    assert!(engine.follow(bob.id, ada.id).await?);
    let mut events = engine.subscribe(bob.id).await?;
    let first = engine.post(ada.id, "one").await?;
    let second = engine.post(ada.id, "two").await?;
    // Two fan-out workers deliver the two posts: either may publish first.
    let mut added = [next(&mut events).await, next(&mut events).await];
    added.sort_by_key(|e| match e {
        Some(Event::TimelineAdded { post }) => *post,
        _ => PostId(0),
    });
    assert_eq!(
        added,
        [
            Some(Event::TimelineAdded { post: first.id }),
            Some(Event::TimelineAdded { post: second.id })
        ]
    );
    engine.wait_for_fanout().await?;
    let home = engine.home_timeline(bob.id, None, 10).await?;
    let ids: Vec<_> = home.posts.iter().map(|p| p.id).collect();
    assert_eq!(ids, [second.id, first.id]);
    assert_eq!(engine.user_by_name("ada").await?.id, ada.id);
    assert!(matches!(
        engine.user_by_name("nobody").await,
        Err(Error::UnknownUsername(_))
    ));

    let clone = engine.clone();
    clone.close().await?;
    assert_eq!(next(&mut events).await, None, "closing ends the stream");
    assert!(matches!(engine.user(ada.id).await, Err(Error::Closed)));
    assert!(matches!(engine.subscribe(ada.id).await, Err(Error::Closed)));
    engine.close().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_calls_run_at_once_than_the_pool_has_threads() -> Result<(), Error> {
    let engine = engine(3);
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (engine, running, most) = (engine.clone(), running.clone(), most.clone());
        tasks.push(tokio::spawn(async move {
            engine
                .call(move |e| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(15));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok::<_, Error>(e.is_poisoned())
                })
                .await
        }));
    }
    for task in tasks {
        assert!(!task.await.expect("task")?);
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "the bound is reached, never passed"
    );
    engine.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_future_either_never_ran_or_runs_to_completion() -> Result<(), Error> {
    let engine = engine(1);
    let ada = engine.create_user("ada").await?;
    let gate = gate();

    // Started on the pool, then dropped: the call still completes.
    let started = {
        let gate = gate.clone();
        engine.call(move |e| {
            hold(&gate);
            e.post(ada.id, "finished anyway")
        })
    };
    let dropped = tokio::time::timeout(Duration::from_millis(50), started).await;
    assert!(dropped.is_err(), "the call was still held");

    // Waiting for its turn (the only permit is held), then dropped: never runs.
    let waiting = engine.create_user("never");
    let dropped = tokio::time::timeout(Duration::from_millis(50), waiting).await;
    assert!(dropped.is_err(), "the call was still waiting");

    release(&gate);
    let posts = engine.author_timeline(ada.id, None, 10).await?;
    assert_eq!(posts.posts.len(), 1);
    assert_eq!(posts.posts[0].text, "finished anyway");
    assert!(matches!(
        engine.user_by_name("never").await,
        Err(Error::UnknownUsername(_))
    ));
    engine.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_waits_for_running_calls_and_refuses_new_ones() -> Result<(), Error> {
    let engine = engine(2);
    let ada = engine.create_user("ada").await?;
    let gate = gate();
    let running = {
        let (engine, gate) = (engine.clone(), gate.clone());
        tokio::spawn(async move {
            engine
                .call(move |e| {
                    hold(&gate);
                    e.post(ada.id, "before close")
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let closing = {
        let engine = engine.clone();
        tokio::spawn(async move { engine.close().await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(!closing.is_finished(), "close waits for the running call");
    release(&gate);
    let post = running.await.expect("task")?;
    assert_eq!(post.text, "before close");
    closing.await.expect("task")?;
    assert!(matches!(
        engine.post(ada.id, "after").await,
        Err(Error::Closed)
    ));
    Ok(())
}

#[test]
fn bad_pool_sizes_are_typed_errors_and_no_runtime_is_needed() -> Result<(), Error> {
    let make = || GenericEngine::with_backend(MemBackend::new(), Config::default());
    for bad in [0, starling::MAX_THREADS + 1] {
        let refused = AsyncEngine::with_threads(make()?, bad);
        assert!(matches!(refused, Err(Error::InvalidConfig(_))), "{bad}");
    }
    let engine = AsyncEngine::new(make()?)?;
    assert_eq!(engine.threads(), starling::DEFAULT_THREADS);
    // Outside any runtime, the futures still complete.
    let ada = block_on(engine.create_user("ada"))?;
    assert_eq!(block_on(engine.user(ada.id))?.name, ada.name);
    block_on(engine.close())?;
    assert!(matches!(block_on(engine.user(ada.id)), Err(Error::Closed)));
    Ok(())
}

/// Polls `future` to completion on this thread, parking between polls.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// A writer whose bytes the test reads after the export.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn export_runs_on_the_pool_and_fails_typed() -> Result<(), Error> {
    let engine = engine(2);
    let ada = engine.create_user("ada").await?;
    engine.post(ada.id, "exported").await?;
    let out = Shared::default();
    let summary = engine.export(ada.id, out.clone()).await?;
    let bytes = out.0.lock().expect("buffer").clone();
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(summary.posts, 1);
    let doc = String::from_utf8(bytes).expect("UTF-8");
    assert!(
        doc.starts_with("{\"format\":\"starling-export-1\""),
        "{doc}"
    );
    assert!(doc.contains("\"text\":\"exported\""), "{doc}");
    let unknown = engine.export(starling::UserId(99), Shared::default()).await;
    assert!(matches!(unknown, Err(Error::UnknownUser(_))), "{unknown:?}");
    engine.close().await
}
