//! Accepted messages that wait for the database together are written by one statement, and
//! each request still gets its own answer: replays, refusals and a message the database
//! rejects stay with their own request.

use super::*;
use crate::helpers::count;

/// A transaction holding a lock that every write of a message waits on, until it commits.
async fn lock_messages(db: &sqlx::PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = db.begin().await.unwrap();
    sqlx::query("LOCK TABLE messages IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    lock
}

/// Statements of the test database waiting for a lock.
async fn lock_waiters(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE wait_event_type = 'Lock' AND datname = current_database()",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Returns once `n` statements wait for a lock (the test's), failing the test after 10 s.
async fn until_lock_waiters(db: &sqlx::PgPool, n: i64) {
    let wait = async {
        while lock_waiters(db).await < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the statements reached the database");
}

/// Runs `sends` while the test holds a lock every write of a message waits on: one send
/// (`first`) takes the only statement and waits on the lock, the rest queue behind it, and
/// the lock is let go once all of them are queued. Returns the status and body of each.
async fn queued_behind_one(
    w: &World,
    first: &Value,
    sends: Vec<(&(Uuid, String), Value)>,
) -> (u16, Vec<(u16, Value)>) {
    let db = &w.f.app.db.pool;
    let lock = lock_messages(db).await;
    let expected = sends.len();
    let first = async {
        let r = w.send(first).await;
        r.status().as_u16()
    };
    let rest = async {
        until_lock_waiters(db, 1).await;
        futures_util::future::join_all(sends.iter().map(|(who, body)| async move {
            let r = w.f.app.post_json_as(SEND, who, body).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }))
        .await
    };
    let release = async {
        let queued = async {
            while w.f.app.state.messaging.waiting_sends() < expected {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), queued)
            .await
            .expect("every other send queued behind the first");
        lock.commit().await.unwrap();
    };
    let (first, rest, ()) = tokio::join!(first, rest, release);
    (first, rest)
}

/// One statement in flight, so that every send queued behind the first goes into the next.
async fn one_statement_at_a_time() -> World {
    let mut opts = TestOptions::default();
    opts.config.messaging.send_statements_in_flight = 1;
    World::with(opts).await
}

#[tokio::test]
async fn sends_that_wait_together_are_written_together_and_each_answered_its_own() {
    let w = one_statement_at_a_time().await;
    let db = &w.f.app.db.pool;

    let mut sends: Vec<(&(Uuid, String), Value)> = (0..6)
        .map(|i| (&w.vendor_a, message(&format!("batch-{i}"), BEN, false)))
        .collect();
    sends.push((
        &w.vendor_a,
        message("batch-both", &format!("{BEN},{CY}"), true),
    ));
    // The same request twice: one message, the same reply to both.
    sends.push((&w.vendor_a, message("batch-twice", CY, false)));
    sends.push((&w.vendor_a, message("batch-twice", CY, false)));
    // Vendor B may not send from A's address.
    sends.push((&w.vendor_b, message("batch-foreign", CY, false)));

    let (first, replies) = queued_behind_one(&w, &message("batch-first", BEN, false), sends).await;
    assert_eq!(first, 200);
    for (i, (status, v)) in replies[..9].iter().enumerate() {
        assert_eq!(*status, 200, "send {i}: {v}");
    }
    assert_eq!(
        replies[7].1["transactionId"], replies[8].1["transactionId"],
        "a replay gets the first reply"
    );
    let (status, v) = &replies[9];
    assert_refused(*status, v, 403, "may send from");

    // Everything that queued went in one statement: its rows share one transaction.
    let transactions: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT xmin::text) FROM messages
         WHERE vendor_message_id LIKE 'batch-%' AND vendor_message_id <> 'batch-first'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert_eq!(transactions, 1, "the queued sends were written together");
    assert_eq!(count(db, "messages").await, 9);
    assert_eq!(count(db, "message_recipients").await, 10);
    // Each recipient here gets its one delivery, and each message its one timeout.
    let jobs: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM jobs WHERE kind LIKE 'messaging.%' GROUP BY kind ORDER BY kind",
    )
    .fetch_all(db)
    .await
    .unwrap();
    assert_eq!(
        jobs,
        [
            ("messaging.deliver".to_owned(), 10),
            ("messaging.timeout".to_owned(), 9)
        ]
    );
    w.drain().await;
    assert_eq!(
        w.inbox.accepted().len(),
        10,
        "each recipient delivered once"
    );
    assert_eq!(
        w.statuses("batch-both").await,
        [
            (BEN.to_owned(), "DISPATCHED".to_owned()),
            (CY.to_owned(), "DISPATCHED".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_message_the_database_rejects_fails_alone() {
    let w = one_statement_at_a_time().await;
    let db = &w.f.app.db.pool;
    // The database refuses any statement that writes a message with this subject.
    sqlx::query(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF NEW.subject = 'poison' THEN RAISE EXCEPTION 'refused by the test'; END IF;
             RETURN NEW;
         END $$",
    )
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages
         FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
    )
    .execute(db)
    .await
    .unwrap();

    let mut poison = message("poison-1", BEN, false);
    poison["messageSubject"] = json!("poison");
    let mut sends: Vec<(&(Uuid, String), Value)> = (0..4)
        .map(|i| (&w.vendor_a, message(&format!("fine-{i}"), BEN, false)))
        .collect();
    sends.insert(2, (&w.vendor_a, poison));

    let (first, replies) = queued_behind_one(&w, &message("fine-first", BEN, false), sends).await;
    assert_eq!(first, 200);
    let statuses: Vec<u16> = replies.iter().map(|(s, _)| *s).collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200], "{replies:?}");
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT vendor_message_id FROM messages ORDER BY vendor_message_id")
            .fetch_all(db)
            .await
            .unwrap();
    assert_eq!(
        stored,
        ["fine-0", "fine-1", "fine-2", "fine-3", "fine-first"],
        "all but the rejected message were written"
    );
    assert_eq!(count(db, "message_recipients").await, 5);
}

/// Two statements in flight, and the next one waits `linger` for company.
async fn lingering(linger: Duration) -> World {
    let mut opts = TestOptions::default();
    opts.config.messaging.send_statements_in_flight = 2;
    opts.config.messaging.send_linger = linger;
    World::with(opts).await
}

#[tokio::test]
async fn an_idle_gateway_writes_a_send_at_once_whatever_the_linger() {
    let w = lingering(Duration::from_secs(60)).await;
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        w.send(&message("alone", BEN, false)),
    )
    .await
    .expect("answered without waiting out the linger");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn while_a_statement_runs_the_next_waits_for_more_sends() {
    let w = lingering(Duration::from_secs(2)).await;
    let db = &w.f.app.db.pool;
    let lock = lock_messages(db).await;

    let (first_body, x_body, y_body) = (
        message("linger-first", BEN, false),
        message("linger-x", BEN, false),
        message("linger-y", BEN, false),
    );
    let first = w.send(&first_body);
    let later = async {
        // The first send's statement is running (held by the lock): the gateway is busy.
        until_lock_waiters(db, 1).await;
        let x = w.send(&x_body);
        let y = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            w.send(&y_body).await
        };
        tokio::join!(x, y)
    };
    let release = async {
        // The first statement and the one that waited for company.
        until_lock_waiters(db, 2).await;
        lock.commit().await.unwrap();
    };
    let (first, (x, y), ()) = tokio::join!(first, later, release);
    assert_eq!(
        [first.status(), x.status(), y.status()].map(|s| s.as_u16()),
        [200; 3]
    );
    let transactions: Vec<(String, String)> = sqlx::query_as(
        "SELECT vendor_message_id, xmin::text FROM messages ORDER BY vendor_message_id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let xmin = |id: &str| {
        transactions
            .iter()
            .find(|(m, _)| m == id)
            .map(|(_, x)| x.clone())
            .unwrap_or_else(|| panic!("{id} stored: {transactions:?}"))
    };
    assert_eq!(
        xmin("linger-x"),
        xmin("linger-y"),
        "a send that came 300 ms later went with the one waiting"
    );
    assert_ne!(xmin("linger-first"), xmin("linger-x"));
}
