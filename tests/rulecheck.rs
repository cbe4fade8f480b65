//! End-to-end tests of `rulecheck` against the rule contract
//! (shared/spec/rules.md), the command contract (shared/spec/cli.md) and the
//! config contract (shared/spec/config.md), through the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

/// Four events with the shapes the API returns: Bob (US office network,
/// mixed-case email) and Eve (RU) creating keys in projects, a service
/// account deleting a key (no project, no session), Carol signing in over
/// IPv6 from Germany (no project, no detail object).
fn corpus() -> Vec<Value> {
    vec![
        ev("e-bob", "api_key.created", T0)
            .session_as("user-bob", "Bob@Example.COM", "203.0.113.7")
            .project("proj_prod", "Production")
            .details(
                json!({"id": "key_1", "data": {"scopes": ["api.model.request", "api.files.read"]}}),
            )
            .json(),
        ev("e-eve", "api_key.created", T0 + 60)
            .session_as("user-eve", "eve@evil.io", "198.51.100.23")
            .geo("RU", "12389")
            .project("proj_lab", "Lab")
            .details(json!({"id": "key_2", "data": {"scopes": ["api.all"]}}))
            .json(),
        ev("e-svc", "api_key.deleted", T0 + 120)
            .service_key("key_ci_9", "svc_acct_ci")
            .details(json!({"id": "key_3"}))
            .json(),
        ev("e-carol", "login.succeeded", T0 + 180)
            .session_as("user-carol", "carol@example.com", "2001:db8:abcd::17")
            .geo("DE", "3320")
            .json(),
    ]
}

const LISTS_CONFIG: &str = r#"
lists:
  corp_emails: ["*@example.com"]
  office_networks: ["203.0.113.0/24", "2001:db8:abcd::/48"]
  watched_countries: [ru, KP]
  known_bad_ips: ["198.51.100.23"]
"#;

/// Group 1: every `match` operator, scalars, lists and lists of operands.
mod operators {
    use super::*;

    #[test]
    fn scalar_is_equality_and_list_is_any() {
        check_cases(
            None,
            &corpus(),
            &[
                ("match: {type: api_key.deleted}", &["e-svc"]),
                (
                    "match: {type: [api_key.deleted, login.succeeded]}",
                    &["e-svc", "e-carol"],
                ),
                (
                    "match: {type: api_key.created, actor.country: US}",
                    &["e-bob"],
                ),
                ("match: {type: [audit_log.nothing]}", &[]),
            ],
        );
    }

    #[test]
    fn every_operator_on_present_values() {
        let t1 = T0 + 60;
        let effective = format!("match: {{effective_at: {{gt: {t1}}}}}");
        check_cases(
            None,
            &corpus(),
            &[
                (
                    "match: {actor.session.user.email: {eq: \"bob@example.com\"}}",
                    &["e-bob"],
                ),
                (
                    "match: {actor.email: {eq: \"BOB@EXAMPLE.COM\"}}",
                    &["e-bob"],
                ),
                (
                    "match: {actor.email: {ne: \"bob@example.com\"}}",
                    &["e-eve", "e-carol"],
                ),
                (
                    "match: {actor.country: {in: [ru, de]}}",
                    &["e-eve", "e-carol"],
                ),
                ("match: {actor.country: {not_in: [RU, DE]}}", &["e-bob"]),
                (
                    "match: {actor.email: {glob: \"*@example.com\"}}",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.email: {not_glob: \"*@example.com\"}}",
                    &["e-eve"],
                ),
                ("match: {actor.email: {regex: \"^eve@\"}}", &["e-eve"]),
                (
                    "match: {actor.email: {not_regex: \"^eve@\"}}",
                    &["e-bob", "e-carol"],
                ),
                ("match: {actor.ip: {cidr: \"203.0.113.0/24\"}}", &["e-bob"]),
                (
                    "match: {actor.ip: {not_cidr: \"203.0.113.0/24\"}}",
                    &["e-eve", "e-carol"],
                ),
                ("match: {project.name: {contains: \"DUCT\"}}", &["e-bob"]),
                (
                    "match: {details.id: {starts_with: \"KEY_\"}}",
                    &["e-bob", "e-eve", "e-svc"],
                ),
                (
                    "match: {actor.email: {ends_with: \"@EVIL.IO\"}}",
                    &["e-eve"],
                ),
                ("match: {actor.asn: {gt: 12389}}", &["e-bob"]),
                ("match: {actor.asn: {gte: 12389}}", &["e-bob", "e-eve"]),
                ("match: {actor.asn: {lt: 12389}}", &["e-carol"]),
                ("match: {actor.asn: {lte: 12389}}", &["e-eve", "e-carol"]),
                (&effective, &["e-svc", "e-carol"]),
                ("match: {project.id: {exists: true}}", &["e-bob", "e-eve"]),
                (
                    "match: {project.id: {exists: false}}",
                    &["e-svc", "e-carol"],
                ),
                ("match: {actor.asn: {gt: 3320, lt: 16509}}", &["e-eve"]),
            ],
        );
    }

    #[test]
    fn operators_taking_a_list_hold_if_any_item_holds() {
        check_cases(
            None,
            &corpus(),
            &[
                (
                    "match: {actor.email: {glob: [\"*@evil.io\", \"carol@*\"]}}",
                    &["e-eve", "e-carol"],
                ),
                (
                    "match: {actor.email: {not_glob: [\"*@evil.io\", \"carol@*\"]}}",
                    &["e-bob"],
                ),
                (
                    "match: {actor.email: {regex: [\"^bob@\", \"^carol@\"]}}",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.email: {not_regex: [\"^bob@\", \"^carol@\"]}}",
                    &["e-eve"],
                ),
                (
                    "match: {actor.ip: {cidr: [\"198.51.100.0/24\", \"2001:db8::/32\"]}}",
                    &["e-eve", "e-carol"],
                ),
                (
                    "match: {actor.ip: {not_cidr: [\"198.51.100.0/24\", \"2001:db8::/32\"]}}",
                    &["e-bob"],
                ),
                (
                    "match: {actor.email: {contains: [evil, carol]}}",
                    &["e-eve", "e-carol"],
                ),
                (
                    "match: {actor.email: {starts_with: [bob, eve]}}",
                    &["e-bob", "e-eve"],
                ),
                ("match: {actor.email: {ends_with: [.io, .net]}}", &["e-eve"]),
                ("match: {actor.asn: {lt: [1000, 5000]}}", &["e-carol"]),
                ("match: {actor.asn: {gt: [20000, 13000]}}", &["e-bob"]),
                (
                    "match: {actor.country: {eq: [US, RU]}}",
                    &["e-bob", "e-eve"],
                ),
                ("match: {actor.country: {ne: [US, RU]}}", &["e-carol"]),
                (
                    "match: {actor.country: {in: [US], not_in: [RU]}}",
                    &["e-bob"],
                ),
            ],
        );
    }

    #[test]
    fn in_list_and_not_in_list_use_config_lists() {
        check_cases(
            Some(LISTS_CONFIG),
            &corpus(),
            &[
                (
                    "match: {actor.email: {in_list: corp_emails}}",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.session.user.email: {in_list: corp_emails}}",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.email: {not_in_list: corp_emails}}",
                    &["e-eve"],
                ),
                (
                    "match: {actor.ip: {in_list: office_networks}}",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.ip: {not_in_list: office_networks}}",
                    &["e-eve"],
                ),
                (
                    "match: {actor.country: {in_list: watched_countries}}",
                    &["e-eve"],
                ),
                ("match: {actor.ip: {in_list: known_bad_ips}}", &["e-eve"]),
                (
                    "match: {actor.ip: {not_in_list: known_bad_ips}}",
                    &["e-bob", "e-carol"],
                ),
            ],
        );
    }

    #[test]

    fn in_list_takes_a_list_of_list_names() {
        check_cases(
            Some(LISTS_CONFIG),
            &corpus(),
            &[
                (
                    "match: {actor.ip: {in_list: [office_networks, known_bad_ips]}}",
                    &["e-bob", "e-eve", "e-carol"],
                ),
                (
                    "match: {actor.email: {not_in_list: [corp_emails, known_bad_ips]}}",
                    &["e-eve"],
                ),
            ],
        );
    }
}

/// Group 2: negation, missing values, arrays, text, numbers, IPs,
/// composition, paths and the normalized event.
mod semantics {
    use super::*;

    fn notes() -> Vec<Value> {
        let base = |id: &str, at: i64| {
            ev(id, "user.updated", at)
                .session("admin@example.com", "203.0.113.7")
                .project("proj_prod", "Production")
        };
        vec![
            base("n-present", T0)
                .details(json!({"id": "user_1", "note": "hello"}))
                .json(),
            base("n-null", T0 + 1)
                .details(json!({"id": "user_2", "note": null}))
                .json(),
            base("n-absent", T0 + 2)
                .details(json!({"id": "user_3"}))
                .json(),
        ]
    }

    #[test]
    fn every_operator_is_false_on_missing_and_null_values() {
        let config = "lists:\n  greetings: [hello]\n  farewells: [bye]\n";
        check_cases(
            Some(config),
            &notes(),
            &[
                ("match: {details.note: {eq: hello}}", &["n-present"]),
                ("match: {details.note: {ne: bye}}", &["n-present"]),
                ("match: {details.note: {ne: hello}}", &[]),
                ("match: {details.note: {in: [hello, hi]}}", &["n-present"]),
                ("match: {details.note: {not_in: [bye]}}", &["n-present"]),
                ("match: {details.note: {glob: \"h*\"}}", &["n-present"]),
                ("match: {details.note: {not_glob: \"b*\"}}", &["n-present"]),
                ("match: {details.note: {regex: ell}}", &["n-present"]),
                (
                    "match: {details.note: {not_regex: \"^bye$\"}}",
                    &["n-present"],
                ),
                ("match: {details.note: {cidr: \"10.0.0.0/8\"}}", &[]),
                (
                    "match: {details.note: {not_cidr: \"10.0.0.0/8\"}}",
                    &["n-present"],
                ),
                ("match: {details.note: {contains: ell}}", &["n-present"]),
                ("match: {details.note: {starts_with: he}}", &["n-present"]),
                ("match: {details.note: {ends_with: lo}}", &["n-present"]),
                ("match: {details.note: {gt: 0}}", &[]),
                ("match: {details.note: {gte: 0}}", &[]),
                ("match: {details.note: {lt: 0}}", &[]),
                ("match: {details.note: {lte: 0}}", &[]),
                (
                    "match: {details.note: {in_list: greetings}}",
                    &["n-present"],
                ),
                (
                    "match: {details.note: {not_in_list: farewells}}",
                    &["n-present"],
                ),
                ("match: {details.note: {not_in_list: greetings}}", &[]),
                ("match: {details.note: {exists: true}}", &["n-present"]),
                (
                    "match: {details.note: {exists: false}}",
                    &["n-null", "n-absent"],
                ),
                ("match: {details.note: {exists: false, ne: hello}}", &[]),
                (
                    "match: {not: {details.note: {eq: hello}}}",
                    &["n-null", "n-absent"],
                ),
            ],
        );
    }

    #[test]
    fn null_objects_count_as_missing() {
        let events = vec![
            ev("p-null", "project.archived", T0)
                .session("admin@example.com", "203.0.113.7")
                .set("project", Value::Null)
                .details(json!({"id": "proj_old"}))
                .json(),
            ev("p-set", "project.archived", T0 + 1)
                .session("admin@example.com", "203.0.113.7")
                .project("proj_prod", "Production")
                .details(json!({"id": "proj_prod"}))
                .json(),
        ];
        check_cases(
            None,
            &events,
            &[
                ("match: {project.id: {exists: false}}", &["p-null"]),
                ("match: {project: {exists: false}}", &["p-null"]),
                ("match: {project.id: {ne: proj_x}}", &["p-set"]),
                ("match: {project.name: {not_glob: \"*\"}}", &[]),
            ],
        );
    }

    fn arrays() -> Vec<Value> {
        let admin = |e: Ev| e.session("admin@example.com", "203.0.113.7");
        vec![
            admin(ev("a-mixed", "ip_allowlist.created", T0))
                .details(json!({"id": "ipal_1", "name": "office", "allowed_ips": ["10.1.2.3", "192.168.7.7"]}))
                .json(),
            admin(ev("a-public", "ip_allowlist.created", T0 + 1))
                .details(json!({"id": "ipal_2", "name": "vpn", "allowed_ips": ["198.51.100.4", "203.0.113.9"]}))
                .json(),
            admin(ev("a-empty", "ip_allowlist.created", T0 + 2))
                .details(json!({"id": "ipal_3", "name": "none", "allowed_ips": []}))
                .json(),
            key_created("s-model", T0 + 3, "dev@example.com", &["api.model.request"]),
            key_created("s-all", T0 + 4, "dev@example.com", &["api.all", "api.model.read"]),
        ]
    }

    #[test]
    fn arrays_positive_any_element_negated_none() {
        check_cases(
            None,
            &arrays(),
            &[
                (
                    "match: {details.allowed_ips: {cidr: \"10.0.0.0/8\"}}",
                    &["a-mixed"],
                ),
                (
                    "match: {details.allowed_ips: {not_cidr: \"10.0.0.0/8\"}}",
                    &["a-public", "a-empty"],
                ),
                (
                    "match: {details.allowed_ips: {not_cidr: [\"10.0.0.0/8\", \"192.168.0.0/16\"]}}",
                    &["a-public", "a-empty"],
                ),
                (
                    "match: {details.allowed_ips: \"203.0.113.9\"}",
                    &["a-public"],
                ),
                (
                    "match: {details.allowed_ips: {ne: \"203.0.113.9\"}}",
                    &["a-mixed", "a-empty"],
                ),
                ("match: {details.allowed_ips: {eq: \"203.0.113\"}}", &[]),
                (
                    "match: {details.allowed_ips: {contains: \"203.0.113\"}}",
                    &["a-public"],
                ),
                (
                    "match: {details.allowed_ips: {exists: true}}",
                    &["a-mixed", "a-public", "a-empty"],
                ),
                (
                    "match: {api_key.created.data.scopes: {contains: MODEL}}",
                    &["s-model", "s-all"],
                ),
                ("match: {details.data.scopes: api.all}", &["s-all"]),
                ("match: {details.data.scopes: API.ALL}", &["s-all"]),
                ("match: {details.data.scopes: api}", &[]),
                (
                    "match: {details.data.scopes: {not_glob: \"api.model.*\"}}",
                    &[],
                ),
                (
                    "match: {details.data.scopes: {not_regex: \"^api\\\\.all$\"}}",
                    &["s-model"],
                ),
                (
                    "match: {details.data.scopes: {in: [api.files.read, api.all]}}",
                    &["s-all"],
                ),
            ],
        );
    }

