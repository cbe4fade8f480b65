//! Labelled incidents: risky event sequences injected into the history on a fixed schedule
//! (some at night or at weekends, some in business hours), each returned as an `Incident`.

use fastrand::Rng;

use crate::Incident;
use crate::clock::{Clock, hm, is_weekend};
use crate::event::{Batch, Obj, service_key_actor, session_actor, user_key_actor};
use crate::net::{self, FOREIGN, Geo, Place};
use crate::org::Org;
use crate::people::{Device, HEADLESS, LAPTOPS, Person, Role, SCRIPT};
use crate::rng::{self, between, pick};

#[derive(Clone, Copy, PartialEq)]
enum When {
    Weekday,
    Weekend,
}

/// Incident number, the kind of day it happens on, and its local start time.
const SCHEDULE: [(u8, When, i64); 21] = [
    (1, When::Weekend, hm(23, 40)),
    (2, When::Weekday, hm(14, 20)),
    (3, When::Weekday, hm(19, 41)),
    (4, When::Weekday, hm(11, 5)),
    (5, When::Weekday, hm(3, 7)),
    (6, When::Weekend, hm(5, 20)),
    (7, When::Weekday, hm(2, 40)),
    (8, When::Weekday, hm(13, 5)),
    (9, When::Weekday, hm(9, 12)),
    (10, When::Weekday, hm(18, 55)),
    (11, When::Weekday, hm(15, 30)),
    (12, When::Weekday, hm(16, 40)),
    (13, When::Weekday, hm(12, 15)),
    (14, When::Weekend, hm(10, 30)),
    (15, When::Weekday, hm(20, 30)),
    (16, When::Weekday, hm(9, 50)),
    (17, When::Weekday, hm(17, 50)),
    (18, When::Weekday, hm(22, 10)),
    (19, When::Weekday, hm(7, 45)),
    (20, When::Weekend, hm(16, 5)),
    (21, When::Weekday, hm(10, 0)),
];

/// A scheduled incident: which one, on which day, at which local time.
pub struct Planned {
    pub number: u8,
    pub day: u32,
    pub secs: i64,
}

/// Spreads the incidents evenly over the history, moving each to the nearest day of the
/// kind it needs (weekday or weekend) when the history has one.
pub fn plan(clock: &Clock) -> Vec<Planned> {
    let days = clock.days.max(1);
    let n = SCHEDULE.len() as u64;
    SCHEDULE
        .iter()
        .enumerate()
        .map(|(k, (number, when, secs))| {
            let target = ((2 * k as u64 + 1) * u64::from(days) / (2 * n)) as u32;
            let fits = |d: u32| (*when == When::Weekend) == is_weekend(clock.date(d));
            let day = (0..days)
                .flat_map(|o| [target.checked_add(o), target.checked_sub(o)])
                .flatten()
                .find(|d| *d < days && fits(*d))
                .unwrap_or(target.min(days - 1));
            Planned {
                number: *number,
                day,
                secs: *secs,
            }
        })
        .collect()
}

/// Injection context for one incident.
struct Inj<'a> {
    org: &'a mut Org,
    rng: &'a mut Rng,
    b: &'a mut Batch,
    t0: i64,
    ids: Vec<String>,
}

