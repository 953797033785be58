//! The lock queue (`?wait=`, `--lock-wait`): FIFO on one replica, hand-off on UNLOCK by
//! notification, releases elsewhere seen by polling, expiry, and shutdown answering waiters.
//!
//! Timing assertions are about causality: the poll interval is set far above the bound, so
//! meeting the bound proves that the notification, not the poll, did the work.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{Holder, KEY, Replica, direct_client, memory_store};
use statelock_core::StateKey;
use statelock_http::LockPolicy;

fn polling_every(poll_interval: Duration) -> LockPolicy {
    LockPolicy {
        poll_interval,
        ..LockPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_on_one_replica_get_the_lock_first_come_first_served() {
    const WAITERS: usize = 4;
    let replica = Replica::new(memory_store(), polling_every(Duration::from_secs(30)));
    let first = Holder::new("first@host");
    assert_eq!(replica.lock(&first, "").await.status, StatusCode::OK);

    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..WAITERS {
        let (replica2, order) = (replica.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let me = Holder::new(&format!("waiter{i}@host"));
            let reply = replica2.lock(&me, "?wait=20s").await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            order.lock().unwrap().push(i);
            // Hold briefly, so a waiter that jumped the queue would be seen holding it.
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(replica2.unlock(&me).await.status, StatusCode::OK);
        }));
        // Arrival order is only defined once each request has queued.
        replica.until_waiters(i + 1).await;
    }
    let started = Instant::now();
    assert_eq!(replica.unlock(&first).await.status, StatusCode::OK);
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..WAITERS).collect::<Vec<_>>());
    // Four hand-offs with a 30 s poll interval: only notifications explain finishing early.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let key = StateKey::parse(KEY).unwrap();
    assert_eq!(replica.state.lock_waiters(&key), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlock_hands_the_lock_to_the_waiter_within_milliseconds() {
    let replica = Replica::new(memory_store(), polling_every(Duration::from_secs(5)));
    let holder = Holder::new("holder@host");
    let waiter = Holder::new("waiter@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);
    let task = {
        let (replica, waiter) = (replica.clone(), waiter.clone());
        tokio::spawn(async move {
            let reply = replica.lock(&waiter, "?wait=30s").await;
            (reply, Instant::now())
        })
    };
    replica.until_waiters(1).await;
    // Long enough for the head's first attempt to have failed and its poll sleep to start.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!task.is_finished(), "the waiter got a held lock");
    let released = Instant::now();
    assert_eq!(replica.unlock(&holder).await.status, StatusCode::OK);
    let (reply, granted) = task.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), waiter.stored());
    let latency = granted - released;
    println!("hand-off latency after UNLOCK: {latency:?}");
    assert!(latency < Duration::from_millis(200), "{latency:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_on_another_replica_is_seen_within_the_poll_interval() {
    let store = memory_store();
    let poll = Duration::from_millis(300);
    let replica = Replica::new(store.clone(), polling_every(poll));
    let elsewhere = direct_client(store);
    let key = StateKey::parse(KEY).unwrap();
    let holder = Holder::new("other-replica@host");
    elsewhere.acquire(&key, holder.info.clone()).await.unwrap();

    let waiter = Holder::new("waiter@host");
    let task = {
        let (replica, waiter) = (replica.clone(), waiter.clone());
        tokio::spawn(async move { (replica.lock(&waiter, "?wait=30s").await, Instant::now()) })
    };
    replica.until_waiters(1).await;
    tokio::time::sleep(poll * 2).await;
    assert!(!task.is_finished(), "the waiter got a held lock");
    let released = Instant::now();
    elsewhere.release(&key, &holder.info.id).await.unwrap();
    let (reply, granted) = task.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let seen_after = granted - released;
    println!("release on another replica seen after {seen_after:?} (poll {poll:?})");
    assert!(
        seen_after < poll + Duration::from_millis(200),
        "{seen_after:?}"
    );
}

#[tokio::test]
async fn an_expired_wait_is_423_with_the_holder() {
    let replica = Replica::new(memory_store(), LockPolicy::default());
    let holder = Holder::new("holder@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);
    let started = Instant::now();
    let reply = replica.lock(&Holder::new("late@host"), "?wait=300ms").await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert_eq!(reply.text(), holder.stored());
    assert!(
        reply.explanation().contains("after waiting"),
        "{}",
        reply.explanation()
    );
}

#[tokio::test]
async fn the_server_default_wait_applies_unless_the_request_says_otherwise() {
    let replica = Replica::new(
        memory_store(),
        LockPolicy {
            wait: Duration::from_millis(300),
            ..LockPolicy::default()
        },
    );
    let holder = Holder::new("holder@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);

    let started = Instant::now();
    let reply = replica.lock(&Holder::new("a@host"), "").await;
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert!(started.elapsed() >= Duration::from_millis(300));

    let started = Instant::now();
    let reply = replica.lock(&Holder::new("b@host"), "?wait=0").await;
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert_eq!(reply.text(), holder.stored());
    assert!(started.elapsed() < Duration::from_millis(250));
}

#[tokio::test]
async fn a_bad_or_too_long_wait_is_400_and_takes_nothing() {
    let replica = Replica::new(memory_store(), LockPolicy::default());
    for query in ["?wait=soon", "?wait=2h", "?wait=-1s"] {
        let reply = replica.lock(&Holder::new("a@host"), query).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.text().contains("?wait="), "{}", reply.text());
    }
    // The lock is still free.
    assert_eq!(
        replica.lock(&Holder::new("b@host"), "").await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_waiters_instead_of_dropping_them() {
    let replica = Replica::new(memory_store(), polling_every(Duration::from_secs(30)));
    let holder = Holder::new("holder@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);
    let tasks: Vec<_> = (0..2)
        .map(|i| {
            let replica = replica.clone();
            tokio::spawn(async move {
                replica
                    .lock(&Holder::new(&format!("w{i}@host")), "?wait=60s")
                    .await
            })
        })
        .collect();
    replica.until_waiters(2).await;

    let started = Instant::now();
    replica.state.begin_shutdown();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::LOCKED);
        assert_eq!(reply.text(), holder.stored());
        assert!(
            reply.explanation().contains("shutting down"),
            "{}",
            reply.explanation()
        );
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    // Later waiting LOCKs are answered at once rather than queued.
    let started = Instant::now();
    let reply = replica.lock(&Holder::new("late@host"), "?wait=60s").await;
    assert_eq!(reply.status, StatusCode::LOCKED);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_that_will_not_wait_does_not_overtake_the_queue() {
    let replica = Replica::new(memory_store(), polling_every(Duration::from_secs(30)));
    let holder = Holder::new("holder@host");
    let waiter = Holder::new("waiter@host");
    let impatient = Holder::new("impatient@host");
    assert_eq!(replica.lock(&holder, "").await.status, StatusCode::OK);
    let task = {
        let (replica, waiter) = (replica.clone(), waiter.clone());
        tokio::spawn(async move { replica.lock(&waiter, "?wait=30s").await })
    };
    replica.until_waiters(1).await;
    let refused = replica.lock(&impatient, "").await;
    assert_eq!(refused.status, StatusCode::LOCKED);
    assert_eq!(refused.text(), holder.stored());
    assert!(
        refused.explanation().contains("1 request(s) are waiting"),
        "{}",
        refused.explanation()
    );
    // The UNLOCK hands the lock to the waiter, not to whoever asks next.
    assert_eq!(replica.unlock(&holder).await.status, StatusCode::OK);
    let granted = task.await.unwrap();
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text());
    assert_eq!(
        replica.lock(&impatient, "").await.status,
        StatusCode::LOCKED
    );
}