    #[test]
    fn numbers_and_booleans_compare_by_json_text() {
        let admin = |e: Ev| e.session("admin@example.com", "203.0.113.7");
        let events = vec![
            admin(ev("t-num", "rate_limit.updated", T0))
                .project("proj_prod", "Production")
                .details(json!({"id": "rl_1", "changes_requested": {
                    "max_requests_per_1_minute": 5,
                    "max_tokens_per_1_minute": "5000",
                    "batch_1_day_max_input_tokens": 5_000_000
                }}))
                .json(),
            admin(ev("t-bool", "role.bound_to_resource", T0 + 1))
                .details(json!({"id": "rb_1", "enabled": true, "source": "role_toggle"}))
                .json(),
            admin(ev("t-text", "role.bound_to_resource", T0 + 2))
                .details(json!({"id": "rb_2", "enabled": "true", "source": "connector_publish"}))
                .json(),
            admin(ev("t-off", "role.bound_to_resource", T0 + 3))
                .details(json!({"id": "rb_3", "enabled": false, "source": "role_delete"}))
                .json(),
        ];
        check_cases(
            None,
            &events,
            &[
                (
                    "match: {details.changes_requested.max_requests_per_1_minute: \"5\"}",
                    &["t-num"],
                ),
                (
                    "match: {details.changes_requested.max_tokens_per_1_minute: 5000}",
                    &["t-num"],
                ),
                (
                    "match: {details.changes_requested.max_tokens_per_1_minute: {gt: 4999.5}}",
                    &["t-num"],
                ),
                (
                    "match: {details.changes_requested.max_tokens_per_1_minute: {lt: 5000}}",
                    &[],
                ),
                (
                    "match: {details.changes_requested.batch_1_day_max_input_tokens: {gte: 5000000, lte: 5000000}}",
                    &["t-num"],
                ),
                ("match: {details.enabled: true}", &["t-bool", "t-text"]),
                ("match: {details.enabled: \"true\"}", &["t-bool", "t-text"]),
                (
                    "match: {details.enabled: {ne: false}}",
                    &["t-bool", "t-text"],
                ),
                ("match: {details.enabled: false}", &["t-off"]),
                ("match: {details.enabled: {gt: 0}}", &[]),
                ("match: {details.source: {gte: 0}}", &[]),
            ],
        );
    }

    #[test]
    fn text_regex_and_glob_semantics() {
        let admin = |e: Ev| e.session("admin@example.com", "203.0.113.7");
        let events = vec![
            admin(ev("g-ckpt", "checkpoint.permission.created", T0))
                .details(json!({"id": "cp_1", "data": {
                    "project_id": "proj_a",
                    "fine_tuned_model_checkpoint": "ft:gpt-4o-mini:acme:run-7/ckpt-step-100"
                }}))
                .json(),
            admin(ev("g-assign", "role.assignment.created", T0 + 1))
                .details(json!({"id": "ra_12", "principal_id": "user-Abc", "principal_type": "user", "resource_id": "proj_a", "resource_type": "api.project"}))
                .json(),
            admin(ev("g-role", "role.created", T0 + 2))
                .details(json!({"id": "ra_3", "role_name": "Evil-Admin", "permissions": [], "resource_type": "api.organization", "resource_id": "org-1"}))
                .json(),
        ];
        check_cases(
            None,
            &events,
            &[
                (
                    "match: {type: {glob: \"*.created\"}}",
                    &["g-ckpt", "g-assign", "g-role"],
                ),
                ("match: {type: {glob: \"role.*\"}}", &["g-assign", "g-role"]),
                (
                    "match: {details.data.fine_tuned_model_checkpoint: {glob: \"ft:*/ckpt-*\"}}",
                    &["g-ckpt"],
                ),
                ("match: {details.id: {glob: \"ra_?\"}}", &["g-role"]),
                ("match: {details.id: {glob: \"ra_??\"}}", &["g-assign"]),
                (
                    "match: {details.id: {glob: \"ra_[13]*\"}}",
                    &["g-assign", "g-role"],
                ),
                ("match: {details.id: {glob: \"ra_[2-9]\"}}", &["g-role"]),
                (
                    "match: {details.role_name: {glob: \"evil-*\"}}",
                    &["g-role"],
                ),
                ("match: {details.role_name: {regex: Admin}}", &["g-role"]),
                ("match: {details.role_name: {regex: admin}}", &[]),
                (
                    "match: {details.role_name: {regex: \"(?i)^evil-admin$\"}}",
                    &["g-role"],
                ),
                ("match: {details.role_name: {regex: \"^Admin\"}}", &[]),
                (
                    "match: {details.role_name: {not_regex: admin}}",
                    &["g-role"],
                ),
                ("match: {details.principal_type: {eq: USER}}", &["g-assign"]),
                (
                    "match: {details.role_name: {starts_with: EVIL}}",
                    &["g-role"],
                ),
            ],
        );
    }

    #[test]
    fn cidr_ipv4_ipv6_and_bare_addresses() {
        let login = |id: &str, at: i64, ip: &str| {
            ev(id, "login.succeeded", at)
                .session("admin@example.com", ip)
                .json()
        };
        let events = vec![
            login("c-v4", T0, "203.0.113.7"),
            login("c-v4b", T0 + 1, "203.0.113.8"),
            login("c-v6", T0 + 2, "2001:db8:abcd:12::1"),
            login("c-v6b", T0 + 3, "2001:db9::1"),
            login("c-bad", T0 + 4, "unknown"),
        ];
        check_cases(
            None,
            &events,
            &[
                ("match: {actor.ip: {cidr: \"203.0.113.7\"}}", &["c-v4"]),
                ("match: {actor.ip: {cidr: \"203.0.113.7/32\"}}", &["c-v4"]),
                (
                    "match: {actor.ip: {not_cidr: \"203.0.113.7\"}}",
                    &["c-v4b", "c-v6", "c-v6b", "c-bad"],
                ),
                (
                    "match: {actor.ip: {cidr: \"203.0.113.0/24\"}}",
                    &["c-v4", "c-v4b"],
                ),
                ("match: {actor.ip: {cidr: \"2001:db8::/32\"}}", &["c-v6"]),
                (
                    "match: {actor.ip: {cidr: \"2001:db8:abcd:12::1\"}}",
                    &["c-v6"],
                ),
                (
                    "match: {actor.ip: {cidr: \"0.0.0.0/0\"}}",
                    &["c-v4", "c-v4b"],
                ),
                ("match: {actor.ip: {cidr: \"::/0\"}}", &["c-v6", "c-v6b"]),
            ],
        );
    }

    #[test]
    fn any_all_and_not_nest() {
        let mut events = corpus();
        events.push(
            ev("e-home", "api_key.created", T0 + 240)
                .session_as("user-bob", "bob@example.com", "192.0.2.55")
                .project("proj_prod", "Production")
                .details(json!({"id": "key_4", "data": {"scopes": ["api.all"]}}))
                .json(),
        );
        let nested = "match:
  type: api_key.created
  any:
    - actor.country: RU
    - all:
        - actor.email: {glob: \"*@example.com\"}
        - not: {actor.ip: {cidr: \"203.0.113.0/24\"}}";
        check_cases(
            None,
            &events,
            &[
                (nested, &["e-eve", "e-home"]),
                (
                    "match: {not: {type: api_key.created}}",
                    &["e-svc", "e-carol"],
                ),
                (
                    "match: {not: {any: [{actor.country: US}, {actor.country: DE}]}}",
                    &["e-eve", "e-svc"],
                ),
                (
                    "match: {all: [{type: api_key.created}, {actor.asn: {gt: 15000}}]}",
                    &["e-bob", "e-home"],
                ),
                (
                    "match: {any: [{all: [{actor.country: US}, {not: {details.data.scopes: api.all}}]}, {actor.kind: service_account}]}",
                    &["e-bob", "e-svc"],
                ),
            ],
        );
    }

    #[test]
    fn paths_take_the_longest_key_at_each_level() {
        let mut events = corpus();
        events.push(
            ev("p-dots", "custom.thing", T0 + 300)
                .set("a", json!({"b.c": {"d": 1}, "b": {"c": {"d": 2}}}))
                .json(),
        );
        events.push(
            ev("p-cfg", "ip_allowlist.config.activated", T0 + 301)
                .session("admin@example.com", "203.0.113.7")
                .details(json!({"configs": [{"id": "ipal_1", "name": "office"}]}))
                .json(),
        );
        check_cases(
            None,
            &events,
            &[
                ("match: {api_key.created.data.scopes: api.all}", &["e-eve"]),
                ("match: {api_key.deleted.id: key_3}", &["e-svc"]),
                ("match: {details.data.scopes: api.files.read}", &["e-bob"]),
                ("match: {a.b.c.d: 1}", &["p-dots"]),
                ("match: {a.b.c.d: 2}", &[]),
                (
                    "match: {ip_allowlist.config.activated.configs: {exists: true}}",
                    &["p-cfg"],
                ),
                ("match: {details.configs: {exists: true}}", &["p-cfg"]),
            ],
        );
    }

    fn actors() -> Vec<Value> {
        vec![
            ev("n-sess", "api_key.created", ts("2026-03-10T15:00:00Z"))
                .session_as("user-Rt5Yp8Wq", "Dana.Lee@Example.com", "203.0.113.24")
                .geo("US", "7922")
                .project("proj_prod", "Production")
                .details(json!({"id": "key_a", "data": {"scopes": ["api.all"]}}))
                .json(),
            ev("n-ukey", "api_key.created", T0 + 1)
                .user_key("key_user_1", "user-Kx9", "Ops@Example.com")
                .details(json!({"id": "key_b", "data": {"scopes": ["api.all"]}}))
                .json(),
            ev("n-skey", "api_key.created", T0 + 2)
                .service_key("key_svc_1", "svc_acct_1")
                .details(json!({"id": "key_c", "data": {"scopes": ["api.all"]}}))
                .json(),
            ev("n-null", "api_key.created", T0 + 3)
                .set("actor", Value::Null)
                .details(json!({"id": "key_d", "data": {"scopes": ["api.all"]}}))
                .json(),
            ev("n-absent", "api_key.created", T0 + 4)
                .details(json!({"id": "key_e", "data": {"scopes": ["api.all"]}}))
                .json(),
            ev("n-other", "api_key.created", T0 + 5)
                .actor(json!({"type": "workload_identity", "workload_identity": {"id": "wi_1"}}))
                .details(json!({"id": "key_f", "data": {"scopes": ["api.all"]}}))
                .json(),
        ]
    }

    #[test]
    fn normalized_actor_fields() {
        let time = format!("match: {{time: \"2026-03-10T15:00:00Z\", effective_at: {T0}}}");
        check_cases(
            None,
            &actors(),
            &[
                ("match: {actor.kind: user}", &["n-sess", "n-ukey"]),
                ("match: {actor.kind: service_account}", &["n-skey"]),
                ("match: {actor.kind: unknown}", &["n-other"]),
                (
                    "match: {actor.kind: {exists: false}}",
                    &["n-null", "n-absent"],
                ),
                ("match: {actor.type: session}", &["n-sess"]),
                ("match: {actor.type: api_key}", &["n-ukey", "n-skey"]),
                ("match: {actor.id: user-Rt5Yp8Wq}", &["n-sess"]),
                ("match: {actor.id: user-Kx9}", &["n-ukey"]),
                ("match: {actor.id: svc_acct_1}", &["n-skey"]),
                (
                    "match: {actor.email: {exists: true}}",
                    &["n-sess", "n-ukey"],
                ),
                (
                    "match: {actor.email: {regex: \"^dana\\\\.lee@example\\\\.com$\"}}",
                    &["n-sess"],
                ),
                (
                    "match: {actor.email: {regex: \"^ops@example\"}}",
                    &["n-ukey"],
                ),
                ("match: {actor.api_key_id: key_user_1}", &["n-ukey"]),
                (
                    "match: {actor.api_key_id: {exists: true}}",
                    &["n-ukey", "n-skey"],
                ),
                ("match: {actor.ip: {exists: true}}", &["n-sess"]),
                ("match: {actor.ip: \"203.0.113.24\"}", &["n-sess"]),
                (
                    "match: {actor.user_agent: {contains: macintosh}}",
                    &["n-sess"],
                ),
                (
                    "match: {actor.country: US, actor.region: Oregon, actor.city: Portland, actor.asn: 7922}",
                    &["n-sess"],
                ),
                (
                    "match: {actor.session.ip_address: \"203.0.113.24\"}",
                    &["n-sess"],
                ),
                (
                    "match: {actor.session.ip_address_details.latitude: {gt: 45}}",
                    &["n-sess"],
                ),
                ("match: {actor.api_key.id: key_svc_1}", &["n-skey"]),
                (
                    "match: {actor.api_key.service_account.id: svc_acct_1}",
                    &["n-skey"],
                ),
                (
                    "match: {actor.email: {ne: nobody@example.com}}",
                    &["n-sess", "n-ukey"],
                ),
                ("match: {actor.ip: {not_cidr: \"10.0.0.0/8\"}}", &["n-sess"]),
                (&time, &["n-sess"]),
                ("match: {id: n-ukey, type: api_key.created}", &["n-ukey"]),
            ],
        );
    }

    #[test]
    fn unknown_types_and_fields_never_break_anything() {
        let events = vec![
            ev("u-tenant", "tenant.sso.connection_rotated", T0)
                .set("actor", Value::Null)
                .set("source", json!("api"))
                .set("surprise", json!({"deep": [1, {"x": null}], "n": 1.5}))
                .details(json!({"nested": {"list": [1, "two", {"three": 3}]}, "flag": true}))
                .json(),
            ev("u-odd-details", "role.created", T0 + 1)
                .session("admin@example.com", "203.0.113.7")
                .details(json!("not an object"))
                .json(),
            ev("u-null-details", "role.deleted", T0 + 1)
                .session("admin@example.com", "203.0.113.7")
                .details(Value::Null)
                .json(),
            ev("u-new-actor", "workspace.created", T0 + 2)
                .actor(json!({"type": "robot", "robot": {"id": "rb_1"}, "extra": [1, 2]}))
                .details(json!({"id": "ws_1"}))
                .json(),
            key_created("u-normal", T0 + 3, "dev@example.com", &["api.all"]),
        ];
        check_cases(
            None,
            &events,
            &[
                (
                    "match: {id: {exists: true}}",
                    &[
                        "u-tenant",
                        "u-odd-details",
                        "u-null-details",
                        "u-new-actor",
                        "u-normal",
                    ],
                ),
                ("match: {type: {glob: \"tenant.*\"}}", &["u-tenant"]),
                ("match: {details.nested.list: two}", &["u-tenant"]),
                ("match: {details.nested.list: {gte: 1}}", &["u-tenant"]),
                ("match: {surprise.deep: 1}", &["u-tenant"]),
                ("match: {source: api}", &["u-tenant"]),
                (
                    "match: {details.id: ws_1, actor.kind: unknown}",
                    &["u-new-actor"],
                ),
                (
                    "match: {details.anything: {exists: false}, type: role.created}",
                    &["u-odd-details"],
                ),
                ("match: {type: api_key.created}", &["u-normal"]),
                (
                    "condition: 'type_of(event.details) == \"map\" && event.details.len() == 0'",
                    &["u-odd-details", "u-null-details"],
                ),
                (
                    "condition: 'event.type.starts_with(\"tenant.\") && event.actor == ()'",
                    &["u-tenant"],
                ),
            ],
        );
    }
}

/// Runs `rules` (one file) over `events` (JSON Lines) with `--format json`.
fn replay(rules: &str, events: &[Value]) -> (Run, Value) {
    let sb = Sandbox::new();
    let r = sb.write("rules.yaml", rules);
    let e = sb.events("events.jsonl", events);
    let out = run(sb
        .rulecheck()
        .arg("-r")
        .arg(&r)
        .args(["--format", "json"])
        .arg(&e));
    out.status(0);
    let doc = out.doc();
    (out, doc)
}

/// The alerts of one rule in a `--format json` document, in output order.
fn alerts_of<'d>(doc: &'d Value, rule_id: &str) -> Vec<&'d Value> {
    doc["alerts"]
        .as_array()
        .expect("`alerts` is an array")
        .iter()
        .filter(|a| a["rule_id"] == rule_id)
        .collect()
}

/// Group 3: thresholds, suppression, ordering and duplicates.
mod threshold_and_suppress {
    use super::*;