impl Inj<'_> {
    /// Emits one event with a detail object; `project` is a project index.
    fn emit(
        &mut self,
        t: i64,
        ty: &'static str,
        project: Option<usize>,
        actor: &str,
        detail: impl FnOnce(&mut Obj<'_>),
    ) {
        let mut e = self.b.event(self.rng, t, ty);
        if let Some(p) = project {
            let p = &self.org.projects[p];
            e = e.project(&p.id, &p.title);
        }
        self.ids.push(e.actor(actor).detail(detail).push_id());
    }

    /// Emits one event without a detail object (sign-ins).
    fn emit_bare(&mut self, t: i64, ty: &'static str, actor: &str) {
        let id = self.b.event(self.rng, t, ty).actor(actor).push_id();
        self.ids.push(id);
    }

    /// Someone matching `want` among the head-office and remote staff (the incidents are
    /// written on the head office's clock).
    fn person(&mut self, want: impl Fn(&Person) -> bool) -> usize {
        let t = self.t0;
        self.org
            .someone(self.rng, t, usize::MAX, |p| !p.base.abroad() && want(p))
            .or_else(|| {
                self.org
                    .someone(self.rng, t, usize::MAX, |p| p.active_at(t))
            })
            .unwrap_or(0)
    }

    fn foreign(&mut self, geo: &'static Geo) -> Place {
        Place {
            ip: net::foreign_ip(self.rng),
            geo,
        }
    }

    fn session(&self, i: usize, place: &Place, dev: &Device) -> String {
        let p = &self.org.people[i];
        session_actor(&p.id, &p.email, place, dev, true)
    }

    fn home_session(&self, i: usize) -> String {
        let p = &self.org.people[i];
        session_actor(&p.id, &p.email, &p.home, &p.devices[0], true)
    }

    fn office_session(&self, i: usize) -> String {
        let p = &self.org.people[i];
        session_actor(&p.id, &p.email, &p.office, &p.devices[0], true)
    }

    fn login_failed(&mut self, t: i64, actor: &str) {
        self.emit(t, "login.failed", None, actor, |o| {
            o.str("error_code", "invalid_password")
                .str("error_message", "Wrong email or password.");
        });
    }
}

fn is_owner(p: &Person) -> bool {
    p.role == Role::Owner
}

fn is_admin(p: &Person) -> bool {
    p.role == Role::Admin
}

fn is_dev_reader(p: &Person) -> bool {
    p.role == Role::Reader && p.dev
}

fn is_reader(p: &Person) -> bool {
    p.role == Role::Reader
}

/// Injects incident `plan.number` and returns its label.
pub fn inject(
    org: &mut Org,
    clock: &Clock,
    rng: &mut Rng,
    b: &mut Batch,
    plan: &Planned,
) -> Incident {
    let date = clock.date(plan.day);
    let t0 = clock.local(date, plan.secs);
    let mut x = Inj {
        org,
        rng,
        b,
        t0,
        ids: Vec::new(),
    };
    let (name, what) = run(&mut x, plan.number);
    let when = clock.describe(t0);
    Incident {
        name: name.to_string(),
        description: format!("{what} ({when})."),
        effective_at: t0,
        event_ids: x.ids,
    }
}

