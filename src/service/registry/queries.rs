//! The query fulfiller: candidates (405010 → 405110), details (406010 → 406110), the
//! preformatted report (406030 → 406031) and the administrative report (406040 → 406041).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;

use super::message::{self, Ack, Header, Parties, Problem, W, need};
use super::organization::{self, Shape, View};
use super::{Caller, Interaction, RegistryContext, informer, internal, new_message_id};
use crate::domain::registry::{OrgRecord, RegistryStatus};
use crate::store::registry::{self as rows, OrgRow, Search};
use crate::xml::{self, Element};

/// Rows per page when the query does not say (`initialQuantity`), and the most it may ask.
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;
/// Most organization ids or names one query may name.
const MAX_PARAMS: usize = 100;
/// How long a paged query may be continued.
const CURSOR_TTL_MINUTES: i64 = 30;
/// Most versions one details answer lists (history of many organizations at once).
const MAX_EVENTS: i64 = 2000;

fn db_err(e: sqlx::Error) -> Problem {
    internal(e)
}

/// The parameter's `value` element texts (EN parts spaced) at `path`.
fn value_text(p: &Element) -> String {
    let Some(v) = p.child("value") else {
        return String::new();
    };
    let mut s = v.text.trim().to_owned();
    for c in v.children.iter().take(20) {
        if !c.text.trim().is_empty() {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(c.text.trim());
        }
    }
    s
}

fn params<'a>(
    payload: &'a Element,
    name: &'a str,
    path: &str,
) -> Result<Vec<&'a Element>, Problem> {
    let v: Vec<&Element> = payload.children_named(name).collect();
    if v.len() > MAX_PARAMS {
        return Err(Problem::error(
            "SYN114",
            format!("{path}/{name}"),
            format!("more than {MAX_PARAMS} {name} parameters"),
        ));
    }
    Ok(v)
}

/// The filters every query shares: name (prefix, or contains when its semanticsText says so),
/// address parts, ids, type code and status.
async fn search_of(db: &PgPool, payload: &Element, path: &str) -> Result<Search, Problem> {
    let mut s = Search::default();
    if let Some(n) = params(payload, "organizationName", path)?.first() {
        let text = value_text(n);
        if !text.is_empty() {
            s.name = Some(text);
            s.name_contains = n
                .child_text("semanticsText")
                .is_some_and(|t| t.eq_ignore_ascii_case("contains"));
        }
    }
    let addr_param = ["providerAddress", "organizationAddress", "address"]
        .iter()
        .find_map(|n| payload.child(n));
    if let Some(a) = addr_param.and_then(|p| p.child("value")) {
        let part = |n: &str| a.child_text(n).map(str::to_owned);
        s.city = part("city");
        s.state = part("state");
        s.postal_code = part("postalCode");
        s.street = part("streetAddressLine");
    }
    let ids = params(payload, "organizationID", path)?;
    if !ids.is_empty() {
        let mut found = Vec::new();
        let mut conn = db.acquire().await.map_err(db_err)?;
        for (i, p) in ids.iter().enumerate() {
            let at = format!("{path}/organizationID[{}]", i + 1);
            let (v, at) = need(p, &at, "value")?;
            let ii = message::read_ii(v, &at)?;
            if let Some(cid) = rows::by_identifier(&mut conn, &ii.root, &ii.extension)
                .await
                .map_err(db_err)?
            {
                found.push(cid);
            }
        }
        s.certified_ids = Some(found);
    }
    if let Some(code) = payload
        .child("roleType")
        .and_then(|r| r.child("value"))
        .and_then(|v| v.attr("code"))
    {
        s.type_code = Some(code.to_owned());
    }
    if let Some(st) = payload
        .child("status")
        .and_then(|r| r.child("value"))
        .and_then(|v| v.attr("code"))
    {
        let status = RegistryStatus::from_hl7(st)
            .map_err(|e| Problem::error("SYN102", format!("{path}/status/value"), e.message))?;
        s.status = Some(status.as_str().to_owned());
    }
    for sc in params(payload, "sortControl", path)? {
        let Some(name) = sc.child_text("elementName") else {
            continue;
        };
        let key = name.to_ascii_lowercase().replace(['.', '_'], "");
        let Some((_, column)) = rows::SORTABLE.iter().find(|(k, _)| key.ends_with(k)) else {
            return Err(Problem::error(
                "SYN102",
                format!("{path}/sortControl/elementName"),
                format!("cannot sort by {name:?}; sortable: name, city, state, postalCode, id"),
            ));
        };
        let desc = sc
            .child("directionCode")
            .and_then(|d| d.attr("code"))
            .is_some_and(|c| c.eq_ignore_ascii_case("D"));
        s.sort.push((column, desc));
    }
    Ok(s)
}