    const BURST: &str = "id: login.burst
title: Burst of failed logins
severity: medium
match: {type: login.failed}
threshold: {count: 3, window: 10m, group_by: [actor.email]}
";

    #[test]
    fn exactly_count_events_within_the_window_fire() {
        let events = vec![
            login_failed("a1", T0, "alice@example.com", "198.51.100.1"),
            login_failed("a2", T0 + 300, "alice@example.com", "198.51.100.1"),
            login_failed("a3", T0 + 600, "alice@example.com", "198.51.100.1"),
            login_failed("b1", T0, "bob@example.com", "198.51.100.2"),
            login_failed("b2", T0 + 300, "bob@example.com", "198.51.100.2"),
            login_failed("b3", T0 + 601, "bob@example.com", "198.51.100.2"),
        ];
        let (out, doc) = replay(BURST, &events);
        let alerts = alerts_of(&doc, "login.burst");
        assert_eq!(alerts.len(), 1, "only alice's burst fits in 10m\n{out}");
        assert_eq!(alerts[0]["event_id"], "a3");
        assert_eq!(sorted_ids(&alerts[0]["event_ids"]), ["a1", "a2", "a3"]);
        assert_eq!(alerts[0]["effective_at"], T0 + 600);
        assert_eq!(alerts[0]["severity"], "medium");
        assert_eq!(alerts[0]["title"], "Burst of failed logins");
        assert_eq!(rule_stats(&doc, "login.burst"), (6, 1, 0, 0));
    }

    #[test]
    fn group_by_separates_groups_and_missing_values_form_their_own() {
        let anonymous = |id: &str, at: i64| {
            ev(id, "login.failed", at)
                .set("actor", Value::Null)
                .details(json!({"error_code": "invalid_credentials"}))
                .json()
        };
        let events = vec![
            login_failed("c1", T0, "carol@example.com", "198.51.100.3"),
            login_failed("d1", T0 + 10, "dave@example.com", "198.51.100.4"),
            login_failed("c2", T0 + 20, "carol@example.com", "198.51.100.3"),
            anonymous("x1", T0 + 30),
            anonymous("x2", T0 + 40),
            login_failed("d2", T0 + 50, "dave@example.com", "198.51.100.4"),
            anonymous("x3", T0 + 60),
        ];
        let (out, doc) = replay(BURST, &events);
        let alerts = alerts_of(&doc, "login.burst");
        assert_eq!(
            alerts.len(),
            1,
            "carol (2) and dave (2) stay apart; the three events without an email fire\n{out}"
        );
        assert_eq!(alerts[0]["event_id"], "x3");
        assert_eq!(sorted_ids(&alerts[0]["event_ids"]), ["x1", "x2", "x3"]);
    }

    #[test]
    fn the_group_restarts_after_firing() {
        let events: Vec<Value> = (0..7)
            .map(|i| {
                login_failed(
                    &format!("r{i}"),
                    T0 + 10 * i,
                    "erin@example.com",
                    "198.51.100.5",
                )
            })
            .collect();
        let (out, doc) = replay(BURST, &events);
        let alerts = alerts_of(&doc, "login.burst");
        assert_eq!(
            alerts.len(),
            2,
            "7 events in bursts of 3: two alerts\n{out}"
        );
        assert_eq!(alerts[0]["event_id"], "r2");
        assert_eq!(sorted_ids(&alerts[0]["event_ids"]), ["r0", "r1", "r2"]);
        assert_eq!(alerts[1]["event_id"], "r5");
        assert_eq!(sorted_ids(&alerts[1]["event_ids"]), ["r3", "r4", "r5"]);
        assert_eq!(rule_stats(&doc, "login.burst"), (7, 2, 0, 0));
    }

    #[test]
    fn distinct_counts_distinct_values() {
        let rules = "id: many.ips
title: One user from many IPs
severity: high
match: {type: login.succeeded}
threshold: {count: 3, window: 30m, group_by: actor.email, distinct: actor.ip}
";
        let login = |id: &str, at: i64, email: &str, ip: &str| {
            ev(id, "login.succeeded", at).session(email, ip).json()
        };
        let events = vec![
            login("f1", T0, "frank@example.com", "198.51.100.10"),
            login("f2", T0 + 60, "frank@example.com", "198.51.100.10"),
            login("f3", T0 + 120, "frank@example.com", "203.0.113.20"),
            login("g1", T0 + 130, "gina@example.com", "198.51.100.10"),
            login("g2", T0 + 140, "gina@example.com", "198.51.100.10"),
            login("g3", T0 + 150, "gina@example.com", "198.51.100.10"),
            login("f4", T0 + 180, "frank@example.com", "198.51.100.10"),
            login("g4", T0 + 190, "gina@example.com", "203.0.113.21"),
            login("f5", T0 + 240, "frank@example.com", "192.0.2.30"),
        ];
        let (out, doc) = replay(rules, &events);
        let alerts = alerts_of(&doc, "many.ips");
        assert_eq!(alerts.len(), 1, "frank used 3 IPs, gina 2\n{out}");
        assert_eq!(alerts[0]["event_id"], "f5");
        let ids = sorted_ids(&alerts[0]["event_ids"]);
        for must in ["f3", "f5"] {
            assert!(
                ids.contains(&must.to_owned()),
                "{must} contributed: {ids:?}"
            );
        }
        assert!(
            ids.iter().any(|i| ["f1", "f2", "f4"].contains(&i.as_str())),
            "an event from the first IP contributed: {ids:?}"
        );
        assert!(
            ids.iter().all(|i| i.starts_with('f')),
            "only frank's events: {ids:?}"
        );
    }

    const QUIET: &str = "id: key.created
title: API key created
severity: low
match: {type: api_key.created}
suppress: {window: 1h, key: [actor.email]}
";

    #[test]
    fn suppress_window_boundary_and_count() {
        let a = "alice@example.com";
        let events = vec![
            key_created("k1", T0, a, &["api.all"]),
            key_created("k2", T0 + 3599, a, &["api.all"]),
            key_created("k3", T0 + 3600, a, &["api.all"]),
            key_created("k4", T0 + 3610, a, &["api.all"]),
            key_created("k5", T0 + 3620, a, &["api.all"]),
            key_created("k6", T0 + 7200, a, &["api.all"]),
        ];
        let (out, doc) = replay(QUIET, &events);
        let alerts = alerts_of(&doc, "key.created");
        let got: Vec<(String, u64)> = alerts
            .iter()
            .map(|a| (text(&a["event_id"]), a["suppressed"].as_u64().unwrap()))
            .collect();
        assert_eq!(
            got,
            [("k1".into(), 0), ("k3".into(), 1), ("k6".into(), 2)],
            "window-1s is quiet, exactly window later goes out with the count\n{out}"
        );
        assert_eq!(rule_stats(&doc, "key.created"), (6, 3, 3, 0));
    }

    #[test]
    fn suppress_key_separates_and_no_key_is_one_group() {
        let rules = format!(
            "{QUIET}---\nid: key.created.any\ntitle: Any API key created\nseverity: low\nmatch: {{type: api_key.created}}\nsuppress: {{window: 1h}}\n"
        );
        let events = vec![
            key_created("k1", T0, "alice@example.com", &["api.all"]),
            key_created("k2", T0 + 5, "bob@example.com", &["api.all"]),
            key_created("k3", T0 + 10, "alice@example.com", &["api.all"]),
        ];
        let (out, doc) = replay(&rules, &events);
        let by_key: Vec<String> = alerts_of(&doc, "key.created")
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        assert_eq!(
            by_key,
            ["k1", "k2"],
            "alice and bob are separate keys\n{out}"
        );
        let whole: Vec<String> = alerts_of(&doc, "key.created.any")
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        assert_eq!(whole, ["k1"], "without key the rule is one group\n{out}");
        assert_eq!(rule_stats(&doc, "key.created.any"), (3, 1, 2, 0));
    }

    #[test]
    fn threshold_raises_then_suppress_decides() {
        let rules = "id: burst.quiet
title: Failed login burst
severity: high
match: {type: login.failed}
threshold: {count: 2, window: 10m}
suppress: {window: 1h}
";
        let h = "henry@example.com";
        let events = vec![
            login_failed("t1", T0, h, "198.51.100.7"),
            login_failed("t2", T0 + 60, h, "198.51.100.7"),
            login_failed("t3", T0 + 120, h, "198.51.100.7"),
            login_failed("t4", T0 + 180, h, "198.51.100.7"),
            login_failed("t5", T0 + 240, h, "198.51.100.7"),
            login_failed("t6", T0 + 3700, h, "198.51.100.7"),
            login_failed("t7", T0 + 3710, h, "198.51.100.7"),
        ];
        let (out, doc) = replay(rules, &events);
        let alerts = alerts_of(&doc, "burst.quiet");
        assert_eq!(alerts.len(), 2, "{out}");
        assert_eq!(alerts[0]["event_id"], "t2");
        assert_eq!(alerts[0]["suppressed"], 0);
        assert_eq!(
            alerts[1]["event_id"], "t7",
            "t5 alone must not fire: the group restarted after the suppressed alert\n{out}"
        );
        assert_eq!(alerts[1]["suppressed"], 1);
        assert_eq!(sorted_ids(&alerts[1]["event_ids"]), ["t6", "t7"]);
        assert_eq!(rule_stats(&doc, "burst.quiet"), (7, 2, 1, 0));
    }

    fn mixed_history() -> Vec<Value> {
        let mut events = Vec::new();
        for i in 0..6 {
            events.push(login_failed(
                &format!("audit_log-lf{i:02}"),
                T0 + 100 * i,
                "ivan@example.com",
                "198.51.100.8",
            ));
            events.push(key_created(
                &format!("audit_log-kc{i:02}"),
                T0 + 1500 * i,
                if i % 2 == 0 {
                    "alice@example.com"
                } else {
                    "bob@example.com"
                },
                &["api.all"],
            ));
        }
        events
    }

    #[test]
    fn input_order_does_not_matter() {
        let rules = format!("{BURST}---\n{QUIET}");
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &rules);
        let mut events = mixed_history();
        events.sort_by_key(|e| e["effective_at"].as_i64());
        let sorted = sb.events("sorted.jsonl", &events);
        events.reverse();
        let reversed = sb.events("reversed.jsonl", &events);
        let n = events.len();
        let shuffled: Vec<Value> = (0..n).map(|i| events[(i * 5 + 3) % n].clone()).collect();
        let shuffled = sb.events("shuffled.jsonl", &shuffled);
        let a = run(sb.rulecheck().arg("-r").arg(&r).arg(&sorted));
        a.status(0);
        assert!(a.alerts().len() >= 4, "the history raises alerts\n{a}");
        for other in [&reversed, &shuffled] {
            let b = run(sb.rulecheck().arg("-r").arg(&r).arg(other));
            b.status(0);
            assert_eq!(a.stdout, b.stdout, "same alerts whatever the input order");
        }
    }

    #[test]
    fn ties_in_time_are_ordered_by_id() {
        let rules = format!(
            "{QUIET}---\nid: pair\ntitle: Two keys\nseverity: low\nmatch: {{type: api_key.created}}\nthreshold: {{count: 2, window: 1m}}\n"
        );
        let events = vec![
            key_created("audit_log-B", T0, "alice@example.com", &["api.all"]),
            key_created("audit_log-A", T0, "alice@example.com", &["api.all"]),
        ];
        let (out, doc) = replay(&rules, &events);
        let quiet = alerts_of(&doc, "key.created");
        assert_eq!(quiet.len(), 1, "{out}");
        assert_eq!(
            quiet[0]["event_id"], "audit_log-A",
            "A sorts first and goes out"
        );
        let pair = alerts_of(&doc, "pair");
        assert_eq!(pair.len(), 1, "{out}");
        assert_eq!(
            pair[0]["event_id"], "audit_log-B",
            "B is evaluated last and fires"
        );
    }

