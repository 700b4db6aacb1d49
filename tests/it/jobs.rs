use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hisp_gateway::jobs::{self, JobError, JobRegistry, Worker};
use hisp_gateway::store;
use hisp_gateway::store::jobs::Outcome;
use serde_json::json;

use crate::helpers::{TestApp, TestDb, TestOptions, stderr, stdout, test_config};

async fn job_state(app: &TestApp, id: i64) -> store::jobs::JobRow {
    store::jobs::get(&app.db.pool, id).await.unwrap().unwrap()
}

async fn enqueue(app: &TestApp, kind: &str) -> i64 {
    let mut conn = app.db.pool.acquire().await.unwrap();
    jobs::enqueue(&mut conn, &app.state.retry, kind, json!({"n": 1}))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_transient_failure_is_retried_with_growing_delays_then_succeeds() {
    let calls = Arc::new(AtomicU32::new(0));
    let mut registry = JobRegistry::new();
    let c = calls.clone();
    registry.register("test.flaky", move |job| {
        let c = c.clone();
        async move {
            assert_eq!(job.payload["n"], 1);
            match c.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(JobError::Transient("peer unavailable".into())),
                _ => Ok(()),
            }
        }
    });
    // Schedule 2s, 8s, 30s with 20% jitter (test_config).
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;
    let id = enqueue(&app, "test.flaky").await;

    let started = Utc::now();
    assert_eq!(
        app.worker.run_until_idle().await.unwrap(),
        1,
        "the first attempt runs, the retry is not due yet"
    );
    let after_first = job_state(&app, id).await;
    assert_eq!(
        (after_first.state.as_str(), after_first.attempts),
        ("queued", 1)
    );
    assert_eq!(after_first.last_error.as_deref(), Some("peer unavailable"));
    let first_delay = secs(after_first.run_at - started);
    assert!(
        (1.5..=2.6).contains(&first_delay),
        "first delay {first_delay}s"
    );

    // Step the clock to the retry instead of sleeping.
    app.worker.run_due_at(after_first.run_at).await.unwrap();
    let after_second = job_state(&app, id).await;
    assert_eq!(
        (after_second.state.as_str(), after_second.attempts),
        ("queued", 2)
    );
    let second_delay = secs(after_second.run_at - after_first.run_at);
    assert!(
        (6.3..=9.7).contains(&second_delay),
        "second delay {second_delay}s"
    );
    assert!(second_delay > first_delay);

    app.worker.run_due_at(after_second.run_at).await.unwrap();
    let done = job_state(&app, id).await;
    assert_eq!(
        (done.state.as_str(), done.attempts, done.last_error),
        ("done", 3, None)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

#[tokio::test]
async fn a_job_that_always_fails_ends_dead_and_can_be_requeued_from_the_cli() {
    let mut registry = JobRegistry::new();
    registry.register("test.doomed", |_| async {
        Err(JobError::Transient("connection refused".into()))
    });
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;
    let id = enqueue(&app, "test.doomed").await;

    let mut clock: DateTime<Utc> = Utc::now();
    for _ in 0..10 {
        app.worker.run_due_at(clock).await.unwrap();
        let j = job_state(&app, id).await;
        if j.state == "dead" {
            break;
        }
        clock = j.run_at;
    }
    let dead = job_state(&app, id).await;
    assert_eq!(dead.state, "dead");
    assert_eq!(
        dead.attempts, 4,
        "3 retries in the schedule + the first attempt"
    );
    assert_eq!(dead.last_error.as_deref(), Some("connection refused"));

    let listed = app.cli(&["jobs", "list", "--state", "dead"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let line = stdout(&listed)
        .lines()
        .find(|l| l.trim_start().starts_with(&id.to_string()))
        .map(str::to_owned);
    let line = line.unwrap_or_else(|| panic!("job {id} not listed:\n{}", stdout(&listed)));
    assert!(
        line.contains("test.doomed") && line.contains("4/4") && line.contains("connection refused"),
        "{line}"
    );
    let queued = app.cli(&["jobs", "list", "--state", "queued"]);
    assert!(!stdout(&queued).contains("test.doomed"));

    let retried = app.cli(&["jobs", "retry", &id.to_string()]);
    assert!(retried.status.success(), "{}", stderr(&retried));
    let again = job_state(&app, id).await;
    assert_eq!((again.state.as_str(), again.attempts), ("queued", 0));
    let not_dead = app.cli(&["jobs", "retry", &id.to_string()]);
    assert!(!not_dead.status.success(), "only dead jobs are re-queued");
}

#[tokio::test]
async fn permanent_failures_and_unknown_kinds_are_dead_at_once() {
    let mut registry = JobRegistry::new();
    registry.register("test.refused", |_| async {
        Err(JobError::Permanent("recipient refused for good".into()))
    });
    registry.register("test.panics", |_| async { panic!("handler bug") });
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;
    let refused = enqueue(&app, "test.refused").await;
    let unknown = enqueue(&app, "test.nobody-handles-this").await;
    let panics = enqueue(&app, "test.panics").await;
    app.worker.run_until_idle().await.unwrap();
    assert_eq!(job_state(&app, refused).await.state, "dead");
    assert_eq!(job_state(&app, refused).await.attempts, 1);
    let u = job_state(&app, unknown).await;
    assert_eq!(u.state, "dead");
    assert!(u.last_error.unwrap().contains("no handler"));
    // A panic is a failed attempt, retried like any transient failure.
    let p = job_state(&app, panics).await;
    assert_eq!(
        (p.state.as_str(), p.last_error.as_deref()),
        ("queued", Some("handler panicked"))
    );
}

#[tokio::test]
async fn two_workers_over_200_jobs_run_each_exactly_once() {
    let db = TestDb::new().await;
    let second_pool = db.second_pool().await;
    let runs: Arc<Mutex<HashMap<i64, u32>>> = Arc::default();
    let by_worker: Arc<[AtomicU32; 2]> = Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let registry_for = |w: usize| {
        let (runs, by_worker) = (runs.clone(), by_worker.clone());
        let mut r = JobRegistry::new();
        r.register("test.count", move |job| {
            let (runs, by_worker) = (runs.clone(), by_worker.clone());
            async move {
                *runs.lock().unwrap().entry(job.id).or_default() += 1;
                by_worker[w].fetch_add(1, Ordering::SeqCst);
                // Long enough that both workers are claiming at the same time.
                tokio::time::sleep(Duration::from_millis(3)).await;
                Ok(())
            }
        });
        r
    };
    let config = test_config();
    let w1 = Worker::new(db.pool.clone(), registry_for(0), &config.jobs);
    let w2 = Worker::new(second_pool, registry_for(1), &config.jobs);

    let mut tx = db.pool.begin().await.unwrap();
    for i in 0..200 {
        jobs::enqueue(&mut tx, w1.policy(), "test.count", json!({ "i": i }))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();

    let (a, b) = tokio::join!(w1.run_until_idle(), w2.run_until_idle());
    assert_eq!(a.unwrap() + b.unwrap(), 200);
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 200);
    assert!(
        runs.values().all(|n| *n == 1),
        "some job ran twice: {runs:?}"
    );
    let (n1, n2) = (
        by_worker[0].load(Ordering::SeqCst),
        by_worker[1].load(Ordering::SeqCst),
    );
    assert!(n1 > 0 && n2 > 0, "both workers took part ({n1} / {n2})");
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state = 'done'")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(done, 200);
}

#[tokio::test]
async fn a_job_whose_worker_vanished_is_taken_over_after_its_lease() {
    let mut registry = JobRegistry::new();
    registry.register("test.ok", |_| async { Ok(()) });
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;
    let id = enqueue(&app, "test.ok").await;
    // A replica claims the job and dies before finishing it.
    let now = Utc::now();
    let lease = test_config().jobs.lease;
    let claimed = store::jobs::claim(&app.db.pool, "crashed-replica", now, now + lease, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    assert_eq!(
        app.worker.run_until_idle().await.unwrap(),
        0,
        "not while the lease holds"
    );
    assert_eq!(job_state(&app, id).await.state, "running");
    app.worker
        .run_due_at(now + lease + Duration::from_secs(1))
        .await
        .unwrap();
    let j = job_state(&app, id).await;
    assert_eq!((j.state.as_str(), j.attempts), ("done", 2));
    // The crashed replica's late report changes nothing.
    assert!(
        !store::jobs::finish(
            &app.db.pool,
            id,
            "crashed-replica",
            Outcome::Dead { error: "late" }
        )
        .await
        .unwrap()
    );
    assert_eq!(job_state(&app, id).await.state, "done");
}

#[tokio::test]
async fn the_background_worker_runs_committed_jobs_and_never_rolled_back_ones() {
    let ran = Arc::new(Mutex::new(Vec::new()));
    let mut registry = JobRegistry::new();
    let r = ran.clone();
    registry.register("test.effect", move |job| {
        let r = r.clone();
        async move {
            r.lock()
                .unwrap()
                .push(job.payload["tag"].as_str().unwrap().to_owned());
            Ok(())
        }
    });
    let mut config = test_config();
    // Long poll interval: only the NOTIFY sent at commit can wake the worker in time.
    config.jobs.poll_interval = Duration::from_secs(60);
    let app = TestApp::spawn_with(TestOptions {
        config,
        registry,
        background_worker: true,
        ..Default::default()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the worker's LISTEN is in place

    let mut tx = app.db.pool.begin().await.unwrap();
    jobs::enqueue(
        &mut tx,
        &app.state.retry,
        "test.effect",
        json!({"tag": "rolled-back"}),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    let mut tx = app.db.pool.begin().await.unwrap();
    let id = jobs::enqueue(
        &mut tx,
        &app.state.retry,
        "test.effect",
        json!({"tag": "committed"}),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while job_state(&app, id).await.state != "done" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not run the job"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(*ran.lock().unwrap(), ["committed"]);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_the_jobs_that_are_running() {
    let finished = Arc::new(AtomicU32::new(0));
    let mut registry = JobRegistry::new();
    let f = finished.clone();
    registry.register("test.slow", move |_| {
        let f = f.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            f.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let mut config = test_config();
    config.jobs.poll_interval = Duration::from_millis(50);
    let app = TestApp::spawn_with(TestOptions {
        config,
        registry,
        background_worker: true,
        ..Default::default()
    })
    .await;
    let pool = app.db.pool.clone();
    let id = enqueue(&app, "test.slow").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while job_state(&app, id).await.state != "running" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    app.stop().await;
    assert_eq!(
        finished.load(Ordering::SeqCst),
        1,
        "stop returned before the job finished"
    );
    let state: String = sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "done");
}

/// Jobs of one chain run one at a time in the order they were queued: a later one waits while
/// an earlier one is retried, and goes once that one succeeded or died. Other chains and
/// unchained jobs run meanwhile.
#[tokio::test]
async fn chained_jobs_run_in_order_and_wait_for_a_retried_predecessor() {
    let order = Arc::new(Mutex::new(Vec::<String>::new()));
    let failures_left = Arc::new(AtomicU32::new(1));
    let mut registry = JobRegistry::new();
    let (o, f) = (order.clone(), failures_left.clone());
    registry.register("test.step", move |job| {
        let (o, f) = (o.clone(), f.clone());
        async move {
            let name = job.payload["name"].as_str().unwrap().to_owned();
            if name == "a1"
                && f.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err(JobError::Transient("first try fails".into()));
            }
            o.lock().unwrap().push(name);
            Ok(())
        }
    });
    let app = TestApp::spawn_with(TestOptions {
        registry,
        ..Default::default()
    })
    .await;
    let mut conn = app.db.pool.acquire().await.unwrap();
    for (chain, name) in [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1")] {
        jobs::enqueue_chained(
            &mut conn,
            &app.state.retry,
            "test.step",
            chain,
            json!({ "name": name }),
        )
        .await
        .unwrap();
    }
    jobs::enqueue(
        &mut conn,
        &app.state.retry,
        "test.step",
        json!({"name": "free"}),
    )
    .await
    .unwrap();
    drop(conn);

    app.worker.run_until_idle().await.unwrap();
    let mut ran = order.lock().unwrap().clone();
    ran.sort();
    assert_eq!(
        ran,
        vec!["b1", "free"],
        "a2 and a3 wait behind the failed a1"
    );

    app.worker
        .run_due_at(Utc::now() + chrono::Duration::seconds(5))
        .await
        .unwrap();
    let ran = order.lock().unwrap().clone();
    assert_eq!(&ran[2..], ["a1", "a2", "a3"]);

    // A dead job lets the rest of its chain go.
    failures_left.store(u32::MAX, Ordering::SeqCst);
    let mut conn = app.db.pool.acquire().await.unwrap();
    for name in ["a1", "after-dead"] {
        jobs::enqueue_chained(
            &mut conn,
            &app.state.retry,
            "test.step",
            "c",
            json!({ "name": name }),
        )
        .await
        .unwrap();
    }
    drop(conn);
    let mut t = Utc::now();
    for _ in 0..6 {
        app.worker.run_due_at(t).await.unwrap();
        t += chrono::Duration::seconds(40);
    }
    assert_eq!(order.lock().unwrap().last().unwrap(), "after-dead");
}
