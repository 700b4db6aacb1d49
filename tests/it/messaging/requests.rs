//! What the messaging door says to bad, repeated, unauthorized and excessive requests.

use super::*;
use crate::helpers::count;

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn each_invalid_field_is_a_400_naming_it_and_writes_nothing() {
    let w = World::new().await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "messageId",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("messageId");
            }),
        ),
        (
            "fromDirectAddress",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("fromDirectAddress");
            }),
        ),
        (
            "toDirectAddress",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("toDirectAddress");
            }),
        ),
        (
            "emailAttachmentList",
            Box::new(|v| {
                v.as_object_mut().unwrap().remove("emailAttachmentList");
            }),
        ),
        (
            "fromDirectAddress",
            Box::new(|v| v["fromDirectAddress"] = json!("ada-at-harbor")),
        ),
        (
            "toDirectAddress",
            Box::new(|v| v["toDirectAddress"] = json!(format!("{BEN},cy@@lakeside"))),
        ),
        (
            "attachmentContent",
            Box::new(|v| {
                v["emailAttachmentList"][1]["attachmentContent"] = json!("not base64 at all!")
            }),
        ),
        (
            "emailAttachmentList",
            Box::new(|v| v["emailAttachmentList"] = json!([])),
        ),
        (
            "attachmentClass",
            Box::new(|v| v["emailAttachmentList"][0]["attachmentClass"] = json!("xml document")),
        ),
        (
            "patientDOB",
            Box::new(|v| v["patientDOB"] = json!("26/02/1916")),
        ),
        ("xdm", Box::new(|v| v["xdm"] = json!("maybe"))),
    ];
    for (i, (field, mutate)) in cases.iter().enumerate() {
        let mut body = message(&format!("bad-{i}"), BEN, false);
        mutate(&mut body);
        let (status, v) = error_of(w.send(&body).await).await;
        assert_eq!(status, 400, "case {i}: {v}");
        assert_eq!(v["error"]["field"], *field, "case {i}: {v}");
        assert!(!v["error"]["message"].as_str().unwrap().is_empty());
    }
    // Not JSON at all.
    let r = w.send_text("{\"fromDirectAddress\": ").await;
    let (status, v) = error_of(r).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["code"], "malformed");
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 0);
    assert_eq!(count(&w.f.app.db.pool, "message_recipients").await, 0);
}

#[tokio::test]
async fn senders_must_be_granted_enabled_and_activated() {
    let w = World::new().await;
    // Vendor B may not send from A's address.
    let r =
        w.f.app
            .post_json_as(SEND, &w.vendor_b, &message("g-1", CY, false))
            .await;
    let (status, v) = error_of(r).await;
    assert_refused(status, &v, 403, "may send from");

    // An address ops disabled.
    let r =
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/addresses/{SENDER}/status")))
            .basic_auth(w.ops.0, Some(&w.ops.1))
            .json(&json!({"status": "disabled"}))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 204);
    let (status, v) = error_of(w.send(&message("g-2", BEN, false)).await).await;
    assert_refused(status, &v, 403, "disabled");

    // An organization still waiting for its certificate.
    let session = w.f.login(Mode::Soap12).await;
    let pending = "pending.direct.example.org";
    let form = crate::soap::standard_form(&address(8002, "pat", "Str0ng-Passw0rd"));
    w.f.call(
        Mode::Soap12,
        "ProvisionCertifiedProvider",
        &provision_body(&session, pending, "CDO5", &form),
    )
    .await
    .assert_code("000", "");
    w.grant(&w.vendor_a, pending).await;
    let mut body = message("g-3", BEN, false);
    body["fromDirectAddress"] = json!(format!("pat@{pending}"));
    let (status, v) = error_of(w.send(&body).await).await;
    assert_refused(status, &v, 403, "CertificatePending, not Activated");
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 0);

    // Only vendors use the messaging API; nobody unauthenticated.
    let r =
        w.f.app
            .post_json_as(SEND, &w.ops, &message("g-4", BEN, false))
            .await;
    assert_eq!(r.status(), 403);
    let r =
        w.f.app
            .http
            .post(w.url(SEND))
            .json(&message("g-5", BEN, false))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn a_replay_gets_the_first_reply_and_a_reused_message_id_is_409() {
    let w = World::new().await;
    let body = message("urn:uuid:replay-1", BEN, false);
    let first = w.send_ok(&body).await;
    let again = w.send_ok(&body).await;
    assert_eq!(first, again, "same transactionId, same reply");
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 1);

    let mut other = body.clone();
    other["messageSubject"] = json!("Something else");
    let (status, v) = error_of(w.send(&other).await).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("urn:uuid:replay-1")
    );
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 1);

    // Another vendor may use the same messageId for its own message.
    w.grant(&w.vendor_b, DOMAIN_A).await;
    let r = w.f.app.post_json_as(SEND, &w.vendor_b, &other).await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 2);
    w.drain().await;
    assert_eq!(w.inbox.accepted().len(), 2);
}

