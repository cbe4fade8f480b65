//! The audit log API stand-in itself, over HTTP: what the watcher's tests
//! rely on it to do like the real API.

mod serve;
mod standin;

use serde_json::{Value, json};
use standin::{ADMIN_KEY, RetryAfter, StandIn};

fn get(api: &StandIn, query: &str, key: &str) -> (u16, Option<String>, Value) {
    auditwatch::tls::init();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/organization/audit_logs?{query}",
                api.base_url()
            ))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            status,
            retry,
            serde_json::from_str(&r.text().await.unwrap()).unwrap(),
        )
    })
}

fn ev(id: &str, ty: &str, at: i64) -> Value {
    json!({"object": "organization.audit_log", "id": id, "type": ty, "effective_at": at})
}

#[test]
fn pages_newest_first_with_ties_across_pages_and_filters() {
    let api = StandIn::start();
    let mut events: Vec<Value> = (0..120)
        .map(|i| ev(&format!("same-{i:03}"), "login.failed", 500))
        .collect();
    events.extend((0..130).map(|i| ev(&format!("e-{i:03}"), "project.updated", 1_000 + i)));
    events.push(ev("t-1", "tenant.sso_connection.deleted", 800));
    api.add(events);
    let mut seen = Vec::new();
    let mut query = "limit=100".to_owned();
    loop {
        let (status, _, page) = get(&api, &query, ADMIN_KEY);
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        let times: Vec<i64> = data
            .iter()
            .map(|e| e["effective_at"].as_i64().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
        seen.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
        if !page["has_more"].as_bool().unwrap() {
            assert!(page["last_id"].is_string());
            break;
        }
        query = format!("limit=100&after={}", page["last_id"].as_str().unwrap());
    }
    assert_eq!(seen.len(), 250);
    let unique: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(
        unique.len(),
        250,
        "every id once; the tenant event only with tenant_only"
    );
    let same: Vec<&String> = seen.iter().filter(|s| s.starts_with("same-")).collect();
    let mut sorted = same.clone();
    sorted.sort();
    assert_ne!(same, sorted, "ties are not in id order");

    for q in [
        "effective_at[gte]=1100&effective_at[lt]=1110",
        "effective_at%5Bgte%5D=1100&effective_at%5Blt%5D=1110",
    ] {
        let (_, _, page) = get(&api, q, ADMIN_KEY);
        assert_eq!(page["data"].as_array().unwrap().len(), 10, "{q}");
    }
    let (_, _, page) = get(&api, "tenant_only=true", ADMIN_KEY);
    assert_eq!(page["data"][0]["id"], "t-1");
    let (_, _, page) = get(
        &api,
        "event_types[]=login.failed&event_types%5B%5D=nothing&limit=5",
        ADMIN_KEY,
    );
    assert_eq!(page["data"].as_array().unwrap().len(), 5);
    let (_, _, empty) = get(&api, "effective_at[gt]=99999", ADMIN_KEY);
    assert!(
        empty["first_id"].is_null() && empty["last_id"].is_null() && empty["has_more"] == false
    );
}

#[test]
fn errors_are_answered_like_the_api() {
    let api = StandIn::start();
    api.add([ev("a", "x", 1)]);
    for q in [
        "limit=0",
        "limit=101",
        "order=asc",
        "effective_at[gte]=soon",
        "after=nope",
    ] {
        let (status, _, body) = get(&api, q, ADMIN_KEY);
        assert_eq!(status, 400, "{q}");
        assert!(body["error"]["message"].is_string());
    }
    let (status, _, body) = get(&api, "", "sk-admin-wrong");
    assert_eq!(status, 401);
    for key in ["message", "type", "param", "code"] {
        assert!(body["error"].get(key).is_some(), "{key}");
    }
    api.fail_next(1);
    api.rate_limit_next(1, RetryAfter::Seconds(3));
    api.rate_limit_next(1, RetryAfter::HttpDate(30));
    assert_eq!(get(&api, "", ADMIN_KEY).0, 500);
    let (status, retry, _) = get(&api, "", ADMIN_KEY);
    assert_eq!((status, retry.as_deref()), (429, Some("3")));
    let (status, retry, _) = get(&api, "", ADMIN_KEY);
    assert_eq!(status, 429);
    let date = jiff::fmt::rfc2822::parse(&retry.unwrap()).unwrap();
    let wait = date.timestamp().as_second() - jiff::Timestamp::now().as_second();
    assert!((25..=31).contains(&wait), "{wait}");
    assert_eq!(get(&api, "", ADMIN_KEY).0, 200);
    assert_eq!(api.requests().len(), 10);
}