fn page_size(payload: &Element, path: &str) -> Result<i64, Problem> {
    match payload
        .child("initialQuantity")
        .and_then(|q| q.attr("value"))
    {
        None => Ok(DEFAULT_PAGE),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(Problem::error(
                "SYN102",
                format!("{path}/initialQuantity"),
                format!("initialQuantity must be 1 to {MAX_PAGE}"),
            )),
        },
    }
}

fn record_of(row: &OrgRow) -> Result<(OrgRecord, RegistryStatus), Problem> {
    let record: OrgRecord = serde_json::from_value(row.record.clone()).map_err(internal)?;
    Ok((record, row.status.parse().map_err(internal)?))
}

struct Counts {
    total: i64,
    current: i64,
    remaining: i64,
}

fn query_ack(w: &mut W, payload: &Element, counts: &Counts) {
    w.raw("<queryAck>");
    if let Some(q) = payload.child("queryId") {
        message::echo(w, q);
    }
    w.code("statusCode", "deliveredResponse");
    w.code(
        "queryResponseCode",
        if counts.total == 0 { "NF" } else { "OK" },
    );
    w.value("resultTotalQuantity", &counts.total.to_string());
    w.value("resultCurrentQuantity", &counts.current.to_string());
    w.value("resultRemainingQuantity", &counts.remaining.to_string());
    w.raw("</queryAck>");
}

/// Answers a query.
pub(super) async fn answer(
    db: &PgPool,
    ctx: &RegistryContext,
    caller: &Caller,
    interaction: Interaction,
    header: &Header,
    root: &Element,
    now: DateTime<Utc>,
) -> Result<String, Problem> {
    let path = format!("/{}", root.name);
    let (cap, p) = need(root, &path, "controlActProcess")?;
    let (payload, p) = need(cap, &p, "queryByParameterPayload")?;
    need(payload, &p, "statusCode")?;
    let (response, trigger) = match interaction {
        Interaction::Candidates => ("PRPM_IN405110UV01", "PRPM_TE405110UV01"),
        Interaction::Details => ("PRPM_IN406110UV01", "PRPM_TE406110UV01"),
        Interaction::Report => ("PRPM_IN406031UV01", "PRPM_TE406114UV01"),
        _ => ("PRPM_IN406041UV01", "PRPM_TE406115UV01"),
    };
    let mut w = W::default();
    let parties = Parties {
        us: &ctx.config.device_id,
        peer: header.sender.as_ref(),
    };
    message::open(&mut w, response, &new_message_id(ctx), now, "NE", &parties);
    message::acknowledgement(&mut w, Ack::Aa, Some(&header.id), None);
    w.raw("<controlActProcess classCode=\"CACT\" moodCode=\"EVN\">");
    w.raw(&format!(
        "<code code=\"{trigger}\" codeSystem=\"{}\"/>",
        message::TRIGGER_ROOT
    ));
    match interaction {
        Interaction::Candidates => candidates(db, ctx, caller, payload, &p, &mut w, now).await?,
        Interaction::Details => details(db, ctx, payload, &p, &mut w).await?,
        Interaction::Report => report(db, ctx, payload, &p, &mut w, now).await?,
        _ => admin_report(db, ctx, payload, &p, &mut w, now).await?,
    }
    message::echo(&mut w, payload);
    w.raw(&format!("</controlActProcess></{response}>"));
    Ok(w.0)
}

