//! Inputs built to cost CPU: refused fast, worked on off the async threads, and dropped when
//! the request's time is up.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hisp_gateway::domain::client::ClientKind;
use hisp_gateway::soap::envelope::SOAP12_NS;
use serde_json::{Value, json};

use super::{HEALTHY, HealthWatch, gateway_on};
use crate::helpers::TestApp;
use crate::soap::{Fixture, Mode, address, provision_body};

const SEND: &str = "/MessagingAPI/dirmsg/send_ccda";

fn send_request(to: String, content: &[u8], xdm: bool) -> Value {
    json!({
        "fromDirectAddress": "ada@harbor.direct.example.org",
        "toDirectAddress": to,
        "messageId": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "xdm": xdm,
        "emailAttachmentList": [{
            "attachmentClass": "application/octet-stream",
            "attachmentContent": STANDARD.encode(content),
        }],
    })
}

/// Bytes deflate cannot shrink, so that compressing them costs what it can.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// 40,000 recipients cost O(n²) before the "at most 100" answer (4.1 s of CPU for 8,000,
/// 144 s for 40,000, with /healthz unanswerable meanwhile). Now the count stops at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_recipient_list_is_refused_at_once_while_others_are_served() {
    let app = TestApp::spawn().await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let list: Vec<String> = (0..40_000)
        .map(|i| format!("r{i}@b{i}.example.org"))
        .collect();
    let body = send_request(list.join(","), b"<a/>", false);
    let watch = HealthWatch::start(app.url("/healthz"));
    let started = Instant::now();
    let sends = (0..2).map(|_| app.post_json_as(SEND, &vendor, &body));
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], "toDirectAddress", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 100"),
            "{v}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let slowest = watch.finish().await;
    eprintln!(
        "2 x 40,000 recipients refused in {:?}; slowest /healthz {slowest:?}",
        started.elapsed()
    );
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// Bodies of millions of tiny JSON values (16 MB of `0,0,0,…` in a field nobody asked for):
/// read into memory, each value takes 32 bytes or more, 16 times its size on the wire, and
/// seconds of CPU. Now they are counted first, without parsing, and refused at the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_millions_of_json_values_are_refused_before_they_are_read() {
    let app = TestApp::spawn().await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let gw = gateway_on(&app, &[]).await;
    let baseline = gw.peak_rss();
    let mut body = send_request("x@b.example.org".into(), b"<a/>", false);
    body["padding"] = json!(vec![0u8; 8_000_000]);
    let body = serde_json::to_vec(&body).unwrap();
    let watch = HealthWatch::start(gw.url("/healthz"));
    let http = reqwest::Client::new();
    let started = Instant::now();
    let sends = (0..4).map(|_| {
        http.post(gw.url(SEND))
            .basic_auth(vendor.0, Some(&vendor.1))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    });
    for r in futures_util::future::join_all(sends).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "malformed", "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("JSON values"),
            "{v}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let grown = gw.peak_rss().saturating_sub(baseline);
    eprintln!(
        "4 x 16 MB of JSON values refused in {:?}; peak RSS +{} MiB",
        started.elapsed(),
        grown / (1024 * 1024)
    );
    assert!(
        grown < 250 * 1024 * 1024,
        "peak RSS grew by {} MiB for 64 MB of bodies",
        grown / (1024 * 1024)
    );
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// The SOAP door, without logging in: a boundary built to make the multipart search quadratic,
/// one MTOM part included 50,000 times (each copy base64 text: gigabytes), and one element with
/// 200,000 attributes. Each is a fast Sender fault; nobody else waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_soap_is_a_fast_fault_while_others_are_served() {
    let app = TestApp::spawn().await;
    let url = app.url(hisp_gateway::soap::PATH);
    let boundary = format!("{}B", "-".repeat(40_000));
    let long_boundary = (
        format!(
            "multipart/related; type=\"application/xop+xml\"; start-info=\"application/soap+xml\"; boundary=\"{boundary}\""
        ),
        vec![b'-'; 10 * 1024 * 1024],
    );
    let includes: String = (0..50_000)
        .map(|_| r#"<x:Include xmlns:x="http://www.w3.org/2004/08/xop/include" href="cid:p"/>"#)
        .collect();
    let root = format!(
        r#"<s:Envelope xmlns:s="{SOAP12_NS}"><s:Body><Login xmlns="{}"><username>{includes}</username></Login></s:Body></s:Envelope>"#,
        hisp_gateway::soap::NS
    );
    let many_includes = (
        "multipart/related; type=\"application/xop+xml\"; start-info=\"application/soap+xml\"; boundary=\"b\"".to_owned(),
        format!(
            "--b\r\nContent-Type: application/xop+xml\r\n\r\n{root}\r\n--b\r\nContent-ID: <p>\r\n\r\n{}\r\n--b--\r\n",
            "A".repeat(100_000)
        )
        .into_bytes(),
    );
    let attrs: String = (0..200_000).map(|i| format!(" a{i}=\"1\"")).collect();
    let many_attributes = (
        "application/soap+xml".to_owned(),
        format!(
            r#"<s:Envelope xmlns:s="{SOAP12_NS}"><s:Body><Login{attrs}/></s:Body></s:Envelope>"#
        )
        .into_bytes(),
    );
    let watch = HealthWatch::start(app.url("/healthz"));
    for (what, (content_type, body)) in [
        ("a 40,000-character boundary", long_boundary),
        ("50,000 includes of one part", many_includes),
        ("200,000 attributes", many_attributes),
    ] {
        let started = Instant::now();
        let posts = (0..2).map(|_| {
            app.http
                .post(&url)
                .header("content-type", &content_type)
                .body(body.clone())
                .send()
        });
        for r in futures_util::future::join_all(posts).await {
            let r = r.unwrap();
            assert_eq!(r.status(), 400, "{what}");
            let text = r.text().await.unwrap();
            assert!(text.contains("soap:Sender"), "{what}: {text}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: {:?}",
            started.elapsed()
        );
        eprintln!("2 x {what}: faults in {:?}", started.elapsed());
    }
    let slowest = watch.finish().await;
    assert!(slowest < HEALTHY, "/healthz took {slowest:?}");
}

/// A reseller's form with more items than the largest offer allows is refused before any of
/// them costs a query or a password hash.
#[tokio::test]
async fn a_provisioning_form_larger_than_any_offer_is_refused_whole() {
    let f = Fixture::new().await;
    let session = f.login(Mode::Soap12).await;
    let addresses: String = (0..751)
        .map(|i| address(8001, &format!("u{i}"), "Str0ng-Passw0rd"))
        .collect();
    let form = crate::soap::standard_form(&addresses);
    let started = Instant::now();
    let r = f
        .call(
            Mode::Soap12,
            "ProvisionCertifiedProvider",
            &provision_body(&session, "big.direct.example.org", "CDO750", &form),
        )
        .await;
    r.assert_code("010", "directAddresses");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        crate::helpers::count(&f.app.db.pool, "organizations").await,
        0
    );
}