    #[test]
    fn a_duplicate_id_is_evaluated_once_first_read_wins() {
        let sb = Sandbox::new();
        let rules = sb.write(
            "rules.yaml",
            &format!(
                "{QUIET}---\nid: two.logins\ntitle: Two failed logins\nseverity: low\nmatch: {{type: login.failed}}\nthreshold: {{count: 2, window: 1h}}\n"
            ),
        );
        let dup_login = login_failed("audit_log-L1", T0, "alice@example.com", "198.51.100.1");
        let as_key = key_created("audit_log-X", T0 + 10, "alice@example.com", &["api.all"]);
        let as_login = login_failed("audit_log-X", T0 + 10, "alice@example.com", "198.51.100.1");
        let first = sb.events("first.jsonl", &[as_login.clone(), dup_login.clone()]);
        let second = sb.events("second.jsonl", &[as_key.clone(), dup_login.clone()]);

        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&rules)
            .args(["--format", "json"])
            .arg(&first)
            .arg(&second));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["events"], 2, "two distinct ids\n{out}");
        assert!(
            alerts_of(&doc, "key.created").is_empty(),
            "X was first read as a login\n{out}"
        );
        assert_eq!(alerts_of(&doc, "two.logins").len(), 1, "{out}");

        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&rules)
            .args(["--format", "json"])
            .arg(&second)
            .arg(&first));
        out.status(0);
        let doc = out.doc();
        assert_eq!(
            alerts_of(&doc, "key.created").len(),
            1,
            "X was first read as a key\n{out}"
        );
        assert!(
            alerts_of(&doc, "two.logins").is_empty(),
            "L1 twice counts once\n{out}"
        );
    }
}

/// Group 4: Rhai conditions and scripts.
mod rhai {
    use super::*;

    fn at(id: &str, when: &str) -> Value {
        ev(id, "api_key.created", ts(when))
            .session("night.owl@example.com", "203.0.113.7")
            .project("proj_prod", "Production")
            .details(json!({"id": format!("key_{id}"), "data": {"scopes": ["api.all"]}}))
            .json()
    }

    #[test]
    fn conditions_see_the_event_map() {
        check_cases(
            None,
            &corpus(),
            &[
                ("condition: 'event.actor.country == \"RU\"'", &["e-eve"]),
                (
                    "condition: 'event.details.data.scopes.contains(\"api.all\")'\nmatch: {type: api_key.created}",
                    &["e-eve"],
                ),
                (
                    "condition: 'event.actor.kind == \"service_account\" && event.actor.api_key_id == \"key_ci_9\"'",
                    &["e-svc"],
                ),
                (
                    "condition: 'event.actor.email == \"bob@example.com\"'",
                    &["e-bob"],
                ),
                (
                    "match: {type: api_key.created}\ncondition: 'event[\"api_key.created\"].id == \"key_2\"'",
                    &["e-eve"],
                ),
                (
                    "condition: 'event.time == \"2026-03-10T15:00:00Z\" && event.effective_at == 1773154800'",
                    &["e-bob"],
                ),
                ("condition: 'event.project == ()'", &["e-svc", "e-carol"]),
                (
                    "condition: 'event.details.nothing == ()'",
                    &["e-bob", "e-eve", "e-svc", "e-carol"],
                ),
                (
                    "match: {actor.type: session}\ncondition: 'event.actor.session.ip_address_details.asn == \"16509\"'",
                    &["e-bob"],
                ),
                ("condition: 'false'", &[]),
            ],
        );
    }

    #[test]
    fn match_runs_first_and_scripts_only_see_what_passes() {
        check_cases(
            None,
            &corpus(),
            &[(
                "match: {actor.email: {exists: true}}\ncondition: 'event.actor.email.ends_with(\"@example.com\")'",
                &["e-bob", "e-carol"],
            )],
        );
    }