async fn candidates(
    db: &PgPool,
    ctx: &RegistryContext,
    caller: &Caller,
    payload: &Element,
    path: &str,
    w: &mut W,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let search = search_of(db, payload, path).await?;
    let size = page_size(payload, path)?;
    let query_id = payload
        .child("queryId")
        .and_then(|q| message::read_ii(q, "").ok())
        .map(|q| q.to_string());
    let continued = payload.child("statusCode").and_then(|s| s.attr("code"))
        == Some("waitContinuedQueryResponse");
    let offset = match (&query_id, continued) {
        (Some(q), true) => rows::cursor(db, caller.client.id, q, now)
            .await
            .map_err(db_err)?
            .ok_or_else(|| {
                Problem::error(
                    "KEY204",
                    format!("{path}/queryId"),
                    "no live query with this queryId to continue (expired, finished or never started)",
                )
            })?,
        _ => 0,
    };
    let (total, page) = rows::search(db, &search, i64::from(offset), size)
        .await
        .map_err(db_err)?;
    for row in &page {
        let (record, status) = record_of(row)?;
        let view = View {
            record: &record,
            status,
            registry_id: ctx.registry_id(row.certified_id),
            direct: &[],
        };
        organization::event(
            w,
            &ctx.config.registry_root_oid,
            Shape::Candidate,
            &view,
            row.version,
            row.updated_at,
        );
    }
    let delivered = i64::from(offset) + page.len() as i64;
    let remaining = (total - delivered).max(0);
    // Only a query with more to give can be continued.
    if let Some(q) = query_id.as_ref().filter(|_| remaining > 0) {
        let expires = now + Duration::minutes(CURSOR_TTL_MINUTES);
        rows::save_cursor(db, caller.client.id, q, delivered as i32, expires)
            .await
            .map_err(db_err)?;
    }
    query_ack(
        w,
        payload,
        &Counts {
            total,
            current: page.len() as i64,
            remaining,
        },
    );
    Ok(())
}

async fn details(
    db: &PgPool,
    ctx: &RegistryContext,
    payload: &Element,
    path: &str,
    w: &mut W,
) -> Result<(), Problem> {
    let search = search_of(db, payload, path).await?;
    if search.certified_ids.is_none() && search.name.is_none() {
        return Err(Problem::missing(format!("{path}/organizationID")));
    }
    let history = payload
        .child("history")
        .and_then(|h| h.child("value"))
        .and_then(|v| v.attr("value"))
        == Some("true");
    let size = page_size(payload, path)?;
    let (total, page) = rows::search(db, &search, 0, size).await.map_err(db_err)?;
    let mut conn = db.acquire().await.map_err(db_err)?;
    let mut written = 0i64;
    for row in &page {
        let direct = informer::direct_telecoms(&mut conn, row.certified_id)
            .await
            .map_err(db_err)?;
        let registry_id = ctx.registry_id(row.certified_id);
        if history {
            for v in rows::versions(db, row.certified_id).await.map_err(db_err)? {
                if written >= MAX_EVENTS {
                    break;
                }
                let record: OrgRecord = serde_json::from_value(v.record).map_err(internal)?;
                let status = v.status.parse().map_err(internal)?;
                let current = v.version == row.version;
                let view = View {
                    record: &record,
                    status,
                    registry_id: registry_id.clone(),
                    direct: if current { &direct } else { &[] },
                };
                organization::event(
                    w,
                    &ctx.config.registry_root_oid,
                    Shape::Details,
                    &view,
                    v.version,
                    v.at,
                );
                written += 1;
            }
        } else {
            let (record, status) = record_of(row)?;
            let view = View {
                record: &record,
                status,
                registry_id,
                direct: &direct,
            };
            organization::event(
                w,
                &ctx.config.registry_root_oid,
                Shape::Details,
                &view,
                row.version,
                row.updated_at,
            );
            written += 1;
        }
    }
    query_ack(
        w,
        payload,
        &Counts {
            total,
            current: written.max(page.len() as i64),
            remaining: (total - page.len() as i64).max(0),
        },
    );
    Ok(())
}

fn report_id(payload: &Element, path: &str) -> Result<crate::domain::registry::Ii, Problem> {
    let (r, p) = need(payload, path, "reportId")?;
    let (v, p) = need(r, &p, "value")?;
    message::read_ii(v, &p)
}

/// The document of a report: an HTML page in the documentEvent's text.
fn document(w: &mut W, ctx: &RegistryContext, report: &crate::domain::registry::Ii, html: &str) {
    w.raw("<subject typeCode=\"SUBJ\"><documentEvent classCode=\"DOC\" moodCode=\"EVN\">");
    w.ii(
        "id",
        Some(&crate::domain::registry::Ii::new(
            &ctx.config.device_id,
            &uuid::Uuid::new_v4().to_string(),
        )),
    );
    if report.extension.is_empty() {
        w.raw(&format!("<code code=\"{}\"/>", xml::escape(&report.root)));
    } else {
        w.raw(&format!(
            "<code code=\"{}\" codeSystem=\"{}\"/>",
            xml::escape(&report.extension),
            xml::escape(&report.root)
        ));
    }
    w.raw("<text mediaType=\"text/html\">");
    w.raw(&xml::escape(html));
    w.raw("</text></documentEvent></subject>");
}