/// A replay is the same JSON values, however the vendor's library lays them out; and a message
/// accepted by an earlier version of the gateway, which stored another kind of fingerprint,
/// still answers its replays.
#[tokio::test]
async fn a_replay_laid_out_otherwise_or_stored_by_an_earlier_version_gets_the_first_reply() {
    let w = World::new().await;
    let body = message("urn:uuid:replay-layout", BEN, false);
    let first = w.send_ok(&body).await;

    // Pretty-printed, keys in reverse order, one character escaped.
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.reverse();
    let fields: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "\n    {}: {}",
                serde_json::to_string(k).unwrap(),
                serde_json::to_string_pretty(&body[k.as_str()]).unwrap()
            )
        })
        .collect();
    let relaid =
        format!("{{{}\n}}", fields.join(",")).replace("replay-layout", "replay-l\\u0061yout");
    assert_ne!(relaid, serde_json::to_string(&body).unwrap());
    let r = w.send_text(relaid.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), first);

    // What gateways stored before fingerprints had versions: SHA-256 of the request as
    // serde_json writes it.
    use sha2::Digest;
    let old = sha2::Sha256::digest(serde_json::to_vec(&body).unwrap()).to_vec();
    let changed = sqlx::query("UPDATE messages SET request_hash = $1 WHERE vendor_message_id = $2")
        .bind(&old)
        .bind("urn:uuid:replay-layout")
        .execute(&w.f.app.db.pool)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(changed, 1);
    assert_eq!(w.send_ok(&body).await, first);
    let r = w.send_text(relaid).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), first);
    let mut other = body.clone();
    other["messageSubject"] = json!("Something else");
    let (status, v) = error_of(w.send(&other).await).await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 1);
}

