//! Behaviour of `generate`: determinism, event shape, rhythm across daylight saving,
//! incidents, benign lookalikes, `max_events` and volume scaling.

use std::collections::{HashMap, HashSet};

use auditwatch_gen::{Incident, Options, generate};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

fn run(opts: &Options) -> (Vec<u8>, Vec<Incident>) {
    let mut out = Vec::new();
    let incidents = generate(opts, &mut out).expect("generate");
    (out, incidents)
}

fn parse(out: &[u8]) -> Vec<Value> {
    std::str::from_utf8(out)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn opts(days: u32, people: u32, incidents: bool) -> Options {
    Options {
        days,
        people,
        incidents,
        ..Options::default()
    }
}

const INCIDENT_ONLY: [&str; 14] = [
    "ip_allowlist.deleted",
    "ip_allowlist.config.deactivated",
    "scim.disabled",
    "external_key.registered",
    "workload_identity_provider.created",
    "checkpoint.permission.created",
    "certificate.deleted",
    "certificates.deactivated",
    "role.created",
    "role.updated",
    "project.deleted",
    "tenant.admin_api_key.created",
    "tenant.sso_connection.deleted",
    "tenant.session_policy.deleted",
];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = run(&opts(5, 40, true));
    let b = run(&opts(5, 40, true));
    assert_eq!(a.0, b.0);
    assert_eq!(a.1, b.1);
    let c = run(&Options {
        seed: 8,
        ..opts(5, 40, true)
    });
    assert_ne!(a.0, c.0);
}