    #[test]
    fn script_file_is_relative_to_the_rule_file() {
        let sb = Sandbox::new();
        sb.write(
            "rules/keys/scripts/broad_key.rhai",
            "// A key that can do everything, created outside the office.\nlet scopes = event.details.data.scopes;\nlet broad = scopes.contains(\"api.all\");\nlet office = cidr_match(event.actor.ip, \"203.0.113.0/24\");\nbroad && !office\n",
        );
        let r = sb.write(
            "rules/keys/broad.yaml",
            &rule(
                "broad.outside",
                "match: {type: api_key.created}\nscript: scripts/broad_key.rhai",
            ),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        assert_eq!(out.fired_events(), ["e-eve"], "{out}");
    }

    #[test]
    fn business_hours_with_a_zone_honours_daylight_saving() {
        let events = vec![
            at("fri-0930-edt", "2026-10-30T13:30:00Z"),
            at("mon-0830-est", "2026-11-02T13:30:00Z"),
            at("mon-0930-est", "2026-11-02T14:30:00Z"),
            at("fri-0900-start", "2026-10-30T13:00:00Z"),
            at("fri-0859-before", "2026-10-30T12:59:59Z"),
            at("fri-1759-inside", "2026-10-30T21:59:59Z"),
            at("fri-1800-end", "2026-10-30T22:00:00Z"),
            at("sat-1100", "2026-10-31T15:00:00Z"),
            at("sun-1100-dst-day", "2026-11-01T16:00:00Z"),
        ];
        check_cases(
            None,
            &events,
            &[
                (
                    "condition: 'business_hours(event.effective_at, \"America/New_York\", \"Mon-Fri 09:00-18:00\")'",
                    &[
                        "fri-0930-edt",
                        "mon-0930-est",
                        "fri-0900-start",
                        "fri-1759-inside",
                    ],
                ),
                (
                    "condition: '!business_hours(event.effective_at, \"America/New_York\", \"Mon-Fri 09:00-18:00\")'",
                    &[
                        "mon-0830-est",
                        "fri-0859-before",
                        "fri-1800-end",
                        "sat-1100",
                        "sun-1100-dst-day",
                    ],
                ),
                (
                    "condition: 'business_hours(event.effective_at, \"America/New_York\", \"Sat-Sun 10:00-14:00\")'",
                    &["sat-1100", "sun-1100-dst-day"],
                ),
            ],
        );
    }

    #[test]
    fn business_hours_days_lists_and_spans_past_midnight() {
        let events = vec![
            at("mon-2300", "2026-03-09T23:00:00Z"),
            at("tue-0559", "2026-03-10T05:59:59Z"),
            at("tue-0600", "2026-03-10T06:00:00Z"),
            at("tue-2300", "2026-03-10T23:00:00Z"),
            at("wed-2200", "2026-03-11T22:00:00Z"),
        ];
        check_cases(
            None,
            &events,
            &[(
                "condition: 'business_hours(event.effective_at, \"UTC\", \"Mon,Wed,Fri 22:00-06:00\")'",
                &["mon-2300", "tue-0559", "wed-2200"],
            )],
        );
    }

    #[test]
    fn business_hours_of_the_config_with_holidays() {
        let config = "business_hours: {timezone: America/New_York, days: Mon-Fri, hours: \"09:00-18:00\", holidays: [2026-12-25]}\n";
        let events = vec![
            at("thu-1000", "2026-12-24T15:00:00Z"),
            at("fri-holiday", "2026-12-25T15:00:00Z"),
            at("sat-1000", "2026-12-26T15:00:00Z"),
            at("mon-1830", "2026-12-28T23:30:00Z"),
            at("mon-1759", "2026-12-28T22:59:59Z"),
        ];
        check_cases(
            Some(config),
            &events,
            &[
                (
                    "condition: '!business_hours(event)'",
                    &["fri-holiday", "sat-1000", "mon-1830"],
                ),
                (
                    "condition: 'business_hours(event.effective_at)'",
                    &["thu-1000", "mon-1759"],
                ),
            ],
        );
    }

    #[test]
    fn local_time_gives_calendar_fields_in_the_zone() {
        let events = vec![
            at("mon-0830-est", "2026-11-02T13:30:05Z"),
            at("sat-utc-sun-tokyo", "2026-10-31T20:00:00Z"),
        ];
        check_cases(
            None,
            &events,
            &[
                (
                    "condition: 'local_time(event.effective_at, \"America/New_York\").year == 2026 && local_time(event.effective_at, \"America/New_York\").month == 11 && local_time(event.effective_at, \"America/New_York\").day == 2 && local_time(event.effective_at, \"America/New_York\").hour == 8 && local_time(event.effective_at, \"America/New_York\").minute == 30 && local_time(event.effective_at, \"America/New_York\").second == 5 && local_time(event.effective_at, \"America/New_York\").weekday == 1'",
                    &["mon-0830-est"],
                ),
                (
                    "condition: 'local_time(event.effective_at, \"Asia/Tokyo\").weekday == 7'",
                    &["sat-utc-sun-tokyo"],
                ),
                (
                    "condition: 'local_time(event.effective_at, \"UTC\").weekday == 6'",
                    &["sat-utc-sun-tokyo"],
                ),
            ],
        );
    }

    #[test]
    fn matching_functions_share_the_operator_semantics() {
        check_cases(
            Some(LISTS_CONFIG),
            &corpus(),
            &[
                (
                    "match: {actor.ip: {exists: true}}\ncondition: 'cidr_match(event.actor.ip, \"2001:db8::/32\")'",
                    &["e-carol"],
                ),
                (
                    "match: {actor.ip: {exists: true}}\ncondition: 'cidr_match(event.actor.ip, \"198.51.100.23\")'",
                    &["e-eve"],
                ),
                (
                    "match: {actor.email: {exists: true}}\ncondition: 'glob_match(event.actor.email, \"*@EXAMPLE.com\")'",
                    &["e-bob", "e-carol"],
                ),
                (
                    "condition: 'glob_match(event.type, \"*.created\")'",
                    &["e-bob", "e-eve"],
                ),
                (
                    "match: {actor.email: {exists: true}}\ncondition: 'regex_match(event.actor.email, \"^eve@\")'",
                    &["e-eve"],
                ),
                (
                    "match: {actor.email: {exists: true}}\ncondition: 'regex_match(event.actor.email, \"EVE\")'",
                    &[],
                ),
                (
                    "condition: 'regex_match(event.type, \"deleted\")'",
                    &["e-svc"],
                ),
                (
                    "match: {actor.email: {exists: true}}\ncondition: '!in_list(\"corp_emails\", event.actor.email)'",
                    &["e-eve"],
                ),
                (
                    "match: {actor.ip: {exists: true}}\ncondition: 'in_list(\"office_networks\", event.actor.ip)'",
                    &["e-bob", "e-carol"],
                ),
                (
                    "match: {actor.country: {exists: true}}\ncondition: 'in_list(\"watched_countries\", event.actor.country)'",
                    &["e-eve"],
                ),
            ],
        );
    }

    #[test]
    fn an_erroring_script_is_counted_and_stops_nothing() {
        let sb = Sandbox::new();
        let rules = docs(&[
            rule(
                "fragile",
                "condition: 'event.actor.email.ends_with(\"@evil.io\")'",
            ),
            rule("deleted", "match: {type: api_key.deleted}"),
        ]);
        let r = sb.write("rules.yaml", &rules);
        let mut events = corpus();
        events.push(
            ev("e-late", "api_key.created", T0 + 900)
                .session("mallory@evil.io", "198.51.100.99")
                .details(json!({"id": "key_9", "data": {"scopes": ["api.all"]}}))
                .json(),
        );
        let e = sb.events("events.jsonl", &events);
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        let fired: Vec<String> = alerts_of(&doc, "fragile")
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        assert_eq!(fired, ["e-eve", "e-late"], "later events still run\n{out}");
        assert_eq!(
            alerts_of(&doc, "deleted").len(),
            1,
            "other rules still run on the failing event\n{out}"
        );
        let (_, _, _, errors) = rule_stats(&doc, "fragile");
        assert_eq!(errors, 1, "the service account has no email\n{out}");
        assert!(
            out.stderr.contains("fragile") && out.stderr.contains("e-svc"),
            "the error names the rule and the event\n{out}"
        );
    }

    #[test]
    fn operation_limit_stops_an_endless_loop() {
        let sb = Sandbox::new();
        sb.write(
            "rules/spin.rhai",
            "let n = 0;\nwhile true {\n    n += 1;\n}\nn > 0\n",
        );
        let r = sb.write(
            "rules/spin.yaml",
            &docs(&[
                rule("spin", "script: spin.rhai"),
                rule("all", "match: {id: {exists: true}}"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let started = std::time::Instant::now();
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        assert!(started.elapsed().as_secs() < 30, "the loop was cut short");
        let doc = out.doc();
        assert!(alerts_of(&doc, "spin").is_empty(), "{out}");
        assert_eq!(rule_stats(&doc, "spin").3, 4, "one error per event\n{out}");
        assert_eq!(alerts_of(&doc, "all").len(), 4, "{out}");
    }

    #[test]
    fn a_non_boolean_result_is_an_error() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule("text", "condition: 'event.type'"),
                rule("number", "condition: '1'"),
                rule("unit", "condition: 'event.details.missing'"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert!(doc["alerts"].as_array().unwrap().is_empty(), "{out}");
        for id in ["text", "number", "unit"] {
            assert_eq!(
                rule_stats(&doc, id).3,
                4,
                "rule {id}: one error per event\n{out}"
            );
        }
    }

    #[test]
    fn scripts_are_sandboxed() {
        let sb = Sandbox::new();
        sb.write(
            "rules/grow.rhai",
            "let s = \"x\";\nloop {\n    s += s;\n}\ntrue\n",
        );
        sb.write("rules/import.rhai", "import \"std\" as m;\ntrue\n");
        sb.write("rules/deep.rhai", "fn down(n) { down(n + 1) }\ndown(0)\n");
        let e = sb.events("events.jsonl", &corpus());
        for (id, body) in [
            ("grow", "script: grow.rhai"),
            ("import", "script: import.rhai"),
            ("deep", "script: deep.rhai"),
        ] {
            let r = sb.write(&format!("rules/{id}.yaml"), &rule(id, body));
            let started = std::time::Instant::now();
            let out = run(sb
                .rulecheck()
                .arg("-r")
                .arg(&r)
                .args(["--format", "json"])
                .arg(&e));
            assert!(
                started.elapsed().as_secs() < 30,
                "{id}: limits stop it quickly"
            );
            match out.code {
                2 => {
                    out.load_failed();
                }
                0 => {
                    let doc = out.doc();
                    assert!(doc["alerts"].as_array().unwrap().is_empty(), "{id}\n{out}");
                    assert_eq!(
                        rule_stats(&doc, id).3,
                        4,
                        "{id}: one error per event\n{out}"
                    );
                }
                _ => panic!("{id}: unexpected exit status\n{out}"),
            }
        }
    }

    #[test]
    fn the_event_is_read_only() {
        let sb = Sandbox::new();
        sb.write(
            "rules/tamper.rhai",
            "event.actor.email = \"x@evil.io\";\nevent.id = \"forged\";\ntrue\n",
        );
        let r = sb.write(
            "rules/rules.yaml",
            &docs(&[
                rule("tamper", "script: tamper.rhai"),
                rule(
                    "observe",
                    "match: {actor.email: {exists: true}}\ncondition: 'event.actor.email != \"x@evil.io\" && event.id != \"forged\"'",
                ),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert!(alerts_of(&doc, "tamper").is_empty(), "{out}");
        assert_eq!(
            rule_stats(&doc, "tamper").3,
            4,
            "writing to event is an error\n{out}"
        );
        let mut seen: Vec<String> = alerts_of(&doc, "observe")
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        seen.sort();
        assert_eq!(seen, ["e-bob", "e-carol", "e-eve"], "{out}");
    }

    #[test]
    fn eval_is_refused() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &rule("sneaky", "condition: 'eval(\"true\")'"));
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        match out.code {
            2 => {
                out.load_failed();
                assert!(out.stderr.contains("eval"), "{out}");
            }
            0 => {
                let doc = out.doc();
                assert!(doc["alerts"].as_array().unwrap().is_empty(), "{out}");
                assert_eq!(rule_stats(&doc, "sneaky").3, 4, "{out}");
            }
            _ => panic!("unexpected exit status\n{out}"),
        }
    }
}

/// A rule that fires on every event.
fn catch_all() -> String {
    rule("all", "match: {id: {exists: true}}")
}

/// Group 5: input forms, bad lines, time ranges and rule selection.
mod inputs {
    use super::*;

    fn corpus_ids() -> Vec<String> {
        let mut ids: Vec<String> = corpus().iter().map(|e| text(&e["id"])).collect();
        ids.sort();
        ids
    }

    fn page(events: &[Value], has_more: bool) -> Value {
        json!({
            "object": "list",
            "data": events,
            "first_id": events.first().map(|e| e["id"].clone()),
            "last_id": events.last().map(|e| e["id"].clone()),
            "has_more": has_more
        })
    }

    /// Checks that `file` holds the four corpus events and nothing bad.
    fn reads_corpus(sb: &Sandbox, rules: &std::path::Path, file: &std::path::Path) {
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(rules)
            .args(["--format", "json"])
            .arg(file));
        out.status(0);
        let doc = out.doc();
        let mut fired: Vec<String> = doc["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        fired.sort();
        assert_eq!(fired, corpus_ids(), "{}\n{out}", file.display());
        assert_eq!(doc["events"], 4, "{}\n{out}", file.display());
        assert_eq!(doc["bad_lines"], 0, "{}\n{out}", file.display());
    }

    #[test]
    fn json_lines_arrays_and_saved_list_pages() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let events = corpus();
        let mut newest_first = events.clone();
        newest_first.reverse();
        let pages = [
            page(&newest_first[..2], true),
            page(&newest_first[2..], false),
        ];
        let files = [
            sb.events("events.jsonl", &events),
            sb.write(
                "pretty_array.json",
                &serde_json::to_string_pretty(&events).unwrap(),
            ),
            sb.write(
                "one_line_array.json",
                &Value::from(events.clone()).to_string(),
            ),
            sb.write("pages.jsonl", &jsonl(&pages)),
            sb.write(
                "pages_pretty.json",
                &format!(
                    "{}\n{}\n",
                    serde_json::to_string_pretty(&pages[0]).unwrap(),
                    serde_json::to_string_pretty(&pages[1]).unwrap()
                ),
            ),
        ];
        for file in &files {
            reads_corpus(&sb, &r, file);
        }
    }

    #[test]
    fn saved_pages_fixture_with_real_shapes() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule(
                    "broad.key",
                    "match: {type: api_key.created, details.data.scopes: api.all}",
                ),
                rule(
                    "robot.key",
                    "match: {actor.kind: service_account, actor.api_key_id: key_Nightly4Jq7Wm2Xe9R, actor.id: svc_acct_Bq7Lw3Xn9Vm2Kd5T}",
                ),
                catch_all(),
            ]),
        );
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/list_pages.json");
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&fixture));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["events"], 3, "{out}");
        let broad = alerts_of(&doc, "broad.key");
        assert_eq!(broad.len(), 1, "{out}");
        assert_eq!(broad[0]["event_id"], "audit_log-Pz2nF6kLq8Wd3Rt1Yv7Mb4Xc");
        assert_eq!(alerts_of(&doc, "robot.key").len(), 1, "{out}");
        let all: Vec<String> = alerts_of(&doc, "all")
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        assert_eq!(
            all,
            [
                "audit_log-C7C0QjFGRIaZskr6ZCBkC6kM",
                "audit_log-Kq7dR2mXw9LpT4sV1bN8cZ3a",
                "audit_log-Pz2nF6kLq8Wd3Rt1Yv7Mb4Xc"
            ],
            "pages come newest first; alerts follow event time\n{out}"
        );
    }

    #[test]
    fn gzip_files_are_decompressed() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let events = corpus();
        let plain = sb.events("events.jsonl", &events);
        reads_corpus(&sb, &r, &gzip(&plain));
        let pretty = sb.write(
            "page.json",
            &serde_json::to_string_pretty(&page(&events, false)).unwrap(),
        );
        reads_corpus(&sb, &r, &gzip(&pretty));
    }

    #[test]
    fn stdin_and_several_files() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let events = corpus();
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .arg("-")
            .write_stdin(jsonl(&events)));
        out.status(0);
        let mut fired = out.fired_events();
        fired.sort();
        assert_eq!(fired, corpus_ids(), "{out}");

        let a = sb.events("a.jsonl", &events[..1]);
        let b = sb.write(
            "b.json",
            &serde_json::to_string_pretty(&events[1..3].to_vec()).unwrap(),
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&a)
            .arg("-")
            .arg(&b)
            .write_stdin(jsonl(&events[3..])));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["events"], 4, "{out}");
        let mut fired: Vec<String> = doc["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| text(&a["event_id"]))
            .collect();
        fired.sort();
        assert_eq!(fired, corpus_ids(), "{out}");
    }

    fn with_bad_lines(sb: &Sandbox) -> std::path::PathBuf {
        let events = corpus();
        let lines = [
            events[0].to_string(),
            "{\"id\": \"audit_log-broken\", \"type\": ".to_owned(),
            events[1].to_string(),
            String::new(),
            "{\"object\":\"organization.audit_log\",\"id\":\"audit_log-no-type\"}".to_owned(),
            "not json at all".to_owned(),
            events[2].to_string(),
        ];
        sb.write("events.jsonl", &(lines.join("\n") + "\n"))
    }

    #[test]
    fn bad_lines_are_reported_with_file_and_line_and_skipped() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let e = with_bad_lines(&sb);
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["bad_lines"], 3, "{out}");
        assert_eq!(doc["events"], 3, "{out}");
        assert_eq!(doc["alerts"].as_array().unwrap().len(), 3, "{out}");
        for line in [2, 5, 6] {
            let prefix = format!("{}:{line}: ", e.display());
            assert!(
                out.stderr.lines().any(|l| l.starts_with(&prefix)),
                "line {line} is reported as `{prefix}…`\n{out}"
            );
        }
        for line in [1, 3, 4, 7] {
            let prefix = format!("{}:{line}: ", e.display());
            assert!(
                !out.stderr.lines().any(|l| l.starts_with(&prefix)),
                "line {line} is fine\n{out}"
            );
        }
    }

    #[test]
    fn an_input_without_one_audit_event_is_exit_2_whatever_strict_says() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        // A rule file passed as events by mistake.
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&r));
        out.status(2);
        assert!(out.stderr.contains("not one line of"), "{out}");
        let html = sb.write(
            "page.html",
            "<html>\n<body>502 Bad Gateway</body>\n</html>\n",
        );
        run(sb.rulecheck().arg("-r").arg(&r).arg(&html)).status(2);
        // One event among bad lines is an input of events.
        let e = with_bad_lines(&sb);
        run(sb.rulecheck().arg("-r").arg(&r).arg(&e)).status(0);
    }

    #[test]
    fn fail_on_error_exits_1_on_a_failed_script_or_summary() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule(
                    "broken_script",
                    "match: {id: {exists: true}}\ncondition: 'event.id.len() / 0 == 1'",
                ),
                rule("fine", "match: {id: {exists: true}}"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let failing = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .arg("--fail-on-error")
            .arg(&e));
        failing.status(1);
        assert!(failing.stderr.contains("--fail-on-error"), "{failing}");
        // A summary that fails is an evaluation error too.
        let r2 = sb.write(
            "rules2.yaml",
            &docs(&[rule(
                "broken_summary",
                "match: {id: {exists: true}}\nsummary: \"{{ id | int / 0 }}\"",
            )]),
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r2)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert_eq!(
            rule_stats(&doc, "broken_summary").3,
            corpus().len() as u64,
            "{out}"
        );
        run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r2)
            .arg("--fail-on-error")
            .arg(&e))
        .status(1);
        // Without errors, the flag changes nothing.
        let ok = sb.write(
            "ok.yaml",
            &docs(&[rule("fine", "match: {id: {exists: true}}")]),
        );
        run(sb
            .rulecheck()
            .arg("-r")
            .arg(&ok)
            .arg("--fail-on-error")
            .arg(&e))
        .status(0);
    }

    #[test]
    fn strict_makes_bad_lines_an_error() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let e = with_bad_lines(&sb);
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg("--strict").arg(&e));
        out.status(2);
        assert!(
            out.stderr.contains(&format!("{}:2: ", e.display())),
            "{out}"
        );
        let clean = sb.events("clean.jsonl", &corpus());
        run(sb.rulecheck().arg("-r").arg(&r).arg("--strict").arg(&clean)).status(0);
    }

    #[test]

    fn a_malformed_first_line_does_not_hide_the_rest() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let e = sb.write(
            "events.jsonl",
            &format!(
                "{{\"id\": \"audit_log-cut\", \"type\": \n{}",
                jsonl(&corpus())
            ),
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["bad_lines"], 1, "{out}");
        assert_eq!(doc["events"], 4, "{out}");
        assert!(
            out.stderr.contains(&format!("{}:1: ", e.display())),
            "{out}"
        );
    }

    #[test]
    fn since_and_until_select_a_time_range() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let e = sb.events("events.jsonl", &corpus());
        let fired = |args: &[&str]| -> Vec<String> {
            let out = run(sb.rulecheck().arg("-r").arg(&r).args(args).arg(&e));
            out.status(0);
            out.fired_events()
        };
        // corpus: e-bob T0 (15:00:00), e-eve +60, e-svc +120, e-carol +180.
        assert_eq!(
            fired(&["--since", "2026-03-10T15:01:00Z"]),
            ["e-eve", "e-svc", "e-carol"]
        );
        assert_eq!(
            fired(&["--since", &(T0 + 120).to_string()]),
            ["e-svc", "e-carol"]
        );
        assert_eq!(
            fired(&["--until", &(T0 + 90).to_string()]),
            ["e-bob", "e-eve"]
        );
        assert_eq!(
            fired(&[
                "--since",
                "2026-03-10T15:00:30Z",
                "--until",
                "2026-03-10T15:02:30Z"
            ]),
            ["e-eve", "e-svc"]
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--since", "last tuesday"])
            .arg(&e));
        out.status(2);
    }

    #[test]
    fn rule_selects_rules_and_unknown_ids_are_usage_errors() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule("created", "match: {type: api_key.created}"),
                rule("deleted", "match: {type: api_key.deleted}"),
                rule("logins", "match: {type: login.succeeded}"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let rules_fired = |args: &[&str]| -> Vec<String> {
            let out = run(sb.rulecheck().arg("-r").arg(&r).args(args).arg(&e));
            out.status(0);
            let mut ids: Vec<String> = out.fired().into_iter().map(|(r, _)| r).collect();
            ids.dedup();
            ids
        };
        assert_eq!(rules_fired(&["--rule", "deleted"]), ["deleted"]);
        assert_eq!(
            rules_fired(&["--rule", "logins", "--rule", "created"]),
            ["created", "logins"]
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--rule", "nope.such"])
            .arg(&e));
        out.status(2);
        assert!(out.stderr.contains("nope.such"), "{out}");
        assert!(out.stdout.trim().is_empty(), "{out}");
    }

    #[test]
    fn fail_on_alert_exits_1_only_when_an_alert_was_raised() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule("deleted", "match: {type: api_key.deleted}"),
                rule("never", "match: {type: scim.disabled}"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .arg("--fail-on-alert")
            .arg(&e));
        out.status(1);
        assert_eq!(
            out.fired_events(),
            ["e-svc"],
            "alerts are still printed\n{out}"
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--fail-on-alert", "--rule", "never"])
            .arg(&e));
        out.status(0);
        run(sb.rulecheck().arg("-r").arg(&r).arg(&e)).status(0);
    }

    #[test]
    fn bad_items_of_a_json_array_are_reported_at_their_line() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let mut events = corpus();
        events[1].as_object_mut().unwrap().remove("effective_at");
        let body = serde_json::to_string_pretty(&events).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        let id_line = lines
            .iter()
            .position(|l| l.contains("\"e-eve\""))
            .expect("e-eve is in the file");
        // The 1-based line of the `{` that opens e-eve's object.
        let line = lines[..id_line]
            .iter()
            .rposition(|l| *l == "  {")
            .expect("the object opens") as u64
            + 1;
        let e = sb.write("array.json", &body);
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["bad_lines"], 1, "{out}");
        assert_eq!(doc["events"], 3, "{out}");
        let reported: Vec<u64> = out
            .stderr
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{}:", e.display())))
            .filter_map(|rest| rest.split(':').next()?.parse().ok())
            .collect();
        assert!(
            reported == [line],
            "the bad object is reported at line {line}: {reported:?}\n{out}"
        );
    }

    #[test]
    fn bad_lines_of_several_files_name_their_file() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let events = corpus();
        let a = sb.write("a.jsonl", &format!("{}\n{{oops\n", events[0]));
        let b = sb.write("b.jsonl", &format!("{}\n{}\n[1, 2\n", events[1], events[2]));
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&a)
            .arg(&b));
        out.status(0);
        let doc = out.doc();
        assert_eq!(doc["bad_lines"], 2, "{out}");
        assert_eq!(doc["events"], 3, "{out}");
        for prefix in [
            format!("{}:2: ", a.display()),
            format!("{}:3: ", b.display()),
        ] {
            assert!(
                out.stderr.lines().any(|l| l.starts_with(&prefix)),
                "reported as `{prefix}…`\n{out}"
            );
        }
    }

    #[test]
    fn since_accepts_a_duration_back_from_now() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let e = sb.events(
            "events.jsonl",
            &[
                key_created("recent", now - 3_600, "dana@example.com", &["api.all"]),
                key_created("old", now - 30 * 86_400, "dana@example.com", &["api.all"]),
                key_created("week", now - 6 * 86_400, "dana@example.com", &["api.all"]),
            ],
        );
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--since", "7d"])
            .arg(&e));
        out.status(0);
        assert_eq!(out.fired_events(), ["week", "recent"], "{out}");
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--since", "36h"])
            .arg(&e));
        out.status(0);
        assert_eq!(out.fired_events(), ["recent"], "{out}");
    }

    #[test]
    fn a_missing_events_file_is_a_usage_error() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &catch_all());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg("no-such-events.jsonl"));
        out.status(2);
        assert!(out.stderr.contains("no-such-events.jsonl"), "{out}");
    }

    #[test]
    fn rules_default_to_the_rules_folder() {
        let sb = Sandbox::new();
        sb.write(
            "rules/keys.yaml",
            &rule("deleted", "match: {type: api_key.deleted}"),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg(&e));
        out.status(0);
        assert_eq!(
            out.fired(),
            [("deleted".to_owned(), "e-svc".to_owned())],
            "{out}"
        );
    }

    #[test]
    fn rule_folders_are_read_recursively() {
        let sb = Sandbox::new();
        sb.write(
            "rules/keys.yaml",
            &format!(
                "# API keys\n---\n{}---\n# nothing here\n---\n{}",
                rule("created", "match: {type: api_key.created}"),
                rule("deleted", "match: {type: api_key.deleted}")
            ),
        );
        sb.write(
            "rules/nested/deeper/logins.yml",
            &rule("logins", "match: {type: login.succeeded}"),
        );
        sb.write(
            "rules/disabled.yaml",
            &rule("off", "enabled: false\nmatch: {id: {exists: true}}"),
        );
        sb.write("rules/README.md", "not: [a rule");
        sb.write("rules/notes.txt", "id: not-a-rule");
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().args(["-r", "rules"]).arg(&e));
        out.status(0);
        let mut fired: Vec<(String, String)> = out.fired();
        fired.sort();
        assert_eq!(
            fired,
            [
                ("created".to_owned(), "e-bob".to_owned()),
                ("created".to_owned(), "e-eve".to_owned()),
                ("deleted".to_owned(), "e-svc".to_owned()),
                ("logins".to_owned(), "e-carol".to_owned()),
            ],
            "{out}"
        );
    }
}