/// A request whose time is up stops costing CPU: the real binary, a 1 s request limit and two
/// 24 MB XDM sends (deflating noise is the most expensive step we have). After the 503s the
/// process goes quiet instead of finishing the packages nobody will get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_for_a_request_that_timed_out_stops() {
    let app = TestApp::spawn().await;
    let vendor = app.create_client(ClientKind::Vendor).await;
    let gw = gateway_on(&app, &[("GW_HTTP__REQUEST_TIMEOUT", "1s")]).await;
    let body = send_request("x@b.example.org".into(), &noise(24 * 1024 * 1024), true);
    let http = reqwest::Client::new();
    let sends = (0..2).map(|_| {
        http.post(gw.url(SEND))
            .basic_auth(vendor.0, Some(&vendor.1))
            .json(&body)
            .send()
    });
    for r in futures_util::future::join_all(sends).await {
        let r = r.unwrap();
        assert_eq!(r.status(), 503);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "timeout", "{v}");
    }
    // The step that was running when time ran out may finish; nothing after it runs.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let before = gw.cpu_time();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let used = gw.cpu_time() - before;
    eprintln!("CPU used 4-7 s after the timeouts: {used:?}");
    assert!(
        used < Duration::from_millis(600),
        "the gateway used {used:?} of CPU in the 3 s after both requests had timed out"
    );
}