#[test]
fn events_have_the_api_shape_and_ascend() {
    let (out, _) = run(&opts(7, 60, true));
    let events = parse(&out);
    assert!(events.len() > 1000);
    let mut last = i64::MIN;
    let mut ids = HashSet::new();
    for e in &events {
        let o = e.as_object().expect("object");
        assert_eq!(o["object"], "organization.audit_log");
        let id = o["id"].as_str().unwrap();
        assert!(id.starts_with("audit_log-") && id.len() == 34, "{id}");
        assert!(id[10..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert!(ids.insert(id.to_string()), "duplicate id {id}");
        let ty = o["type"].as_str().unwrap();
        let t = o["effective_at"].as_i64().unwrap();
        assert!(t >= last, "not ascending");
        last = t;
        for k in o.keys() {
            assert!(
                ["object", "id", "type", "effective_at", "project", "actor"].contains(&k.as_str())
                    || k == ty,
                "unexpected key {k} in {ty}"
            );
        }
        if ty == "login.succeeded" || ty == "logout.succeeded" {
            assert!(!o.contains_key(ty));
        }
        if let Some(p) = o.get("project") {
            assert!(p["id"].as_str().unwrap().starts_with("proj_"));
            assert!(p["name"].is_string());
        }
        let Some(actor) = o.get("actor").filter(|a| !a.is_null()) else {
            continue;
        };
        match actor["type"].as_str().unwrap() {
            "session" => {
                let s = &actor["session"];
                assert!(s["user"]["id"].as_str().unwrap().starts_with("user-"));
                assert!(s["user"]["email"].as_str().unwrap().contains('@'));
                assert!(s["ip_address"].is_string() && s["user_agent"].is_string());
                if let Some(d) = s.get("ip_address_details") {
                    assert_eq!(d.as_object().unwrap().len(), 7);
                    assert!(d.as_object().unwrap().values().all(Value::is_string));
                    let ja3 = s["ja3"].as_str().unwrap();
                    assert!(ja3.len() == 32 && ja3.bytes().all(|c| c.is_ascii_hexdigit()));
                    assert!(s["ja4"].as_str().unwrap().starts_with("t13d"));
                }
            }
            "api_key" => {
                let k = &actor["api_key"];
                assert!(k["id"].as_str().unwrap().starts_with("key_"));
                match k["type"].as_str().unwrap() {
                    "user" => assert!(k["user"]["id"].as_str().unwrap().starts_with("user-")),
                    "service_account" => assert!(
                        k["service_account"]["id"]
                            .as_str()
                            .unwrap()
                            .starts_with("svc_acct_")
                    ),
                    other => panic!("api key type {other}"),
                }
            }
            other => panic!("actor type {other}"),
        }
    }
}

/// Hour histograms of weekday sign-ins, local and UTC, before and after the DST change.
#[test]
fn working_hours_stay_local_across_the_dst_change() {
    let (out, _) = run(&opts(28, 60, false));
    let tz = TimeZone::get("America/New_York").unwrap();
    let change = jiff::civil::date(2026, 11, 1);
    let mut local = [[0u32; 24]; 2];
    // Sum of local and UTC seconds of day, and count, per half.
    let mut sums = [(0f64, 0f64, 0f64); 2];
    let (mut weekday, mut weekend) = (0u32, 0u32);
    for e in parse(&out) {
        if e["type"] != "login.succeeded" {
            continue;
        }
        let ts = Timestamp::from_second(e["effective_at"].as_i64().unwrap()).unwrap();
        let z = ts.to_zoned(tz.clone());
        if matches!(
            z.weekday(),
            jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
        ) {
            weekend += 1;
            continue;
        }
        weekday += 1;
        let half = usize::from(z.date() >= change);
        local[half][z.hour() as usize] += 1;
        let u = ts.to_zoned(TimeZone::UTC);
        let secs = |h: i8, m: i8| f64::from(h) * 3600.0 + f64::from(m) * 60.0;
        sums[half].0 += secs(z.hour(), z.minute());
        sums[half].1 += secs(u.hour(), u.minute());
        sums[half].2 += 1.0;
    }
    assert!(
        weekend * 20 < weekday,
        "weekends: {weekend}, weekdays: {weekday}"
    );
    for (half, hours) in local.iter().enumerate() {
        let total: u32 = hours.iter().sum();
        let office: u32 = hours[8..19].iter().sum();
        assert!(office * 100 > total * 85, "half {half}: {office}/{total}");
        assert!(hours[0..6].iter().sum::<u32>() * 100 < total);
    }
    let mean = |x: f64, n: f64| x / n / 3600.0;
    let (l0, l1) = (mean(sums[0].0, sums[0].2), mean(sums[1].0, sums[1].2));
    let (u0, u1) = (mean(sums[0].1, sums[0].2), mean(sums[1].1, sums[1].2));
    assert!((10.0..15.0).contains(&l0), "mean local hour {l0}");
    assert!((l0 - l1).abs() < 0.25, "local means {l0} vs {l1}");
    assert!((0.75..1.25).contains(&(u1 - u0)), "UTC means {u0} vs {u1}");
}

#[test]
fn incidents_only_when_asked() {
    let (plain, none) = run(&opts(28, 60, false));
    assert!(none.is_empty());
    for e in parse(&plain) {
        let ty = e["type"].as_str().unwrap();
        assert!(!INCIDENT_ONLY.contains(&ty), "{ty} without incidents");
    }

    let (out, incidents) = run(&opts(28, 60, true));
    assert_eq!(incidents.len(), 21);
    let events = parse(&out);
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let names: HashSet<&str> = incidents.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names.len(), 21);
    let tz = TimeZone::get("America/New_York").unwrap();
    let (mut off_hours, mut business) = (false, false);
    for inc in &incidents {
        assert!(!inc.event_ids.is_empty());
        let first = by_id[inc.event_ids[0].as_str()];
        assert_eq!(first["effective_at"].as_i64().unwrap(), inc.effective_at);
        for id in &inc.event_ids {
            assert!(by_id.contains_key(id.as_str()), "{} lost {id}", inc.name);
        }
        let z = Timestamp::from_second(inc.effective_at)
            .unwrap()
            .to_zoned(tz.clone());
        let weekend = matches!(
            z.weekday(),
            jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
        );
        if weekend || z.hour() < 7 || z.hour() >= 21 {
            off_hours = true;
        } else if (9..17).contains(&z.hour()) {
            business = true;
        }
    }
    assert!(off_hours && business);
    let types_of = |name: &str| -> Vec<String> {
        let inc = incidents.iter().find(|i| i.name == name).unwrap();
        inc.event_ids
            .iter()
            .map(|id| by_id[id.as_str()]["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(types_of("failed-login-burst").len(), 13);
    assert_eq!(
        types_of("password-spraying"),
        vec!["login.failed".to_string(); 10]
    );
    assert!(types_of("unknown-event-type").contains(&"organization.data_retention.updated".into()));
}

#[test]
fn benign_days_hold_lookalikes_not_incidents() {
    let (out, _) = run(&opts(28, 120, false));
    let events = parse(&out);
    let mut seen = HashSet::new();
    for e in &events {
        let ty = e["type"].as_str().unwrap();
        seen.insert(ty.to_string());
        let d = &e[ty];
        match ty {
            "invite.sent" => {
                // Corporate addresses; in a large org also partners' contractors.
                let email = d["data"]["email"].as_str().unwrap();
                let domain = email.rsplit('@').next().unwrap();
                assert!(
                    domain == "example.com"
                        || domain.ends_with("-partners.example.net")
                        || domain.ends_with("-design.example.org")
                        || domain.ends_with("-consulting.example.net"),
                    "{email}"
                );
                assert_eq!(d["data"]["role"], "reader");
            }
            "user.updated" => assert_ne!(d["changes_requested"]["role"], "owner"),
            "service_account.created" => assert_eq!(d["data"]["role"], "member"),
            "api_key.created" => {
                assert!(
                    !d["data"]["scopes"]
                        .as_array()
                        .unwrap()
                        .contains(&"api.all".into())
                )
            }
            "organization.updated" => {
                assert!(d["changes_requested"].get("api_call_logging").is_none())
            }
            _ => {}
        }
    }
    for ty in [
        "login.failed",
        "invite.sent",
        "invite.accepted",
        "rate_limit.updated",
        "role.assignment.created",
        "user.updated",
        "api_key.created",
        "service_account.created",
    ] {
        assert!(seen.contains(ty), "no {ty}");
    }
    // The provisioning job runs at 02:00 local every night.
    let tz = TimeZone::get("America/New_York").unwrap();
    let nightly: HashSet<_> = events
        .iter()
        .filter(|e| e["actor"]["api_key"]["type"] == "service_account")
        .map(|e| {
            let z = Timestamp::from_second(e["effective_at"].as_i64().unwrap())
                .unwrap()
                .to_zoned(tz.clone());
            assert_eq!(z.hour(), 2);
            z.date()
        })
        .collect();
    assert_eq!(nightly.len(), 28);
}

#[test]
fn max_events_cuts_a_prefix_and_keeps_only_whole_incidents() {
    let (full, all) = run(&opts(10, 60, true));
    let (cut, some) = run(&Options {
        max_events: Some(1000),
        ..opts(10, 60, true)
    });
    assert_eq!(cut.iter().filter(|b| **b == b'\n').count(), 1000);
    assert!(full.starts_with(&cut));
    assert!(some.len() < all.len());
    let written: HashSet<String> = parse(&cut)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    for inc in &some {
        assert!(inc.event_ids.iter().all(|id| written.contains(id)));
    }
}

#[test]
fn volume_grows_linearly_with_people() {
    let small = run(&opts(7, 60, false))
        .0
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let large = run(&opts(7, 600, false))
        .0
        .iter()
        .filter(|b| **b == b'\n')
        .count();
    let ratio = large as f64 / small as f64;
    assert!((9.0..14.0).contains(&ratio), "ratio {ratio}");
}

#[test]
fn unknown_time_zone_is_rejected() {
    let mut out = Vec::new();
    let err = generate(
        &Options {
            timezone: "Mars/Olympus".into(),
            ..Options::default()
        },
        &mut out,
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_long_history_of_a_large_org_has_offices_abroad_vpns_and_trips() {
    let (out, _) = run(&opts(90, 150, false));
    let events = parse(&out);
    let mut last = i64::MIN;
    // Weekday logins per office abroad: (in local working hours, all).
    let mut abroad: HashMap<&str, (u32, u32)> = HashMap::new();
    let mut asns: HashSet<String> = HashSet::new();
    let mut trips = 0;
    // First login per person, and per person and browser.
    let mut first_login: HashMap<String, i64> = HashMap::new();
    let mut first_browser: HashMap<(String, String), i64> = HashMap::new();
    for e in &events {
        let t = e["effective_at"].as_i64().unwrap();
        assert!(t >= last, "not ascending");
        last = t;
        if e["type"] != "login.succeeded" {
            continue;
        }
        let s = &e["actor"]["session"];
        if let (Some(email), Some(ua)) = (s["user"]["email"].as_str(), s["user_agent"].as_str()) {
            first_login.entry(email.to_string()).or_insert(t);
            first_browser
                .entry((email.to_string(), ua.to_string()))
                .or_insert(t);
        }
        let d = &e["actor"]["session"]["ip_address_details"];
        let Some(asn) = d["asn"].as_str() else {
            continue;
        };
        asns.insert(asn.to_string());
        if s["ip_address"]
            .as_str()
            .is_some_and(|ip| (220..228).any(|n| ip.starts_with(&format!("198.18.{n}."))))
        {
            trips += 1;
        }
        let zone = match asn {
            "64520" | "64521" | "64522" | "64523" => "Europe/London",
            "64530" | "64531" | "64532" => "Asia/Kolkata",
            _ => continue,
        };
        let z = Timestamp::from_second(t)
            .unwrap()
            .to_zoned(TimeZone::get(zone).unwrap());
        if matches!(
            z.weekday(),
            jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
        ) {
            continue;
        }
        let n = abroad.entry(zone).or_default();
        n.1 += 1;
        if (8..19).contains(&z.hour()) {
            n.0 += 1;
        }
    }
    // Staff abroad sign in on their own clock, which is night in New York.
    for zone in ["Europe/London", "Asia/Kolkata"] {
        let (inside, all) = abroad[zone];
        assert!(all > 200, "{zone}: {all} logins");
        assert!(
            inside * 100 > all * 85,
            "{zone}: {inside}/{all} in local hours"
        );
    }
    // The corporate VPN, a consumer VPN, cloud workstations.
    for asn in ["64510", "65560", "64511"] {
        assert!(asns.contains(asn), "no login through AS{asn}");
    }
    // Business trips: logins from hotel and conference networks.
    assert!(trips > 0, "no login from a trip");
    // New laptops: people who, a month after their first login, sign in with a browser
    // they had not used.
    let late = first_browser
        .iter()
        .filter(|((email, _), t)| **t > first_login[email] + 30 * 86_400)
        .count();
    assert!(late > 0, "nobody got a new laptop");
}