/// Group 6: load errors, each with its position, exit status 2, nothing run.
mod load_errors {
    use super::*;
    use std::path::PathBuf;

    /// Runs the rules at `rules` (with an optional config) over the corpus.
    fn load(sb: &Sandbox, rules: &[&PathBuf], config: Option<&PathBuf>) -> Run {
        let e = sb.events("events.jsonl", &corpus());
        let mut cmd = sb.rulecheck();
        for r in rules {
            cmd.arg("-r").arg(r);
        }
        if let Some(c) = config {
            cmd.arg("-c").arg(c);
        }
        run(cmd.arg(&e))
    }

    #[test]
    fn unknown_key_is_an_error() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: typo\ntitle: Typo in a key\nseverty: high\nmatch: {type: api_key.created}\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 3, "severty");
    }

    #[test]
    fn bad_severity_is_an_error() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: loud\ntitle: Loud\nseverity: urgent\nmatch: {type: api_key.created}\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 3, "urgent");
    }

    #[test]
    fn bad_patterns_networks_lists_and_operators_are_all_listed() {
        let sb = Sandbox::new();
        let c = sb.write("config.yaml", LISTS_CONFIG);
        let r = sb.write(
            "rules.yaml",
            "id: bad.match
title: Bad match
severity: high
match:
  actor.email: {regex: \"a(b\"}
  actor.ip: {cidr: \"10.0.0.0/33\"}
  actor.user_agent: {glob: \"[abc\"}
  actor.country: {in_list: vip_countries}
  project.id: {not_cidr: not-a-network}
  type: {equals: api_key.created}
",
        );
        load(&sb, &[&r], Some(&c))
            .load_failed()
            .problem_at(&r, 5, "a(b")
            .problem_at(&r, 6, "10.0.0.0/33")
            .problem_at(&r, 7, "[abc")
            .problem_at(&r, 8, "vip_countries")
            .problem_at(&r, 9, "not-a-network")
            .problem_at(&r, 10, "equals");
    }

    #[test]
    fn in_list_without_a_config_is_an_error() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: corp\ntitle: Corp\nseverity: low\nmatch:\n  actor.email: {not_in_list: corp_emails}\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 5, "corp_emails");
    }

    #[test]
    fn rhai_syntax_error_in_a_condition_points_at_the_token() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: bad.condition\ntitle: Bad condition\nseverity: high\ncondition: 'event.type == )'\n",
        );
        // The `)` is on line 4, column 27.
        load(&sb, &[&r], None)
            .load_failed()
            .problem_exactly_at(&r, 4, 27, "");
    }

    #[test]

    fn rhai_syntax_error_position_in_plain_and_block_conditions() {
        let sb = Sandbox::new();
        let plain = sb.write(
            "plain.yaml",
            "id: plain\ntitle: Plain\nseverity: high\ncondition: event.type == )\n",
        );
        let literal = sb.write(
            "literal.yaml",
            "id: literal\ntitle: Literal\nseverity: high\ncondition: |-\n  event.type == \"x\" &&\n    event.id == )\n",
        );
        let folded = sb.write(
            "folded.yaml",
            "id: folded\ntitle: Folded\nseverity: high\ncondition: >-\n  event.type == ) &&\n  true\n",
        );
        load(&sb, &[&plain, &literal, &folded], None)
            .load_failed()
            .problem_exactly_at(&plain, 4, 26, "")
            .problem_exactly_at(&literal, 6, 17, "")
            .problem_exactly_at(&folded, 5, 17, "");
    }

    #[test]
    fn rhai_syntax_error_in_a_script_file_has_the_script_position() {
        let sb = Sandbox::new();
        let script = sb.write(
            "rules/scripts/robots.rhai",
            "// Keys made by robots.\nlet kind = event.actor.kind;\nlet robot = (kind == ;\nrobot\n",
        );
        let r = sb.write(
            "rules/robots.yaml",
            "id: robots\ntitle: Robots\nseverity: low\nscript: scripts/robots.rhai\n",
        );
        // The `;` is on line 3, column 22 of the script.
        load(&sb, &[&r], None)
            .load_failed()
            .problem_exactly_at(&script, 3, 22, "");
    }

    #[test]
    fn duplicate_ids_across_files() {
        let sb = Sandbox::new();
        let a = sb.write(
            "a.yaml",
            "id: dup\ntitle: First\nseverity: low\nmatch: {type: api_key.created}\n",
        );
        let b = sb.write(
            "b.yaml",
            "id: other\ntitle: Other\nseverity: low\nmatch: {type: login.failed}\n---\nid: dup\ntitle: Second\nseverity: low\nmatch: {type: api_key.deleted}\n",
        );
        let out = load(&sb, &[&a, &b], None);
        out.load_failed();
        let prefix = format!("{}:6:", b.display());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains("dup")),
            "the second `dup` is reported at {prefix}\n{out}"
        );
        let same = sb.write(
            "same.yaml",
            "id: twice\ntitle: One\nseverity: low\nmatch: {type: x}\n---\nid: twice\ntitle: Two\nseverity: low\nmatch: {type: y}\n",
        );
        let out = load(&sb, &[&same], None);
        out.load_failed();
        let prefix = format!("{}:6:", same.display());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains("twice")),
            "a duplicate in one file is reported at {prefix}\n{out}"
        );
    }

    #[test]

    fn duplicate_id_problem_has_a_column() {
        let sb = Sandbox::new();
        let a = sb.write(
            "a.yaml",
            "id: dup\ntitle: First\nseverity: low\nmatch: {type: api_key.created}\n",
        );
        let b = sb.write(
            "b.yaml",
            "id: other\ntitle: Other\nseverity: low\nmatch: {type: login.failed}\n---\nid: dup\ntitle: Second\nseverity: low\nmatch: {type: api_key.deleted}\n",
        );
        load(&sb, &[&a, &b], None)
            .load_failed()
            .problem_at(&b, 6, "dup");
    }

    #[test]
    fn a_rule_needs_match_condition_or_script() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: empty\ntitle: Checks nothing\nseverity: low\ndescription: forgot the match\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_within(&r, 1..=4, "match");
    }

    #[test]
    fn condition_and_script_exclude_each_other() {
        let sb = Sandbox::new();
        sb.write("rules/s.rhai", "true\n");
        let r = sb.write(
            "rules/both.yaml",
            "id: both\ntitle: Both\nseverity: low\ncondition: 'true'\nscript: s.rhai\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_within(&r, 4..=5, "script");
    }

    #[test]
    fn bad_durations_are_errors() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: bad.duration
title: Bad durations
severity: low
match: {type: login.failed}
threshold: {count: 3, window: soon}
suppress: {window: 10 parsecs}
",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 5, "soon")
            .problem_at(&r, 6, "parsecs");
    }

    #[test]
    fn business_hours_of_the_config_need_a_config() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: after.hours\ntitle: After hours\nseverity: medium\ncondition: '!business_hours(event)'\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 4, "business_hours");
        let c = sb.write("config.yaml", LISTS_CONFIG);
        load(&sb, &[&r], Some(&c))
            .load_failed()
            .problem_at(&r, 4, "business_hours");

        let script = sb.write(
            "rules2/after_hours.rhai",
            "let ts = event.effective_at;\n!business_hours(ts)\n",
        );
        let r2 = sb.write(
            "rules2/after_hours.yaml",
            "id: after.hours.script\ntitle: After hours\nseverity: medium\nscript: after_hours.rhai\n",
        );
        let out = load(&sb, &[&r2], None);
        out.load_failed();
        let script_name = script.display().to_string();
        assert!(
            out.stderr
                .lines()
                .any(|l| l.starts_with(&script_name) && l.contains("business_hours")),
            "the script file is named\n{out}"
        );
    }

    #[test]
    fn missing_config_variable_fails_loading() {
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "lists:\n  corp_emails:\n    - \"*@${AUDITWATCH_TEST_CORP_DOMAIN}\"\n",
        );
        let r = sb.write(
            "rules.yaml",
            "id: outsider\ntitle: Outsider\nseverity: low\nmatch: {actor.email: {not_in_list: corp_emails}}\n",
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .env_remove("AUDITWATCH_TEST_CORP_DOMAIN")
            .arg("-c")
            .arg(&c)
            .arg("-r")
            .arg(&r)
            .arg(&e));
        out.load_failed();
        assert!(out.stderr.contains(&c.display().to_string()), "{out}");
    }

    #[test]

    fn missing_config_variable_is_named_with_its_line() {
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "lists:\n  corp_emails:\n    - \"*@${AUDITWATCH_TEST_CORP_DOMAIN}\"\n",
        );
        let r = sb.write(
            "rules.yaml",
            "id: outsider\ntitle: Outsider\nseverity: low\nmatch: {actor.email: {not_in_list: corp_emails}}\n",
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .env_remove("AUDITWATCH_TEST_CORP_DOMAIN")
            .arg("-c")
            .arg(&c)
            .arg("-r")
            .arg(&r)
            .arg(&e));
        out.load_failed();
        let prefix = format!("{}:3", c.display());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&prefix) && l.contains("AUDITWATCH_TEST_CORP_DOMAIN")),
            "the variable and its line are named\n{out}"
        );
    }

    #[test]
    fn unknown_config_key_is_an_error() {
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "lists:\n  corp_emails: [\"*@example.com\"]\nbusiness_hour: {timezone: UTC, days: Mon-Fri, hours: \"09:00-17:00\"}\n",
        );
        let r = sb.write("rules.yaml", &catch_all());
        let out = load(&sb, &[&r], Some(&c));
        out.load_failed();
        let at = format!("{}:3:", c.display());
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&at) && l.contains("business_hour")),
            "the unknown key is reported at {at}COL\n{out}"
        );
    }

    #[test]
    fn bad_rule_id_and_title_are_errors() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            "id: Bad_ID\ntitle: Fine\nseverity: low\nmatch: {type: x}\n---\nid: fine\ntitle: \"two\\nlines\"\nseverity: low\nmatch: {type: x}\n---\nid: no.title\nseverity: low\nmatch: {type: x}\n",
        );
        load(&sb, &[&r], None)
            .load_failed()
            .problem_at(&r, 1, "Bad_ID")
            .problem_at(&r, 7, "title")
            .problem_within(&r, 11..=13, "title");
    }

    #[test]
    fn in_list_in_a_condition_needs_the_list() {
        let sb = Sandbox::new();
        let c = sb.write("config.yaml", LISTS_CONFIG);
        let r = sb.write(
            "rules.yaml",
            "id: vip\ntitle: VIP\nseverity: low\nmatch: {actor.email: {exists: true}}\ncondition: 'in_list(\"vip_users\", event.actor.email)'\n",
        );
        load(&sb, &[&r], Some(&c))
            .load_failed()
            .problem_at(&r, 5, "vip_users");
    }

    #[test]
    fn every_documented_field_is_accepted() {
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "lists:\n  corp_emails: [\"*@example.com\"]\ndestinations:\n  security-slack: {type: stdout}\nbusiness_hours: {timezone: America/New_York, days: Mon-Fri, hours: \"09:00-18:00\"}\n",
        );
        sb.write("rules/scripts/check.rhai", "business_hours(event)\n");
        let r = sb.write(
            "rules/full.yaml",
            "id: full.rule-1\ntitle: Every field\nseverity: critical\ndescription: >-\n  Why this matters, and what to do.\ntags: [openai, attack.persistence]\nenabled: true\nmatch: {type: api_key.created}\nscript: scripts/check.rhai\nthreshold: {count: 1, window: 1h30m, group_by: [actor.email]}\nsuppress: {window: 2d, key: actor.email}\nsummary: \"{{ actor.email }}\"\nnotify: [security-slack]\ntests: []\n",
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-c").arg(&c).arg("-r").arg(&r).arg(&e));
        out.status(0);
        let alerts = out.alerts();
        assert_eq!(
            alerts.len(),
            2,
            "Tuesday 15:00Z is 10:00 in New York: inside\n{out}"
        );
        assert_eq!(alerts[0]["severity"], "critical");
    }

    #[test]
    fn bad_business_hours_in_the_config_are_errors() {
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "business_hours: {timezone: Mars/Olympus_Mons, days: Mon-Fri, hours: \"09:00-18:00\"}\n",
        );
        let r = sb.write("rules.yaml", &catch_all());
        let out = load(&sb, &[&r], Some(&c));
        out.load_failed();
        assert!(out.stderr.contains("Mars/Olympus_Mons"), "{out}");
    }

    #[test]
    fn rulecheck_ignores_variables_of_sections_it_does_not_read() {
        // config.md: `rulecheck -c` reads only `rules`, `lists` and
        // `business_hours`, so CI can run it without delivery secrets.
        let sb = Sandbox::new();
        let c = sb.write(
            "config.yaml",
            "source:\n  openai:\n    admin_key: ${AUDITWATCH_TEST_ADMIN_KEY}\nsmtp:\n  host: smtp.example.com\n  from: \"auditwatch <auditwatch@example.com>\"\n  password: ${AUDITWATCH_TEST_SMTP_PASSWORD}\nlists:\n  corp_emails: [\"*@example.com\"]\n",
        );
        let r = sb.write(
            "rules.yaml",
            &rule(
                "outsider",
                "match: {actor.email: {not_in_list: corp_emails}}",
            ),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .env_remove("AUDITWATCH_TEST_ADMIN_KEY")
            .env_remove("AUDITWATCH_TEST_SMTP_PASSWORD")
            .arg("-c")
            .arg(&c)
            .arg("-r")
            .arg(&r)
            .arg(&e));
        out.status(0);
        assert_eq!(out.fired_events(), ["e-eve"], "{out}");
    }

    #[test]
    fn problems_of_several_files_are_reported_together() {
        let sb = Sandbox::new();
        sb.write(
            "rules/scripts/broken.rhai",
            "let a = 1;\nlet b = a +;\nb > 0\n",
        );
        let a = sb.write(
            "rules/a.yaml",
            "id: a.loud\ntitle: Loud\nseverity: urgent\nmatch: {type: api_key.created}\n---\nid: a.fine\ntitle: Fine\nseverity: low\nmatch: {type: api_key.deleted}\n",
        );
        let b = sb.write(
            "rules/b/b.yaml",
            "id: b.typo\ntitle: Typo\nseverity: low\nmatchh: {type: x}\n---\nid: b.regex\ntitle: Regex\nseverity: low\nmatch:\n  actor.email: {regex: \"(\"}\n",
        );
        let c = sb.write(
            "rules/c.yml",
            "id: c.script\ntitle: Script\nseverity: low\nscript: scripts/broken.rhai\n---\nid: c.window\ntitle: Window\nseverity: low\nmatch: {type: x}\nsuppress: {window: often}\n",
        );
        let rules = sb.path("rules");
        let out = load(&sb, &[&rules], None);
        out.load_failed()
            .problem_at(&a, 3, "urgent")
            .problem_at(&b, 4, "matchh")
            .problem_at(&b, 10, "(")
            .problem_exactly_at(&sb.path("rules/scripts/broken.rhai"), 2, 12, "")
            .problem_at(&c, 10, "often");
    }
}