/// Requests that race with one messageId: the lookup before the insert finds nothing for all
/// of them, so the insert's conflict decides. One message is written whatever the order.
#[tokio::test]
async fn racing_requests_with_one_message_id_write_one_message() {
    let w = World::new().await;
    let body = message("urn:uuid:race-1", BEN, false);
    let replies = futures_util::future::join_all((0..8).map(|_| w.send(&body))).await;
    let mut ids = std::collections::HashSet::new();
    for r in replies {
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        ids.insert(v["transactionId"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every replay gets the first reply: {ids:?}");
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 1);
    assert_eq!(count(&w.f.app.db.pool, "message_recipients").await, 1);
    let jobs: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM jobs WHERE kind LIKE 'messaging.%' ORDER BY kind")
            .fetch_all(&w.f.app.db.pool)
            .await
            .unwrap();
    assert_eq!(jobs, ["messaging.deliver", "messaging.timeout"]);

    // Different requests racing for one messageId: one is accepted, the rest are conflicts.
    let bodies: Vec<Value> = (0..8)
        .map(|i| {
            let mut b = message("urn:uuid:race-2", BEN, false);
            b["messageSubject"] = json!(format!("Variant {i}"));
            b
        })
        .collect();
    let replies = futures_util::future::join_all(bodies.iter().map(|b| w.send(b))).await;
    let mut codes: Vec<u16> = replies.iter().map(|r| r.status().as_u16()).collect();
    codes.sort_unstable();
    assert_eq!(codes, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 2);
    w.drain().await;
    assert_eq!(w.inbox.accepted().len(), 2, "each message delivered once");
}

/// A vendor's secret is verified once and then remembered, but the send still confirms it in
/// the database: a vendor ops disabled, or whose stored secret changed, is refused from its
/// next request on, and nothing of that request is written.
#[tokio::test]
async fn a_disabled_vendor_or_a_changed_secret_is_refused_at_once() {
    let w = World::new().await;
    let db = &w.f.app.db.pool;
    w.send_ok(&message("before-1", BEN, false)).await;

    let new_secret = "a-new-secret-for-vendor-a".to_owned();
    let hash = hisp_gateway::auth::secrets::hash_secret(new_secret.clone())
        .await
        .unwrap();
    sqlx::query("UPDATE api_clients SET secret_hash = $1 WHERE id = $2")
        .bind(hash)
        .bind(w.vendor_a.0)
        .execute(db)
        .await
        .unwrap();
    let r = w.send(&message("after-change", BEN, false)).await;
    assert_eq!(r.status(), 401);
    assert_eq!(count(db, "messages").await, 1);
    let renewed = (w.vendor_a.0, new_secret);
    let r =
        w.f.app
            .post_json_as(SEND, &renewed, &message("after-change", BEN, false))
            .await;
    assert_eq!(r.status(), 200);
    assert_eq!(count(db, "messages").await, 2);

    let out =
        w.f.app
            .cli(&["client", "disable", &w.vendor_a.0.to_string()]);
    assert!(out.status.success(), "{out:?}");
    let r =
        w.f.app
            .post_json_as(SEND, &renewed, &message("after-disable", BEN, false))
            .await;
    assert_eq!(r.status(), 401);
    // Nor does a disabled vendor learn what is wrong with a request.
    let r =
        w.f.app
            .post_json_as(SEND, &renewed, &json!({"messageId": "no-fields"}))
            .await;
    assert_eq!(r.status(), 401);
    assert_eq!(count(db, "messages").await, 2);
}

/// Requests that arrive together with the same credentials share one secret check; right and
/// wrong secrets presented at the same moment for one vendor still each get their own answer.
#[tokio::test]
async fn simultaneous_first_requests_with_right_and_wrong_secrets() {
    let w = World::new().await;
    let wrong = (w.vendor_a.0, "not-the-secret".to_owned());
    let path = "/MessagingAPI/dirmsg/messages";
    let requests = (0..24).map(|i| {
        let who = if i % 2 == 0 { &w.vendor_a } else { &wrong };
        w.get_as(who, path)
    });
    let codes: Vec<u16> = futures_util::future::join_all(requests)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    for (i, code) in codes.iter().enumerate() {
        // Past five failures the address is throttled (429) instead of checked (401).
        let expected: &[u16] = if i % 2 == 0 { &[200] } else { &[401, 429] };
        assert!(expected.contains(code), "request {i}: {code}");
    }
    let checked = codes.iter().filter(|c| **c == 401).count();
    assert!((5..12).contains(&checked), "{codes:?}");
    // And the remembered check answers the next ones the same way, throttled or not.
    assert_eq!(w.get_as(&w.vendor_a, path).await.status(), 200);
    assert_eq!(w.get_as(&wrong, path).await.status(), 429);
}

/// Large messages: a raw one is built on the request's own task, an XDM package of the same
/// size on the blocking pool (it is deflated and hashed). Both are accepted and arrive byte for
/// byte.
#[tokio::test]
async fn large_raw_and_xdm_messages_arrive_byte_for_byte() {
    let w = World::new().await;
    let big: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
    for (id, xdm) in [("large-raw", false), ("large-xdm", true)] {
        let mut body = message(id, BEN, xdm);
        body["emailAttachmentList"] = json!([{
            "attachmentClass": "application/pdf",
            "attachmentContent": STANDARD.encode(&big),
            "attachmentTitle": "Large scan"
        }]);
        w.send_ok(&body).await;
    }
    w.drain().await;
    let pushes = w.inbox.accepted();
    assert_eq!(pushes.len(), 2);
    for push in &pushes {
        let body = push.json();
        let got = attachments(&body);
        assert_eq!(got.len(), 1);
        if body["xdm"].as_bool().unwrap() {
            assert_eq!(got[0].0, "application/zip");
            let listed = hisp_gateway::direct::xdm::read_metadata(&got[0].3).unwrap();
            assert_eq!(listed.len(), 1);
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(got[0].3.clone())).unwrap();
            let mut doc = Vec::new();
            let path = format!("IHE_XDM/SUBSET01/{}", listed[0].uri);
            std::io::Read::read_to_end(&mut zip.by_name(&path).unwrap(), &mut doc).unwrap();
            assert_eq!(listed[0].size, big.len() as u64);
            assert!(doc == big, "the document changed on the way");
        } else {
            assert_eq!(got[0].1.as_deref(), Some("Large scan"));
            assert!(got[0].3 == big, "the attachment changed on the way");
        }
    }
}

/// A small message's MIME stays in its row (one tuple per send, nothing scattered into the
/// TOAST table's old pages); one that is large even when compressed goes out of line.
#[tokio::test]
async fn a_small_message_is_stored_in_its_row_and_a_large_one_beside_it() {
    let w = World::new().await;
    let db = &w.f.app.db.pool;
    // The messages table's TOAST table is empty until some value is stored out of line.
    let toasted = async || -> i64 {
        sqlx::query_scalar(
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'messages'::regclass",
        )
        .fetch_one(db)
        .await
        .unwrap()
    };
    let with_attachment = |id: &str, class: &str, bytes: &[u8]| {
        let mut body = message(id, BEN, false);
        body["emailAttachmentList"] = json!([{
            "attachmentClass": class,
            "attachmentContent": STANDARD.encode(bytes),
            "attachmentTitle": "Note"
        }]);
        body
    };
    let note: Vec<u8> = b"Seen today for follow-up; plan unchanged. "
        .iter()
        .copied()
        .cycle()
        .take(2048)
        .collect();
    w.send_ok(&with_attachment("small-1", "text/plain", &note))
        .await;
    let stored: i32 = sqlx::query_scalar(
        "SELECT pg_column_size(mime) FROM messages WHERE vendor_message_id = 'small-1'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    assert!(stored < 3000, "compressed: {stored} bytes");
    assert_eq!(toasted().await, 0, "a 2 KB message went to the TOAST table");

    // Bytes that do not compress (a xorshift sequence).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let scan: Vec<u8> = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    w.send_ok(&with_attachment("large-1", "application/pdf", &scan))
        .await;
    assert!(toasted().await > 0, "a 20 KB message stayed in its row");
}

/// A C-CDA's base64 body is stored as the XML it encodes, which compresses several times
/// better, and reads back as exactly the message that was built.
#[tokio::test]
async fn a_ccda_is_stored_compactly_and_reads_back_exactly() {
    let w = World::new().await;
    let db = &w.f.app.db.pool;
    let mut body = message("ccda-1", BEN, false);
    body["emailAttachmentList"] = json!([{
        "attachmentClass": "text/xml",
        "attachmentContent": STANDARD.encode(ccda()),
        "attachmentTitle": "Summary of care"
    }]);
    w.send_ok(&body).await;
    let (stored, size, mime): (i32, i64, Vec<u8>) = sqlx::query_as(
        "SELECT pg_column_size(mime), size_bytes, mime FROM messages WHERE vendor_message_id = 'ccda-1'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    // This 48 KB C-CDA in a 67 KB message: stored as base64 it compressed to about 30 KB,
    // stored decoded to about 16 KB.
    assert!(
        i64::from(stored) * 3 < size,
        "{stored} bytes stored for a {size}-byte message"
    );
    let raw = hisp_gateway::store::packed_mime::unpack(mime).unwrap();
    assert_eq!(raw.len() as i64, size);
    let parsed = hisp_gateway::direct::mime::parse(&raw).unwrap();
    assert_eq!(parsed.attachments.len(), 1);
    assert_eq!(parsed.attachments[0].content, ccda());
    assert!(String::from_utf8_lossy(&raw).contains("Content-Transfer-Encoding: base64"));
}

/// The sender's timely-and-reliable setting (its own, else its organization's default) asks
/// for final-delivery notification when the vendor does not. The message is built before the
/// setting is read, with the value last seen for the sender, so each change below is also a
/// check that a message built with a stale value is never stored.
#[tokio::test]
async fn the_senders_timely_setting_decides_final_delivery_notification() {
    let w = World::new().await;
    let db = &w.f.app.db.pool;
    let send = |id: &'static str| {
        let mut body = message(id, BEN, false);
        body["asmEnabled"] = json!(false);
        let w = &w;
        async move {
            w.send_ok(&body).await;
            let (flag, mime): (bool, Vec<u8>) = sqlx::query_as(
                "SELECT final_delivery, mime FROM messages WHERE vendor_message_id = $1",
            )
            .bind(id)
            .fetch_one(&w.f.app.db.pool)
            .await
            .unwrap();
            let mime = hisp_gateway::store::packed_mime::unpack(mime).unwrap();
            let asks =
                String::from_utf8_lossy(&mime).contains("X-DIRECT-FINAL-DESTINATION-DELIVERY");
            assert_eq!(flag, asks, "{id}: the column and the message agree");
            asks
        }
    };
    let set = |sql: &'static str| async move {
        sqlx::query(sql).execute(db).await.unwrap();
    };
    assert!(!send("timely-0").await, "not set anywhere: off");
    set(
        "UPDATE direct_addresses SET settings = settings || '{\"timely_and_reliable_flag\": true}'
         WHERE username = 'ada'",
    )
    .await;
    assert!(send("timely-1").await, "set on the address");
    assert!(send("timely-2").await, "still set");
    set("UPDATE direct_addresses SET settings = settings - 'timely_and_reliable_flag' WHERE username = 'ada'").await;
    set("UPDATE organizations SET default_settings = default_settings || '{\"timely_and_reliable_flag\": true}'
         WHERE domain = 'harbor.direct.example.org'")
    .await;
    assert!(send("timely-3").await, "the organization's default");
    set(
        "UPDATE direct_addresses SET settings = settings || '{\"timely_and_reliable_flag\": false}'
         WHERE username = 'ada'",
    )
    .await;
    assert!(!send("timely-4").await, "the address's own value wins");
    assert_eq!(count(db, "messages").await, 5);
}

#[tokio::test]
async fn status_of_unknown_and_foreign_messages() {
    let w = World::new().await;
    let (code, v) = w.status("no-such-message").await;
    assert_eq!(code, 404, "{v}");
    w.send_ok(&message("mine-1", BEN, false)).await;
    // B asks about A's message.
    let r =
        w.f.app
            .http
            .get(
                reqwest::Url::parse_with_params(
                    &w.url("/MessagingAPI/dirmsg/status"),
                    [("xdMsgId", "mine-1"), ("fromDirectAddress", SENDER)],
                )
                .unwrap(),
            )
            .basic_auth(w.vendor_b.0, Some(&w.vendor_b.1))
            .send()
            .await
            .unwrap();
    // Answered like an unknown id: B cannot tell that A's message exists.
    let (foreign, fv) = error_of(r).await;
    assert_eq!(
        (foreign, &fv["error"]["code"]),
        (404, &v["error"]["code"]),
        "{fv}"
    );
    assert_eq!(
        fv["error"]["message"],
        v["error"]["message"]
            .as_str()
            .unwrap()
            .replace("no-such-message", "mine-1")
    );
    // A required parameter missing.
    let r = w
        .get_as(&w.vendor_a, "/MessagingAPI/dirmsg/status?xdMsgId=mine-1")
        .await;
    let (code, v) = error_of(r).await;
    assert_eq!(code, 400);
    assert_eq!(v["error"]["field"], "fromDirectAddress");
}

#[tokio::test]
async fn oauth2_client_credentials_give_a_bearer_token() {
    let w = World::new().await;
    let token_url = w.url("/oauth2/token");
    let r =
        w.f.app
            .http
            .post(&token_url)
            .basic_auth(w.vendor_a.0, Some(&w.vendor_a.1))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 3600);
    let token = t["access_token"].as_str().unwrap();

    let r =
        w.f.app
            .http
            .post(w.url(SEND))
            .bearer_auth(token)
            .json(&message("bearer-1", BEN, false))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r =
        w.f.app
            .http
            .post(w.url(SEND))
            .bearer_auth("not-a-token")
            .json(&message("bearer-2", BEN, false))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);

    // Credentials in the form work too; a wrong secret, another grant type or a non-vendor do not.
    let form = |body: String| {
        w.f.app
            .http
            .post(&token_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let r = form(format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        w.vendor_a.0, w.vendor_a.1
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = form(format!(
        "grant_type=client_credentials&client_id={}&client_secret=wrong",
        w.vendor_a.0
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    let r = form(format!(
        "grant_type=password&client_id={}&client_secret={}",
        w.vendor_a.0, w.vendor_a.1
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = form(format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        w.ops.0, w.ops.1
    ))
    .await
    .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
}

#[tokio::test]
async fn oversize_bodies_get_413_and_fast_callers_429() {
    let mut opts = TestOptions::default();
    opts.config.messaging.body_limit_bytes = 200_000;
    opts.config.messaging.rate_per_second = 2;
    opts.config.messaging.rate_burst = 10;
    let w = World::with(opts).await;
    let mut big = message("big-1", BEN, false);
    big["emailAttachmentList"][0]["attachmentContent"] = json!(STANDARD.encode(vec![7u8; 200_000]));
    let (status, v) = error_of(w.send(&big).await).await;
    assert_eq!(status, 413, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    assert!(v["error"]["message"].as_str().unwrap().contains("200000"));
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 0);

    // The burst is 10 and set-up made two of A's requests (endpoint, signing secret): about
    // the ninth quick request here is refused (a little later if the rate refilled meanwhile).
    let mut refused = None;
    for i in 0..20 {
        let r = w.get_as(&w.vendor_a, "/MessagingAPI/dirmsg/status?xdMsgId=x&fromDirectAddress=ada@harbor.direct.example.org").await;
        if r.status() == 429 {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("a 429 within 20 quick requests");
    assert!((8..=11).contains(&i), "refused at request {i}");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_requests");
    // Another vendor is not held back.
    let r = w
        .get_as(
            &w.vendor_b,
            "/MessagingAPI/dirmsg/status?xdMsgId=x&fromDirectAddress=ada@harbor.direct.example.org",
        )
        .await;
    assert_eq!(r.status(), 404);
}

/// Sends beyond `max_concurrent_sends` wait, before their body is read, and after
/// `admission_wait` get 503 `overloaded` with Retry-After; nothing of theirs is written, and
/// the send being worked on is not disturbed.
#[tokio::test]
async fn sends_beyond_the_concurrency_bound_wait_then_get_503_and_retry_after() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut opts = TestOptions::default();
    opts.config.messaging.max_concurrent_sends = 1;
    opts.config.messaging.admission_wait = Duration::from_millis(300);
    let w = World::with(opts).await;

    // The first send's body arrives slowly: it holds the one slot while it is being read.
    let body = serde_json::to_vec(&message("slow-1", BEN, false)).unwrap();
    let (id, secret) = &w.vendor_a;
    let head = format!(
        "POST {SEND} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        STANDARD.encode(format!("{id}:{secret}")),
        body.len()
    );
    let mut slow = tokio::net::TcpStream::connect(w.f.app.addr).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..10]).await.unwrap();
    let admitted = async {
        while w.f.app.state.admission.in_progress() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), admitted)
        .await
        .expect("the slow send was admitted");

    let started = std::time::Instant::now();
    let r = w.send(&message("quick-1", BEN, false)).await;
    let waited = started.elapsed();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "overloaded", "{v}");
    assert!(
        waited >= Duration::from_millis(250),
        "answered after {waited:?}, without waiting its turn"
    );
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 0);

    // The slow send completes normally, and then the slot is free again.
    slow.write_all(&body[10..]).await.unwrap();
    let mut reply = String::new();
    slow.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(w.f.app.state.admission.in_progress(), 0);
    w.send_ok(&message("quick-2", BEN, false)).await;
    assert_eq!(count(&w.f.app.db.pool, "messages").await, 2);
}

#[tokio::test]
async fn vendors_list_their_messages_and_ops_get_the_status_report() {
    let w = World::new().await;
    for i in 0..3 {
        w.send_ok(&message(
            &format!("list-{i}"),
            &format!("{BEN},{CY}"),
            false,
        ))
        .await;
    }
    w.send_ok(&message("list-remote", "x@elsewhere.example.net", false))
        .await;
    w.drain().await;

    let page: Value = w
        .get_as(
            &w.vendor_a,
            "/MessagingAPI/dirmsg/messages?limit=4&offset=0",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 7);
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    // Newest first.
    assert_eq!(page["items"][0]["xdMsgId"], "list-remote");
    let rest: Value = w
        .get_as(
            &w.vendor_a,
            "/MessagingAPI/dirmsg/messages?limit=4&offset=4",
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
    let waiting: Value = w
        .get_as(&w.vendor_a, "/MessagingAPI/dirmsg/messages?status=SMTPINIT")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["total"], 1);
    assert_eq!(waiting["items"][0]["recipient"], "x@elsewhere.example.net");
    // B sent nothing.
    let none: Value = w
        .get_as(&w.vendor_b, "/MessagingAPI/dirmsg/messages")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none["total"], 0);
    let r = w
        .get_as(&w.vendor_a, "/MessagingAPI/dirmsg/messages?status=LOST")
        .await;
    assert_eq!(error_of(r).await.1["error"]["field"], "status");

    // The ops report: the SOAP report's rows, as CSV and JSON.
    let today = chrono::Utc::now().date_naive();
    let csv = w
        .get_as(
            &w.ops,
            &format!("/api/v1/reports/messages?period=daily&date={today}&format=csv"),
        )
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "From,To,Message ID,Message Size,Status,Sent Time,XDR Message ID,XDR Source ID,XDR Unique ID,XDR Patient ID"
    );
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines.iter().filter(|l| l.contains(",Delivered,")).count(),
        6
    );
    assert_eq!(lines.iter().filter(|l| l.contains(",Waiting,")).count(), 1);
    let json: Value = w
        .get_as(
            &w.ops,
            &format!("/api/v1/reports/messages?period=monthly&date={today}"),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 7);
    assert_eq!(json[0]["from"], SENDER);
    let r = w.get_as(&w.vendor_a, "/api/v1/reports/messages").await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn endpoint_registration_is_checked_and_hides_credentials() {
    let w = World::new().await;
    // Only addresses of granted organizations; another vendor's address is answered like one
    // that does not exist.
    let put_as_a = |address: &str| {
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/messaging/endpoints/{address}")))
            .basic_auth(w.vendor_a.0, Some(&w.vendor_a.1))
            .json(&json!({"inboundUrl": "https://ehr.example.org/in"}))
            .send()
    };
    let (foreign, fv) = error_of(put_as_a(BEN).await.unwrap()).await;
    let unknown_address = "nobody@nowhere.example.org";
    let (unknown, uv) = error_of(put_as_a(unknown_address).await.unwrap()).await;
    assert_eq!((foreign, unknown), (404, 404), "{fv} {uv}");
    assert_eq!(
        fv["error"]["message"].as_str().unwrap().replace(BEN, "X"),
        uv["error"]["message"]
            .as_str()
            .unwrap()
            .replace(unknown_address, "X")
    );
    let bad = |body: Value| {
        w.f.app
            .http
            .put(w.url(&format!("/api/v1/messaging/endpoints/{BEN}")))
            .basic_auth(w.vendor_b.0, Some(&w.vendor_b.1))
            .json(&body)
            .send()
    };
    for (body, field) in [
        (
            json!({"inboundUrl": "ftp://ehr.example.org/in"}),
            "inboundUrl",
        ),
        (
            json!({"dsnUrl": "https://user:pw@ehr.example.org/"}),
            "dsnUrl",
        ),
        (json!({"inboundShape": "nested"}), "inboundShape"),
        (json!({"xdmDelivery": "both"}), "xdmDelivery"),
        (
            json!({"inboundAuth": {"type": "header", "name": "webhook-id", "value": "x"}}),
            "inboundAuth",
        ),
    ] {
        let (status, v) = error_of(bad(body).await.unwrap()).await;
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["field"], field, "{v}");
    }
    let view: Value = w
        .get_as(&w.vendor_b, &format!("/api/v1/messaging/endpoints/{BEN}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["inboundAuth"], "basic");
    assert_eq!(view["inboundShape"], "flat");
    assert!(!view.to_string().contains("s3cret"), "{view}");
    // Stored sealed, not as text.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT inbound_auth FROM address_endpoints LIMIT 1")
        .fetch_one(&w.f.app.db.pool)
        .await
        .unwrap();
    assert!(!String::from_utf8_lossy(&stored).contains("s3cret"));

    // Rotating the signing secret changes it; the next notification is signed with the new one.
    let old = w.signing_key.to_whsec();
    let rotated: Value =
        w.f.app
            .http
            .post(w.url("/api/v1/messaging/signing-secret/rotate"))
            .basic_auth(w.vendor_a.0, Some(&w.vendor_a.1))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let new = rotated["secret"].as_str().unwrap();
    assert_ne!(new, old);
    w.send_ok(&message("rotated-1", BEN, false)).await;
    w.drain().await;
    let key = SigningKey::from_whsec(new).unwrap();
    let notes: Vec<_> = w.dsn.accepted();
    assert!(!notes.is_empty());
    for n in &notes {
        crate::messaging::assert_signed(n, &key);
    }
}

#[tokio::test]
async fn an_unreachable_database_gets_a_prompt_503_and_recovers() {
    let mut opts = TestOptions {
        db_proxy: true,
        ..Default::default()
    };
    opts.config.database.acquire_timeout = Duration::from_secs(1);
    let w = World::with(opts).await;
    // Several at once, so the pool holds several connections when the database goes away:
    // each of them is broken, and none may be handed to a request after it comes back.
    let before: Vec<_> = (1..=6)
        .map(|i| message(&format!("before-{i}"), BEN, false))
        .collect();
    futures_util::future::join_all(before.iter().map(|m| w.send_ok(m))).await;

    let proxy = w.f.app.proxy.as_ref().unwrap();
    proxy.cut();
    let started = std::time::Instant::now();
    let (status, v) = error_of(w.send(&message("during-1", BEN, false)).await).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    // Bounded by the acquire timeout (1 s here), not by the client's patience.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let r = w.f.app.http.get(w.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);

    proxy.restore();
    for i in 1..=6 {
        w.send_ok(&message(&format!("after-{i}"), BEN, false)).await;
    }
    let mut ids: Vec<String> =
        sqlx::query_scalar("SELECT vendor_message_id FROM messages ORDER BY vendor_message_id")
            .fetch_all(&w.f.app.db.pool)
            .await
            .unwrap();
    ids.sort();
    let mut expected: Vec<String> = (1..=6)
        .flat_map(|i| [format!("after-{i}"), format!("before-{i}")])
        .collect();
    expected.sort();
    assert_eq!(ids, expected, "nothing half-written during the outage");
}

#[tokio::test]
async fn ops_grant_revoke_and_disable_from_the_cli() {
    let w = World::new().await;
    let vendor_c =
        w.f.app
            .create_client(hisp_gateway::domain::client::ClientKind::Vendor)
            .await;
    let id = vendor_c.0.to_string();
    let send_c = async |m: &str| {
        w.f.app
            .post_json_as(SEND, &vendor_c, &message(m, BEN, false))
            .await
            .status()
    };
    assert_eq!(send_c("cli-0").await, 403);

    let out =
        w.f.app
            .cli(&["messaging", "grant", "--client", &id, "--domain", DOMAIN_A]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert!(
        crate::helpers::stdout(&out).contains(&format!("granted {DOMAIN_A} (Activated) to {id}"))
    );
    let out = w.f.app.cli(&["messaging", "grants", "--client", &id]);
    assert!(crate::helpers::stdout(&out).contains(DOMAIN_A));
    assert_eq!(send_c("cli-1").await, 200);

    let out = w.f.app.cli(&["messaging", "disable", SENDER]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert_eq!(send_c("cli-2").await, 403);
    let out = w.f.app.cli(&["messaging", "disable", "--enable", SENDER]);
    assert!(out.status.success());
    assert_eq!(send_c("cli-3").await, 200);

    let out =
        w.f.app
            .cli(&["messaging", "revoke", "--client", &id, "--domain", DOMAIN_A]);
    assert!(out.status.success(), "{}", crate::helpers::stderr(&out));
    assert_eq!(send_c("cli-4").await, 403);
    // A grant for a client that is not a vendor is refused with the reason.
    let out = w.f.app.cli(&[
        "messaging",
        "grant",
        "--client",
        &w.ops.0.to_string(),
        "--domain",
        DOMAIN_A,
    ]);
    assert!(!out.status.success());
    assert!(
        crate::helpers::stderr(&out).contains("not a vendor"),
        "{}",
        crate::helpers::stderr(&out)
    );
}

#[tokio::test]
async fn grants_are_asked_for_and_answered_in_camel_case() {
    let w = World::new().await;
    let vendor_c = w.f.app.create_client(ClientKind::Vendor).await;
    let r =
        w.f.app
            .post_json_as(
                "/api/v1/messaging/grants",
                &w.ops,
                &json!({"clientId": vendor_c.0, "domain": DOMAIN_A}),
            )
            .await;
    assert_eq!(r.status(), 201);
    let grant: Value = r.json().await.unwrap();
    let mut keys: Vec<&str> = grant
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "clientId",
            "createdAt",
            "domain",
            "organizationId",
            "organizationStatus"
        ]
    );
    assert_eq!(grant["clientId"], vendor_c.0.to_string());
    assert_eq!(grant["domain"], DOMAIN_A);
    assert_eq!(grant["organizationStatus"], "Activated");
    // The snake_case name is read too; granting again is the same grant.
    let r =
        w.f.app
            .post_json_as(
                "/api/v1/messaging/grants",
                &w.ops,
                &json!({"client_id": vendor_c.0, "domain": DOMAIN_A}),
            )
            .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap(), grant);
    let listed: Value = w
        .get_as(
            &w.ops,
            &format!("/api/v1/messaging/grants?clientId={}", vendor_c.0),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed, json!([grant]));
}