fn run(x: &mut Inj<'_>, number: u8) -> (&'static str, String) {
    let t0 = x.t0;
    match number {
        1 => {
            let i = x.person(is_owner);
            let actor = x.home_session(i);
            let (deleted, deactivated) = {
                let mut live = x.org.allowlists.iter_mut().filter(|a| !a.deleted);
                let a = live.next().expect("allowlists exist");
                a.deleted = true;
                let d = (a.id.clone(), a.name.clone(), a.ips.clone());
                let c = live.last().map(|c| (c.id.clone(), c.name.clone()));
                (d, c)
            };
            x.emit(t0, "ip_allowlist.deleted", None, &actor, |o| {
                o.str("id", &deleted.0)
                    .str("name", &deleted.1)
                    .strs("allowed_ips", &deleted.2);
            });
            if let Some((id, name)) = &deactivated {
                x.emit(
                    t0 + 95,
                    "ip_allowlist.config.deactivated",
                    None,
                    &actor,
                    |o| {
                        o.objs("configs", &[(id, name)], |o, (id, name)| {
                            o.str("id", id).str("name", name);
                        });
                    },
                );
            }
            (
                "ip-allowlist-removed",
                format!(
                    "{} deleted the '{}' IP allowlist and deactivated the '{}' allowlist configuration",
                    x.org.people[i].email,
                    deleted.1,
                    deactivated.as_ref().map(|d| d.1.as_str()).unwrap_or("")
                ),
            )
        }
        2 => {
            let i = x.person(is_owner);
            let actor = x.office_session(i);
            let org_id = x.org.id.clone();
            x.emit(t0, "scim.disabled", None, &actor, |o| {
                o.str("id", &org_id);
            });
            (
                "scim-disabled",
                format!(
                    "{} disabled SCIM provisioning for the organization",
                    x.org.people[i].email
                ),
            )
        }
        3 => {
            let admin = x.person(is_admin);
            let target = x.person(is_reader);
            let place = x.foreign(&FOREIGN[2]);
            let actor = x.session(admin, &place, &LAPTOPS[5].1);
            x.emit_bare(t0, "login.succeeded", &actor);
            let uid = x.org.people[target].id.clone();
            x.emit(t0 + 4 * 60 + 12, "user.updated", None, &actor, |o| {
                o.str("id", &uid).obj("changes_requested", |o| {
                    o.str("role", "owner");
                });
            });
            x.org.people[target].role = Role::Owner;
            (
                "user-promoted-to-owner",
                format!(
                    "Admin {} signed in from {} ({}) with an unfamiliar browser and made reader {} an owner",
                    x.org.people[admin].email,
                    place.ip,
                    place.geo.country,
                    x.org.people[target].email
                ),
            )
        }
        4 => {
            let i = x.person(is_owner);
            let actor = x.office_session(i);
            let first = *pick(x.rng, &["alex", "sam", "chris", "jordan", "taylor"]);
            let email = format!("{first}.admin{}@gmail.com", x.rng.u16(10..99));
            let invite = rng::id(x.rng, "invite-", 24);
            x.emit(t0, "invite.sent", None, &actor, |o| {
                o.str("id", &invite).obj("data", |o| {
                    o.str("email", &email).str("role", "owner");
                });
            });
            (
                "owner-invite-external-domain",
                format!(
                    "{} invited the personal address {email} as an organization owner",
                    x.org.people[i].email
                ),
            )
        }
        5 => {
            let i = x.person(is_dev_reader);
            let actor = x.home_session(i);
            x.emit_bare(t0, "login.succeeded", &actor);
            let pj = x.org.project_of(x.rng, i, t0);
            let key = rng::id(x.rng, "key_", 16);
            x.emit(t0 + 3 * 60 + 4, "api_key.created", Some(pj), &actor, |o| {
                o.str("id", &key).obj("data", |o| {
                    o.strs("scopes", &["api.all"]);
                });
            });
            x.org.projects[pj].keys.push(key);
            (
                "broad-key-created-at-night",
                format!(
                    "{} signed in at night and created an API key with all permissions in project '{}'",
                    x.org.people[i].email, x.org.projects[pj].title
                ),
            )
        }
        6 => {
            let i = x.person(|p| p.role != Role::Owner);
            let place = x.foreign(&FOREIGN[0]);
            let actor = x.session(i, &place, &HEADLESS);
            let mut t = t0;
            for _ in 0..12 {
                x.login_failed(t, &actor);
                t += between(x.rng, 14, 21);
            }
            x.emit_bare(t + 25, "login.succeeded", &actor);
            (
                "failed-login-burst",
                format!(
                    "12 failed logins for {} within 4 minutes from {} ({}), then a successful login from the same address",
                    x.org.people[i].email, place.ip, place.geo.country
                ),
            )
        }
        7 => {
            let place = x.foreign(&FOREIGN[7]);
            let mut targets: Vec<usize> = Vec::new();
            for _ in 0..200 {
                let i = x.person(|_| true);
                if !targets.contains(&i) {
                    targets.push(i);
                }
                if targets.len() == 10 {
                    break;
                }
            }
            let mut t = t0;
            for i in targets {
                let actor = x.session(i, &place, &SCRIPT);
                x.login_failed(t, &actor);
                t += between(x.rng, 45, 62);
            }
            (
                "password-spraying",
                format!(
                    "One address, {} ({}), failed to sign in as 10 different users within 10 minutes",
                    place.ip, place.geo.country
                ),
            )
        }
        8 => {
            let i = x.person(|p| p.role != Role::Owner);
            let mut t = t0;
            let mut places = Vec::new();
            for k in 0..6 {
                let geo = &FOREIGN[(k * 2 + 1) % FOREIGN.len()];
                let place = x.foreign(geo);
                let dev = if k % 2 == 0 { &HEADLESS } else { &SCRIPT };
                let actor = x.session(i, &place, dev);
                x.login_failed(t, &actor);
                places.push(place.geo.country);
                t += between(x.rng, 150, 230);
            }
            (
                "credential-stuffing",
                format!(
                    "{} failed to sign in from 6 different addresses ({}) within 20 minutes",
                    x.org.people[i].email,
                    places.join(", ")
                ),
            )
        }
        9 => {
            let i = x.person(|p| p.base == crate::people::Base::Office && p.role == Role::Reader);
            let actor = x.office_session(i);
            x.emit_bare(t0, "login.succeeded", &actor);
            let place = x.foreign(&FOREIGN[1]);
            let dev = LAPTOPS[2].1;
            let actor2 = x.session(i, &place, &dev);
            x.emit_bare(t0 + 40 * 60, "login.succeeded", &actor2);
            (
                "impossible-travel",
                format!(
                    "{} signed in from the New York office and 40 minutes later from {} ({})",
                    x.org.people[i].email, place.geo.city, place.geo.country
                ),
            )
        }
        10 => {
            let i = x.person(is_owner);
            let actor = x.home_session(i);
            let org_id = x.org.id.clone();
            x.emit(t0, "organization.updated", None, &actor, |o| {
                o.str("id", &org_id).obj("changes_requested", |o| {
                    o.str("api_call_logging", "disabled");
                });
            });
            (
                "api-call-logging-disabled",
                format!(
                    "{} turned API call logging off for the organization",
                    x.org.people[i].email
                ),
            )
        }
        11 => {
            let i = x.person(is_dev_reader);
            let pj = x.org.project_of(x.rng, i, t0);
            let key = if x.org.projects[pj].keys.is_empty() {
                rng::id(x.rng, "key_", 16)
            } else {
                pick(x.rng, &x.org.projects[pj].keys).clone()
            };
            let p = &x.org.people[i];
            let actor = user_key_actor(&key, &p.id, &p.email);
            let lim = &mut x.org.projects[pj].limits[0];
            let (rpm, tpm) = (lim.rpm * 100, lim.tpm * 100);
            let (old_rpm, old_tpm) = (lim.rpm, lim.tpm);
            lim.rpm = rpm;
            lim.tpm = tpm;
            let id = lim.id();
            x.emit(t0, "rate_limit.updated", Some(pj), &actor, |o| {
                o.str("id", &id).obj("changes_requested", |o| {
                    o.int("max_requests_per_1_minute", rpm)
                        .int("max_tokens_per_1_minute", tpm);
                });
            });
            (
                "rate-limit-raised-100x",
                format!(
                    "An API key of {} raised {id} in project '{}' from {old_rpm} to {rpm} requests/min and {old_tpm} to {tpm} tokens/min",
                    x.org.people[i].email, x.org.projects[pj].title
                ),
            )
        }
        12 => {
            let i = x.person(is_admin);
            let actor = x.office_session(i);
            let mut t = t0;
            let mut titles = Vec::new();
            for k in 0..5 {
                let Some(pj) = x.org.live_project(x.rng, t) else {
                    break;
                };
                let ty = if k < 4 {
                    "project.archived"
                } else {
                    "project.deleted"
                };
                let pid = x.org.projects[pj].id.clone();
                x.emit(t, ty, Some(pj), &actor, |o| {
                    o.str("id", &pid);
                });
                x.org.projects[pj].archived_at = t;
                titles.push(x.org.projects[pj].title.clone());
                t += between(x.rng, 150, 220);
            }
            (
                "project-archive-spree",
                format!(
                    "{} archived 4 projects and deleted a fifth within 15 minutes ({})",
                    x.org.people[i].email,
                    titles.join(", ")
                ),
            )
        }
        13 => {
            let i = x.person(is_owner);
            let actor = x.office_session(i);
            let id = rng::id(x.rng, "extkey_", 24);
            let arn = format!(
                "arn:aws:kms:us-east-1:111122223333:key/{}",
                rng::uuid(x.rng)
            );
            x.emit(t0, "external_key.registered", None, &actor, |o| {
                o.str("id", &id).obj("data", |o| {
                    o.str("provider", "aws_kms")
                        .str("key_arn", &arn)
                        .str("region", "us-east-1");
                });
            });
            (
                "external-key-registered",
                format!(
                    "{} registered an external encryption key ({arn})",
                    x.org.people[i].email
                ),
            )
        }
        14 => {
            let i = x.person(is_admin);
            let actor = x.home_session(i);
            let id = rng::id(x.rng, "wip_", 24);
            x.emit(
                t0,
                "workload_identity_provider.created",
                None,
                &actor,
                |o| {
                    o.str("id", &id).obj("data", |o| {
                        o.str("name", "build-runner-oidc")
                            .str("issuer", "https://oidc.build-runner.example.net")
                            .str("audience", "https://api.openai.com/v1");
                    });
                },
            );
            (
                "workload-identity-provider-created",
                format!(
                    "{} added a workload identity provider trusting https://oidc.build-runner.example.net",
                    x.org.people[i].email
                ),
            )
        }
        15 => {
            let i = x.person(is_dev_reader);
            let actor = x.home_session(i);
            let pj = x.org.project_of(x.rng, i, t0);
            let outside = rng::id(x.rng, "proj_", 24);
            let ckpt = format!(
                "ft:gpt-4.1-mini-2025-04-14:example-corp:support-v3:{}:ckpt-step-1500",
                rng::id(x.rng, "", 8)
            );
            let id = rng::id(x.rng, "cp_", 24);
            x.emit(t0, "checkpoint.permission.created", Some(pj), &actor, |o| {
                o.str("id", &id).obj("data", |o| {
                    o.str("project_id", &outside)
                        .str("fine_tuned_model_checkpoint", &ckpt);
                });
            });
            (
                "checkpoint-shared-outside-org",
                format!(
                    "{} shared fine-tuned checkpoint {ckpt} with project {outside}, which is not in the organization",
                    x.org.people[i].email
                ),
            )
        }
        16 => {
            let i = x.person(is_admin);
            let actor = x.office_session(i);
            let a = x.org.certificates.remove(0);
            let pem = fake_pem(x.rng);
            x.emit(t0, "certificate.deleted", None, &actor, |o| {
                o.str("id", &a.id)
                    .str("name", &a.name)
                    .str("certificate", &pem);
            });
            let c = x
                .org
                .certificates
                .first()
                .map(|c| (c.id.clone(), c.name.clone()));
            if let Some((id, name)) = &c {
                x.emit(t0 + 70, "certificates.deactivated", None, &actor, |o| {
                    o.objs("certificates", &[(id, name)], |o, (id, name)| {
                        o.str("id", id).str("name", name);
                    });
                });
            }
            (
                "certificates-removed",
                format!(
                    "{} deleted certificate '{}' and deactivated '{}'",
                    x.org.people[i].email,
                    a.name,
                    c.map(|c| c.1).unwrap_or_default()
                ),
            )
        }
        17 => {
            let i = x.person(is_admin);
            let actor = x.office_session(i);
            let id = rng::id(x.rng, "role_", 24);
            let org_id = x.org.id.clone();
            x.emit(t0, "role.created", None, &actor, |o| {
                o.str("id", &id)
                    .str("role_name", "Support Tier 2")
                    .strs("permissions", &["api.model.read", "api.files.read"])
                    .str("resource_type", "organization")
                    .str("resource_id", &org_id);
            });
            x.emit(t0 + 4 * 60 + 30, "role.updated", None, &actor, |o| {
                o.str("id", &id).obj("changes_requested", |o| {
                    o.strs(
                        "permissions_added",
                        &[
                            "api.organization.owners.write",
                            "api.organization.admin_api_keys.write",
                            "api.organization.roles.write",
                        ],
                    )
                    .strs("permissions_removed", &[] as &[&str])
                    .str("description", "Temporary access for the migration");
                });
            });
            (
                "broad-custom-role",
                format!(
                    "{} created the custom role 'Support Tier 2' and then added owner, admin-key and role management permissions to it",
                    x.org.people[i].email
                ),
            )
        }
        18 => {
            let i = x.person(is_admin);
            let actor = x.home_session(i);
            let pj = x.org.project_of(x.rng, i, t0);
            let svc = rng::id(x.rng, "svc_acct_", 24);
            x.emit(t0, "service_account.created", Some(pj), &actor, |o| {
                o.str("id", &svc).obj("data", |o| {
                    o.str("role", "owner");
                });
            });
            let key = rng::id(x.rng, "key_", 16);
            let svc_actor = service_key_actor(&rng::id(x.rng, "key_", 16), &svc);
            x.emit(
                t0 + 3 * 60 + 10,
                "api_key.created",
                Some(pj),
                &svc_actor,
                |o| {
                    o.str("id", &key).obj("data", |o| {
                        o.strs("scopes", &["api.all"]);
                    });
                },
            );
            x.org.projects[pj].service_accounts.push(svc.clone());
            (
                "owner-service-account-key",
                format!(
                    "{} created service account {svc} with role owner in project '{}'; minutes later that service account created an API key",
                    x.org.people[i].email, x.org.projects[pj].title
                ),
            )
        }
        19 => {
            let i = x.person(is_admin);
            let actor = x.office_session(i);
            let mut t = t0;
            let mut gone = Vec::new();
            for _ in 0..5 {
                let taken: Vec<String> = gone.clone();
                let u = x.person(|p| p.role == Role::Reader && !taken.contains(&p.email));
                let uid = x.org.people[u].id.clone();
                x.emit(t, "user.deleted", None, &actor, |o| {
                    o.str("id", &uid);
                });
                x.org.people[u].left_at = t;
                gone.push(x.org.people[u].email.clone());
                t += between(x.rng, 90, 130);
            }
            (
                "user-removal-spree",
                format!(
                    "{} removed 5 users within 10 minutes ({})",
                    x.org.people[i].email,
                    gone.join(", ")
                ),
            )
        }
        20 => {
            let i = x.person(is_owner);
            let actor = x.home_session(i);
            let key = rng::id(x.rng, "key_", 16);
            let tail = rng::id(x.rng, "", 4);
            x.emit(t0, "tenant.admin_api_key.created", None, &actor, |o| {
                o.str("id", &key)
                    .str("name", "sync-bot")
                    .str("redacted_value", &format!("sk-admin-...{tail}"))
                    .strs("scopes", &["api.all"]);
            });
            let sso = rng::id(x.rng, "ssoconn_", 24);
            x.emit(
                t0 + 2 * 60 + 40,
                "tenant.sso_connection.deleted",
                None,
                &actor,
                |o| {
                    o.str("id", &sso)
                        .str("name", "Okta SAML")
                        .strs("domains", &["example.com"]);
                },
            );
            let policy = x.org.session_policy.clone();
            x.emit(
                t0 + 5 * 60 + 15,
                "tenant.session_policy.deleted",
                None,
                &actor,
                |o| {
                    o.str("id", &policy)
                        .str("name", "Re-authenticate every 12 hours");
                },
            );
            (
                "tenant-security-changes",
                format!(
                    "{} created a tenant admin API key, deleted the Okta SSO connection and deleted the session policy",
                    x.org.people[i].email
                ),
            )
        }
        _ => {
            let i = x.person(is_owner);
            let actor = x.office_session(i);
            let org_id = x.org.id.clone();
            x.emit(
                t0,
                "organization.data_retention.updated",
                None,
                &actor,
                |o| {
                    o.str("id", &org_id).obj("changes_requested", |o| {
                        o.int("retention_days", 1);
                    });
                },
            );
            (
                "unknown-event-type",
                format!(
                    "{} changed data retention; the event type organization.data_retention.updated is not in the documented list",
                    x.org.people[i].email
                ),
            )
        }
    }
}

/// A PEM block of the usual size whose body is random base64.
fn fake_pem(rng: &mut Rng) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::from("-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIU");
    let mut col = 20;
    for _ in 0..1180 {
        s.push(B64[rng.usize(..64)] as char);
        col += 1;
        if col == 64 {
            s.push('\n');
            col = 0;
        }
    }
    s.push_str("==\n-----END CERTIFICATE-----\n");
    s
}