/// Group 7: inline rule tests with `--test` and `--require-tests`.
mod inline_tests {
    use super::*;

    fn yaml(v: &Value) -> String {
        v.to_string()
    }

    fn suite(failing: bool) -> String {
        let broad = key_created("audit_log-k1", T0, "dana@example.com", &["api.all"]);
        let narrow = key_created(
            "audit_log-k2",
            T0,
            "dana@example.com",
            &["api.model.request"],
        );
        let burst: Vec<String> = (0..3)
            .map(|i| {
                yaml(&login_failed(
                    &format!("audit_log-f{i}"),
                    T0 + 60 * i,
                    "ivan@example.com",
                    "198.51.100.8",
                ))
            })
            .collect();
        let mut out = format!(
            "id: key.broad
title: Broad API key created
severity: high
match: {{type: api_key.created, details.data.scopes: api.all}}
suppress: {{window: 1h}}
tests:
  - name: a broad key alerts
    event: {broad}
    expect: true
    expect_severity: high
  - name: a restricted key is quiet
    event: {narrow}
    expect: false
  - name: cases do not share suppression
    event: {broad}
    expect_alerts: 1
  - name: a repeat within the hour is suppressed
    events: [{broad}, {broad2}]
    expect_alerts: 1
---
id: login.burst
title: Failed login burst
severity: medium
match: {{type: login.failed}}
threshold: {{count: 3, window: 5m, group_by: [actor.email]}}
tests:
  - name: three failures alert once
    events: [{b0}, {b1}, {b2}]
    expect_alerts: 1
    expect_severity: medium
  - name: two failures are quiet
    events: [{b0}, {b1}]
    expect_alerts: 0
",
            broad = yaml(&broad),
            narrow = yaml(&narrow),
            broad2 = yaml(&key_created(
                "audit_log-k3",
                T0 + 600,
                "dana@example.com",
                &["api.all"]
            )),
            b0 = burst[0],
            b1 = burst[1],
            b2 = burst[2],
        );
        if failing {
            out.push_str(&format!(
                "  - name: wrong expectation
    event: {b0}
    expect: true
  - name: wrong severity
    events: [{b0}, {b1}, {b2}]
    expect_severity: critical
    expect_alerts: 1
  - name: wrong count
    events: [{b0}, {b1}, {b2}]
    expect_alerts: 2
",
                b0 = burst[0],
                b1 = burst[1],
                b2 = burst[2],
            ));
        }
        out
    }

    fn last_line(out: &Run) -> String {
        out.stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    #[test]
    fn passing_cases_exit_0() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &suite(false));
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg("--test"));
        out.status(0);
        assert_eq!(last_line(&out), "rulecheck: 6 passed, 0 failed", "{out}");
        for name in ["a broad key alerts", "three failures alert once"] {
            assert!(
                out.stdout.contains(name),
                "each case is listed: {name}\n{out}"
            );
        }
    }

    #[test]
    fn failing_cases_exit_1_and_are_named() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &suite(true));
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg("--test"));
        out.status(1);
        assert_eq!(last_line(&out), "rulecheck: 6 passed, 3 failed", "{out}");
        for name in ["wrong expectation", "wrong severity", "wrong count"] {
            let line = out
                .stdout
                .lines()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("`{name}` is reported\n{out}"));
            assert!(
                line.to_lowercase().contains("fail"),
                "`{name}` is reported as failed: {line}\n{out}"
            );
        }
    }

    #[test]
    fn require_tests_wants_an_alerting_and_a_quiet_case() {
        let sb = Sandbox::new();
        let ev = yaml(&key_created(
            "audit_log-k1",
            T0,
            "dana@example.com",
            &["api.all"],
        ));
        let quiet = yaml(&key_created(
            "audit_log-k2",
            T0,
            "dana@example.com",
            &["api.model.request"],
        ));
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule(
                    "complete",
                    &format!("match: {{details.data.scopes: api.all}}\ntests:\n  - name: alerts\n    event: {ev}\n    expect: true\n  - name: quiet\n    event: {quiet}\n    expect_alerts: 0\n"),
                ),
                rule(
                    "only.alerting",
                    &format!("match: {{details.data.scopes: api.all}}\ntests:\n  - name: alerts\n    event: {ev}\n    expect_alerts: 1\n"),
                ),
                rule(
                    "only.quiet",
                    &format!("match: {{details.data.scopes: api.all}}\ntests:\n  - name: quiet\n    event: {quiet}\n    expect: false\n"),
                ),
                rule("untested", "match: {details.data.scopes: api.all}"),
            ]),
        );
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg("--test"));
        out.status(0);
        assert_eq!(last_line(&out), "rulecheck: 4 passed, 0 failed", "{out}");

        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--test", "--require-tests"]));
        out.status(1);
        assert_eq!(last_line(&out), "rulecheck: 4 passed, 3 failed", "{out}");
        for id in ["only.alerting", "only.quiet", "untested"] {
            assert!(
                out.stdout
                    .lines()
                    .any(|l| l.contains(id) && l.to_lowercase().contains("fail")),
                "rule {id} fails the requirement\n{out}"
            );
        }
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.contains("complete") && l.to_lowercase().contains("fail")),
            "{out}"
        );
    }

    #[test]
    fn test_cases_see_config_lists() {
        let sb = Sandbox::new();
        let c = sb.write("config.yaml", LISTS_CONFIG);
        let outsider = yaml(&key_created(
            "audit_log-k1",
            T0,
            "eve@evil.io",
            &["api.all"],
        ));
        let insider = yaml(&key_created(
            "audit_log-k2",
            T0,
            "dana@example.com",
            &["api.all"],
        ));
        let r = sb.write(
            "rules.yaml",
            &rule(
                "outsider",
                &format!("match: {{actor.email: {{not_in_list: corp_emails}}}}\ntests:\n  - name: outsider\n    event: {outsider}\n    expect: true\n  - name: insider\n    event: {insider}\n    expect: false\n"),
            ),
        );
        let out = run(sb
            .rulecheck()
            .arg("-c")
            .arg(&c)
            .arg("-r")
            .arg(&r)
            .arg("--test"));
        out.status(0);
        assert_eq!(last_line(&out), "rulecheck: 2 passed, 0 failed", "{out}");
    }
}

/// Group 8: output formats, the summary on stderr, defaults and the config.
mod formats {
    use super::*;

    const RULES: &str = "id: key.created
title: API key created
severity: medium
match: {type: api_key.created}
suppress: {window: 1h, key: [actor.email]}
summary: \"{{ actor.email }} created API key {{ details.id }} in {{ project.name }} ({{ details.data.scopes }})\"
---
id: key.deleted
title: API key deleted
severity: low
match: {type: api_key.deleted}
---
id: fragile
title: Fragile
severity: info
condition: 'event.actor.email.len() > 0'
";

    fn history() -> Vec<Value> {
        let mut events = corpus();
        events.push(
            ev("e-bob-again", "api_key.created", T0 + 600)
                .session_as("user-bob", "bob@example.com", "203.0.113.7")
                .details(json!({"id": "key_5", "data": {"scopes": ["api.all"]}}))
                .json(),
        );
        events
    }

    fn numbers(line: &str) -> Vec<u64> {
        line.split(|c: char| !c.is_ascii_digit())
            .filter(|t| !t.is_empty())
            .filter_map(|t| t.parse().ok())
            .collect()
    }

    /// The per-rule summary line of `id` on stderr, as its numbers.
    fn summary_numbers(stderr: &str, id: &str) -> Vec<u64> {
        let line = stderr
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no summary line for {id} on stderr:\n{stderr}"));
        numbers(line.trim_start_matches(id))
    }