fn html_page(title: &str, head: &[&str], rows: &[Vec<String>], note: &str) -> String {
    let mut h = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>{0}</h1><p>{1}</p><table><thead><tr>",
        xml::escape(title),
        xml::escape(note)
    );
    for c in head {
        h.push_str(&format!("<th>{}</th>", xml::escape(c)));
    }
    h.push_str("</tr></thead><tbody>");
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            h.push_str(&format!("<td>{}</td>", xml::escape(c)));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table></body></html>");
    h
}

async fn report(
    db: &PgPool,
    ctx: &RegistryContext,
    payload: &Element,
    path: &str,
    w: &mut W,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let id = report_id(payload, path)?;
    let search = search_of(db, payload, path).await?;
    let size = page_size(payload, path)?;
    let (total, page) = rows::search(db, &search, 0, size).await.map_err(db_err)?;
    let mut lines = Vec::new();
    for row in &page {
        let (record, status) = record_of(row)?;
        let addr = record.addrs.first().map_or(String::new(), |a| {
            [
                a.lines.join(", "),
                a.city.clone(),
                a.state.clone(),
                a.postal_code.clone(),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
        });
        lines.push(vec![
            ctx.registry_id(row.certified_id).extension,
            record.name.clone(),
            record
                .code
                .as_ref()
                .map(|c| c.code.clone())
                .unwrap_or_default(),
            status.as_str().to_owned(),
            addr,
            record
                .telecoms
                .iter()
                .map(|t| t.value.clone())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    let html = html_page(
        "Organization report",
        &[
            "Registry id",
            "Name",
            "Type",
            "Status",
            "Address",
            "Telecom",
        ],
        &lines,
        &format!(
            "{} of {total} organizations, as of {}",
            page.len(),
            now.format("%Y-%m-%d %H:%M UTC")
        ),
    );
    document(w, ctx, &id, &html);
    query_ack(
        w,
        payload,
        &Counts {
            total,
            current: page.len() as i64,
            remaining: (total - page.len() as i64).max(0),
        },
    );
    Ok(())
}

async fn admin_report(
    db: &PgPool,
    ctx: &RegistryContext,
    payload: &Element,
    path: &str,
    w: &mut W,
    now: DateTime<Utc>,
) -> Result<(), Problem> {
    let id = report_id(payload, path)?;
    let period = payload
        .child("roleEffectiveDate")
        .and_then(|r| r.child("value"));
    let bound = |n: &str| -> Result<Option<DateTime<Utc>>, Problem> {
        match period
            .and_then(|p| p.child(n))
            .and_then(|x| x.attr("value"))
        {
            None => Ok(None),
            Some(v) => message::parse_ts(v).map(Some).ok_or_else(|| {
                Problem::error(
                    "SYN102",
                    format!("{path}/roleEffectiveDate/value/{n}"),
                    format!("{v:?} is not an HL7 timestamp"),
                )
            }),
        }
    };
    let to = bound("high")?.unwrap_or(now);
    let from = bound("low")?.unwrap_or(to - Duration::days(30));
    let counts = rows::counts_by_status_and_type(db).await.map_err(db_err)?;
    let changes = rows::changes_between(db, from, to).await.map_err(db_err)?;
    let mut lines: Vec<Vec<String>> = counts
        .iter()
        .map(|(s, t, n)| {
            vec![
                "organizations".into(),
                s.clone(),
                t.clone().unwrap_or_else(|| "(none)".into()),
                n.to_string(),
            ]
        })
        .collect();
    lines.extend(changes.iter().map(|(c, n)| {
        vec![
            "changes in period".into(),
            c.clone(),
            String::new(),
            n.to_string(),
        ]
    }));
    let total: i64 = counts.iter().map(|(_, _, n)| n).sum();
    let html = html_page(
        "Organization administrative report",
        &["Section", "Status or change", "Type", "Count"],
        &lines,
        &format!(
            "{total} organizations; changes from {} to {}",
            from.format("%Y-%m-%d %H:%M UTC"),
            to.format("%Y-%m-%d %H:%M UTC")
        ),
    );
    document(w, ctx, &id, &html);
    query_ack(
        w,
        payload,
        &Counts {
            total: lines.len() as i64,
            current: lines.len() as i64,
            remaining: 0,
        },
    );
    Ok(())
}