    #[test]
    fn jsonl_has_exactly_the_alert_fields() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", RULES);
        let e = sb.events("events.jsonl", &history());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "jsonl"])
            .arg(&e));
        out.status(0);
        let alerts = out.alerts();
        assert_eq!(alerts.len(), 7, "{out}");
        for a in &alerts {
            let keys: Vec<&str> = a.as_object().unwrap().keys().map(String::as_str).collect();
            let mut keys = keys;
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "effective_at",
                    "event_id",
                    "event_ids",
                    "rule_id",
                    "severity",
                    "summary",
                    "suppressed",
                    "title"
                ],
                "{a}"
            );
            assert!(
                a["effective_at"].is_i64() && a["suppressed"].is_u64(),
                "{a}"
            );
            assert!(a["event_ids"].is_array() && a["summary"].is_string(), "{a}");
        }
        let bob = alerts
            .iter()
            .find(|a| a["rule_id"] == "key.created" && a["event_id"] == "e-bob")
            .unwrap_or_else(|| panic!("bob's key raised an alert\n{out}"));
        assert_eq!(bob["rule_id"], "key.created");
        assert_eq!(bob["severity"], "medium");
        assert_eq!(bob["title"], "API key created");
        assert_eq!(bob["event_id"], "e-bob");
        assert_eq!(bob["event_ids"], json!(["e-bob"]));
        assert_eq!(bob["effective_at"], T0);
        assert_eq!(bob["suppressed"], 0);
        assert_eq!(
            bob["summary"],
            "bob@example.com created API key key_1 in Production (api.model.request, api.files.read)"
        );
        assert!(
            !alerts
                .iter()
                .any(|a| a["rule_id"] == "key.created" && a["event_id"] == "e-bob-again"),
            "bob's second key within the hour is suppressed\n{out}"
        );
    }

    #[test]
    fn summary_renders_missing_values_as_empty_text() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &rule(
                "who",
                "match: {type: api_key.deleted}\nsummary: \"{{ actor.email }}|{{ actor.id }}|{{ project.name }}|{{ details.id }}\"",
            ),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        let alerts = out.alerts();
        assert_eq!(alerts.len(), 1, "{out}");
        assert_eq!(alerts[0]["summary"], "|svc_acct_ci||key_3");
    }

    #[test]
    fn default_summary_names_type_actor_and_project() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &rule("created", "match: {type: api_key.created}"),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        let alerts = out.alerts();
        let summary = text(&alerts[0]["summary"]);
        for part in ["api_key.created", "bob@example.com", "Production"] {
            assert!(summary.contains(part), "{part} in {summary:?}");
        }
    }

    #[test]
    fn json_document_shape_and_counts() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", RULES);
        let e = sb.events("events.jsonl", &history());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        out.status(0);
        let doc = out.doc();
        let mut keys: Vec<&str> = doc
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, ["alerts", "bad_lines", "events", "rules"], "{out}");
        assert_eq!(doc["events"], 5);
        assert_eq!(doc["bad_lines"], 0);
        for r in doc["rules"].as_array().unwrap() {
            let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                ["alerts", "errors", "id", "matched", "suppressed"],
                "{r}"
            );
        }
        assert_eq!(rule_stats(&doc, "key.created"), (3, 2, 1, 0));
        assert_eq!(rule_stats(&doc, "key.deleted"), (1, 1, 0, 0));
        let (_, _, _, errors) = rule_stats(&doc, "fragile");
        assert_eq!(errors, 1, "the service account has no email\n{out}");
        assert_eq!(doc["alerts"].as_array().unwrap().len(), 2 + 1 + 4);
    }

    #[test]
    fn table_on_stdout_summary_on_stderr() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", RULES);
        let e = sb.events("events.jsonl", &history());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "table"])
            .arg(&e));
        out.status(0);
        assert!(
            serde_json::from_str::<Value>(out.stdout.lines().next().unwrap_or_default()).is_err(),
            "a table, not JSON\n{out}"
        );
        let bob = out
            .stdout
            .lines()
            .find(|l| l.contains("bob@example.com created API key key_1"))
            .unwrap_or_else(|| panic!("bob's alert is a row\n{out}"));
        assert!(
            bob.contains("key.created") && bob.contains("medium"),
            "{bob}"
        );
        assert!(
            out.stdout
                .lines()
                .any(|l| l.contains("key.deleted") && l.contains("low")),
            "{out}"
        );
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.split_whitespace().next() == Some("key.created")),
            "the per-rule summary is not on stdout\n{out}"
        );
        // matched, alerts, suppressed, evaluation errors
        assert_eq!(
            summary_numbers(&out.stderr, "key.created"),
            [3, 2, 1, 0],
            "{out}"
        );
        assert_eq!(
            summary_numbers(&out.stderr, "key.deleted"),
            [1, 1, 0, 0],
            "{out}"
        );
        assert_eq!(summary_numbers(&out.stderr, "fragile")[3], 1, "{out}");
        let lower = out.stderr.to_lowercase();
        for word in ["matched", "alerts", "suppressed", "errors"] {
            assert!(lower.contains(word), "the summary has {word}\n{out}");
        }
    }

    #[test]
    fn jsonl_is_the_default_off_a_terminal_and_stdout_holds_only_alerts() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", RULES);
        let e = sb.events("events.jsonl", &history());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        assert_eq!(out.alerts().len(), 7, "{out}");
        assert_eq!(
            summary_numbers(&out.stderr, "key.created"),
            [3, 2, 1, 0],
            "{out}"
        );
        assert!(
            out.stderr.contains("fragile") && out.stderr.contains("e-svc"),
            "{out}"
        );
        assert!(
            !out.stderr.contains('\r') && !out.stderr.contains('\u{1b}'),
            "no progress display on a pipe\n{out}"
        );
    }

    #[test]
    fn auditwatch_rulecheck_is_the_same_command() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", RULES);
        let e = sb.events("events.jsonl", &history());
        let a = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        let b = run(sb
            .auditwatch()
            .arg("rulecheck")
            .arg("-r")
            .arg(&r)
            .args(["--format", "json"])
            .arg(&e));
        a.status(0);
        b.status(0);
        assert_eq!(a.stdout, b.stdout);
        let t = run(sb.auditwatch().args(["rulecheck", "--test", "-r"]).arg(&r));
        t.status(0);
        assert!(t.stdout.contains("rulecheck: 0 passed, 0 failed"), "{t}");
    }

    #[test]
    fn config_rules_lists_and_variables() {
        let sb = Sandbox::new();
        sb.write(
            "etc/rules/outsider.yaml",
            &rule(
                "outsider",
                "match: {type: api_key.created, actor.email: {not_in_list: corp_emails}}",
            ),
        );
        let c = sb.write(
            "etc/auditwatch.yaml",
            "source:\n  file: {path: events.jsonl}\nrules: [rules/]\nlists:\n  corp_emails: [\"*@${AUDITWATCH_TEST_DOMAIN}\", \"*@${AUDITWATCH_TEST_UNSET:-partner.io}\"]\n",
        );
        let mut events = corpus();
        events.push(key_created(
            "e-partner",
            T0 + 500,
            "pat@partner.io",
            &["api.all"],
        ));
        let e = sb.events("events.jsonl", &events);
        let out = run(sb
            .rulecheck()
            .env("AUDITWATCH_TEST_DOMAIN", "example.com")
            .env_remove("AUDITWATCH_TEST_UNSET")
            .arg("-c")
            .arg(&c)
            .arg(&e));
        out.status(0);
        assert_eq!(
            out.fired_events(),
            ["e-eve"],
            "rules come from the config's folder; lists use the variables\n{out}"
        );
    }
}

mod schema_warnings {
    use super::*;

    fn root() -> std::path::PathBuf {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    const TYPOS: &str = "id: t.typos\ntitle: Typos\nseverity: high\nmatch:\n  type: [ip_allowlist.delete]\n  actor.emial: {exists: true}\n  condition: 'true'\nthreshold: {count: 3, window: 10m, group_by: [actor.emial]}\nsuppress: {window: 1h, key: [actr.email]}\nsummary: \"{{ actor.emial }} in {{ project.nam }}\"\n---\nid: t.details\ntitle: Details\nseverity: low\nmatch: {type: invite.sent}\ncondition: 'event.details.data.emial != \"\"'\n";

    #[test]
    fn unknown_names_are_warnings_at_their_line_with_a_suggestion() {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", TYPOS);
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        let want = [
            (
                5,
                "`ip_allowlist.delete` is not an audit log event type; did you mean `ip_allowlist.deleted`?",
            ),
            (6, "did you mean `actor.email`?"),
            (7, "move it out of `match:` to the rule's top level"),
            (8, "`actor.emial` is not an actor field"),
            (9, "did you mean `actor`?"),
            (
                10,
                "in the summary: `project.nam` is not a known field; did you mean `project.name`?",
            ),
            (
                16,
                "in the script: `details.data.emial` is not a known field; did you mean `details.data.email`?",
            ),
        ];
        for (line, text) in want {
            let prefix = format!("{}:{line}:", r.display());
            assert!(
                out.stderr
                    .lines()
                    .any(|l| l.starts_with(&prefix) && l.contains("warning:") && l.contains(text)),
                "line {line}: {text}\n{out}"
            );
        }
        let denied = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .arg("--deny-warnings")
            .arg(&e));
        denied.status(2);
        assert!(denied.stderr.contains("--deny-warnings"), "{denied}");
    }

    #[test]
    fn the_default_pack_loads_without_a_warning() {
        let sb = Sandbox::new();
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-c")
            .arg(root().join("auditwatch.yaml"))
            .arg("--deny-warnings")
            .arg(&e));
        out.status(0);
        assert!(!out.stderr.contains("warning:"), "{out}");
    }

    #[test]
    fn the_shipped_schema_is_the_official_list() {
        let official = root().join("../shared/openai/event-types.txt");
        let shipped = std::fs::read_to_string(root().join("src/rules/event-types.txt")).unwrap();
        assert_eq!(auditwatch::rules::schema::EVENT_TYPES, shipped);
        match std::fs::read_to_string(&official) {
            Ok(text) => assert_eq!(
                shipped,
                text,
                "src/rules/event-types.txt differs from {}: copy it over (see docs/rules.md)",
                official.display()
            ),
            // Outside the development tree the official copy is not at hand;
            // the shipped one must still parse with every type.
            Err(_) => {
                let s = auditwatch::rules::schema::Schema::parse(&shipped).unwrap();
                assert_eq!(s.types.len(), 145);
            }
        }
    }
}

mod mistakes_in_rule_terms {
    use super::*;

    fn load_error(rule_body: &str) -> String {
        let sb = Sandbox::new();
        let r = sb.write("rules.yaml", &docs(&[rule("t.mistake", rule_body)]));
        let out = run(sb.rulecheck().arg("--test").arg("-r").arg(&r));
        out.status(2);
        out.stderr.clone()
    }

    #[test]
    fn each_mistake_is_told_in_the_rules_terms() {
        let said = load_error("match: {type: login.failed}\nthreshold: {count: four, window: 10m}");
        assert!(
            said.contains("`count` must be a whole number of events, at least 1, not \"four\""),
            "{said}"
        );
        let said = load_error("match:\n  or:\n    - type: login.failed");
        assert!(
            said.contains("`or` is not an operator: use `any:` with a list"),
            "{said}"
        );
        let said =
            load_error("match: {type: login.failed}\nsummary: \"{{ actor.email | upperr }}\"");
        assert!(said.contains("filter upperr is unknown"), "{said}");
        let said = load_error("match: {type: login.failed}\ncondition: '!buisness_hours(event)'");
        assert!(said.contains("`buisness_hours` is not a function scripts can call; did you mean `business_hours`?"), "{said}");
        let said = load_error("match: {type: login.failed}\nthreshold: {count: 3, window: 10M}");
        assert!(said.contains("`M` is not a unit"), "{said}");
    }

    #[test]
    fn an_unknown_rule_id_suggests_the_right_one() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[rule("openai.scim.disabled", "match: {type: scim.disabled}")]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb
            .rulecheck()
            .arg("-r")
            .arg(&r)
            .args(["--rule", "openai.scim.disable"])
            .arg(&e));
        out.status(2);
        assert!(
            out.stderr.contains("did you mean `openai.scim.disabled`?"),
            "{out}"
        );
    }
}

mod terminal_output {
    use super::*;

    fn table(sb: &Sandbox, r: &std::path::Path, e: &std::path::Path, extra: &[&str]) -> Run {
        let mut c = sb.rulecheck();
        c.env("COLUMNS", "100")
            .arg("-r")
            .arg(r)
            .args(["--format", "table"])
            .args(extra)
            .arg(e);
        let out = run(&mut c);
        out.status(0);
        out
    }

    #[test]
    fn the_table_fits_100_columns_and_colours_on_request() {
        let sb = Sandbox::new();
        let long = format!(
            "match: {{id: {{exists: true}}}}\nsummary: \"{}{{{{ id }}}}\"",
            "a very long summary ".repeat(20)
        );
        let r = sb.write(
            "rules.yaml",
            &docs(&[
                rule("t.long", &long),
                rule("t.never", "match: {type: checkpoint.permission.deleted}"),
            ]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = table(&sb, &r, &e, &["--color", "never"]);
        for line in out.stdout.lines() {
            assert!(
                line.chars().count() <= 100,
                "{} > 100: {line}",
                line.chars().count()
            );
        }
        assert!(out.stdout.contains('\u{2026}'), "{out}");
        assert!(
            !out.stdout.contains('\u{1b}'),
            "no colour with --color never"
        );
        let coloured = table(&sb, &r, &e, &["--color", "always"]);
        assert!(coloured.stdout.contains("\u{1b}["), "{coloured}");
        // The rule that matched nothing is only counted, unless --verbose.
        assert!(!out.stderr.contains("t.never"), "{out}");
        assert!(
            out.stderr
                .contains("1 matched nothing; --verbose lists them"),
            "{out}"
        );
        let verbose = table(&sb, &r, &e, &["--verbose"]);
        assert!(verbose.stderr.contains("t.never"), "{verbose}");
    }
}

mod script_errors_in_rule_terms {
    use super::*;

    #[test]
    fn a_missing_field_in_a_script_is_named_as_such() {
        let sb = Sandbox::new();
        let r = sb.write(
            "rules.yaml",
            &docs(&[rule(
                "t.missing",
                "match: {id: {exists: true}}\ncondition: 'event.details.nothing.len() > 0'",
            )]),
        );
        let e = sb.events("events.jsonl", &corpus());
        let out = run(sb.rulecheck().arg("-r").arg(&r).arg(&e));
        out.status(0);
        assert!(
            out.stderr.contains("rule t.missing: event ")
                && out.stderr.contains(
                    "`len` got a missing value: a field this event does not have reads as `()`"
                ),
            "{out}"
        );
        assert!(
            !out.stderr.contains("Function not found"),
            "no Rhai-internal wording\n{out}"
        );
    }
}

mod did_you_mean {
    use super::*;

    #[test]
    fn keys_operators_and_lists_name_the_one_meant() {
        let sb = Sandbox::new();
        let cfg = sb.write(
            "auditwatch.yaml",
            "lists:\n  corp_emails: [\"*@example.com\"]\n",
        );
        for (body, want) in [
            (
                "sevrity: high\nmatch: {type: login.failed}",
                "unknown key `sevrity`; did you mean `severity`?",
            ),
            (
                "match: {type: login.failed, actor.email: {equals: x}}",
                "unknown operator `equals` (did you mean `eq`?",
            ),
            (
                "match: {type: login.failed, actor.email: {contain: x}}",
                "did you mean `contains`?",
            ),
            (
                "match: {type: login.failed, actor.email: {in_list: corp_email}}",
                "did you mean `corp_emails`?",
            ),
        ] {
            let r = sb.write("rules.yaml", &docs(&[rule("t.dym", body)]));
            let out = run(sb
                .rulecheck()
                .arg("--test")
                .arg("-c")
                .arg(&cfg)
                .arg("-r")
                .arg(&r));
            out.status(2);
            assert!(out.stderr.contains(want), "{want}\n{out}");
        }
    }
}
