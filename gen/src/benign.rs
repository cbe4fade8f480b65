//! Ordinary days: sign-ins and sign-outs on a working-hours rhythm, routine administration,
//! the nightly key rotation job, CI runs with an owner's admin key and tenant system events.

use fastrand::Rng;

use crate::clock::{self, Clock, hm, is_weekend};
use crate::event::{Batch, session_actor, user_key_actor};
use crate::net::{self, Place};
use crate::org::{MODELS, Named, Org, SCOPES};
use crate::people::{self, Base, Device, Role, Trip, Vpn};
use crate::rng::{self, between, chance, normal, pick, poisson};

/// Sessions per working day beyond the first, scaled by each person's `busy` factor.
const EXTRA_SESSIONS: f64 = 2.6;
/// Mean actions per session.
const DEV_ACTIONS: f64 = 0.22;
const ADMIN_ACTIONS: f64 = 0.45;
const OWNER_ACTIONS: f64 = 0.35;
const READER_ACTIONS: f64 = 0.02;

/// Chooses business travellers (one per ~60 people) for histories of ten days or more.
pub fn plan_trips(org: &mut Org, clock: &Clock, rng: &mut Rng) {
    if clock.days < 10 {
        return;
    }
    let london = jiff::tz::TimeZone::get("Europe/London").expect("bundled zone");
    let n = (org.people.len() / 60).max(1);
    for k in 0..n {
        // A Tuesday-to-Thursday trip somewhere in the middle of the history.
        let lo = clock.days / 4 + (k as u32 * 7) % (clock.days / 2).max(1);
        let Some(from) = (lo..clock.days.saturating_sub(4))
            .find(|d| clock.date(*d).weekday() == jiff::civil::Weekday::Tuesday)
        else {
            return;
        };
        let Some(i) = org.someone(rng, i64::MIN + 1, usize::MAX, |p| {
            p.role == Role::Reader && p.dev && p.base != Base::Canada && p.trip.is_none()
        }) else {
            return;
        };
        org.people[i].trip = Some(Trip {
            from,
            to: from + 3,
            tz: london.clone(),
            place: Place {
                ip: format!("198.18.200.{}", 10 + k % 200),
                geo: &net::LONDON_HOTEL,
            },
        });
    }
}

/// Generates one ordinary day.
pub fn day(org: &mut Org, clock: &Clock, rng: &mut Rng, b: &mut Batch, day: u32) {
    let date = clock.date(day);
    nightly_job(org, clock, rng, b, date);
    let day_start = clock.local(date, 0);
    for i in 0..org.people.len() {
        if org.people[i].active_at(day_start) {
            person_day(org, clock, rng, b, day, i);
        }
    }
    if !is_weekend(date) {
        ci_runs(org, clock, rng, b, date);
    }
    system_events(org, clock, rng, b, date);
}

#[derive(Clone, Copy, PartialEq)]
enum Loc {
    Office,
    Home,
    Trip,
}

fn person_day(org: &mut Org, clock: &Clock, rng: &mut Rng, b: &mut Batch, day: u32, i: usize) {
    let date = clock.date(day);
    let p = &org.people[i];
    let trip = p.trip.as_ref().filter(|t| t.from <= day && day < t.to);
    let leaving = p.trip.as_ref().is_some_and(|t| t.from == day + 1);
    // (wall-clock seconds, duration seconds, location)
    let mut plan: Vec<(i64, i64, Loc)> = Vec::with_capacity(6);
    if is_weekend(date) {
        if chance(rng, 0.05) {
            plan.push((
                between(rng, hm(10, 0), hm(20, 0)),
                between(rng, 180, 2400),
                Loc::Home,
            ));
        }
    } else if chance(rng, 0.93) {
        let start = p.start_min * 60 + (normal(rng) * 900.0) as i64;
        let mut end = p.end_min * 60 + (normal(rng) * 1200.0) as i64;
        if leaving {
            end = end.min(hm(13, 0));
        }
        let loc = if trip.is_some() {
            Loc::Trip
        } else if p.base == Base::Office && chance(rng, p.office_share) {
            Loc::Office
        } else {
            Loc::Home
        };
        let first = start + between(rng, 0, 1200);
        plan.push((first, between(rng, 900, 7200), loc));
        let extra = poisson(rng, EXTRA_SESSIONS * p.busy * org.reauth);
        for _ in 0..extra {
            let s = between(rng, first + 1800, (end - 600).max(first + 1900));
            plan.push((s, between(rng, 300, 5400), loc));
        }
        if !leaving && trip.is_none() && chance(rng, 0.1) {
            plan.push((
                between(rng, hm(19, 30), hm(22, 45)),
                between(rng, 120, 1800),
                Loc::Home,
            ));
        }
    }
    let sessions: Vec<(i64, i64, Loc)> = plan
        .into_iter()
        .map(|(secs, dur, loc)| {
            let t = match trip {
                Some(tr) if loc == Loc::Trip => clock::at(&tr.tz, date, secs),
                _ => match &p.zone {
                    Some(zone) => clock::at(zone, date, secs),
                    None => clock.local(date, secs),
                },
            };
            (t, dur, loc)
        })
        .collect();
    for (t, dur, loc) in sessions {
        session(org, rng, b, i, t, dur, loc);
    }
}

/// One sign-in: maybe a typo first, then the login, some work, maybe a sign-out.
fn session(org: &mut Org, rng: &mut Rng, b: &mut Batch, i: usize, t: i64, dur: i64, loc: Loc) {
    let p = &org.people[i];
    if !p.active_at(t) {
        return;
    }
    let elsewhere;
    let laptop = p.laptop(t);
    let (place, dev): (&Place, Device) = match loc {
        Loc::Office => (&p.office, laptop),
        Loc::Trip => (&p.trip.as_ref().expect("on a trip").place, laptop),
        Loc::Home if p.cloud.is_some() && chance(rng, 0.15) => {
            (p.cloud.as_ref().expect("has one"), laptop)
        }
        Loc::Home if p.vpn == Vpn::Corporate && chance(rng, 0.5) => {
            elsewhere = Place {
                ip: net::corporate_vpn_ip(i + (t / 3600) as usize),
                geo: &net::CORPORATE_VPN,
            };
            (&elsewhere, laptop)
        }
        Loc::Home if p.vpn == Vpn::Consumer && chance(rng, 0.7) => {
            // The service picks the fastest exit; it changes now and then.
            let exit = (i + (t / (9 * 86_400)) as usize) % net::CONSUMER_VPN.len();
            elsewhere = Place {
                ip: net::consumer_vpn_ip(exit, i),
                geo: &net::CONSUMER_VPN[exit],
            };
            (&elsewhere, laptop)
        }
        Loc::Home => {
            let place = match &p.home6 {
                Some(v6) if chance(rng, 0.5) => v6,
                _ => &p.home,
            };
            let dev = if p.devices.len() > 1 && chance(rng, 0.4) {
                p.devices[1]
            } else {
                laptop
            };
            (place, dev)
        }
    };
    let actor = session_actor(&p.id, &p.email, place, &dev, !chance(rng, 0.03));
    let user_id = p.id.clone();
    let lambda = match (p.role, p.dev) {
        (Role::Owner, d) => OWNER_ACTIONS + if d { DEV_ACTIONS } else { 0.0 },
        (Role::Admin, d) => ADMIN_ACTIONS + if d { DEV_ACTIONS } else { 0.0 },
        (Role::Reader, true) => DEV_ACTIONS,
        (Role::Reader, false) => READER_ACTIONS,
    };

    if chance(rng, 0.03) {
        let fails = if chance(rng, 0.15) { 2 } else { 1 };
        let mut tf = t;
        for _ in 0..fails {
            tf -= between(rng, 6, 45);
            let (code, msg) = if chance(rng, 0.8) {
                ("invalid_password", "Wrong email or password.")
            } else {
                (
                    "mfa_failed",
                    "The verification code is invalid or has expired.",
                )
            };
            b.event(rng, tf, "login.failed")
                .actor(&actor)
                .detail(|o| {
                    o.str("error_code", code).str("error_message", msg);
                })
                .push();
        }
    }
    if chance(rng, 0.06) {
        b.event(rng, t, "tenant.principal_authentication_policy.resolved")
            .detail(|o| {
                o.str("principal_id", &user_id)
                    .str("principal_type", "user")
                    .str("policy_id", &org.session_policy)
                    .str("result", "allowed");
            })
            .push();
    }
    b.event(rng, t, "login.succeeded").actor(&actor).push();
    let n = poisson(rng, lambda);
    for _ in 0..n {
        let ta = t + between(rng, 45, (dur - 20).max(60));
        act(org, rng, b, i, &actor, ta);
    }
    if chance(rng, 0.5) {
        if chance(rng, 0.002) {
            b.event(rng, t + dur, "logout.failed")
                .actor(&actor)
                .detail(|o| {
                    o.str("error_code", "session_not_found")
                        .str("error_message", "The session has already expired.");
                })
                .push();
        } else {
            b.event(rng, t + dur, "logout.succeeded")
                .actor(&actor)
                .push();
        }
    }
}

#[derive(Clone, Copy)]
enum Action {
    KeyCreate,
    KeyUpdate,
    KeyDelete,
    RateLimit,
    SvcCreate,
    SvcUpdate,
    ProjectUpdate,
    Tunnel,
    ResourceDeleted,
    UserAddProject,
    UserUpdateProject,
    UserUpdateReader,
    RoleAssign,
    RoleUnassign,
    GroupCreate,
    GroupUpdate,
    ProjectCreate,
    Invite,
    Offboard,
    ProjectArchive,
    CertCreate,
    AllowlistUpdate,
    OrgUpdate,
    TenantBilling,
    TenantUsageLimit,
    TenantSessionPolicy,
}

/// (action, weight for developers, for admins and owners, extra for owners, for other readers)
static MENU: [(Action, f64, f64, f64, f64); 26] = [
    (Action::KeyCreate, 10.0, 0.0, 0.0, 1.0),
    (Action::KeyUpdate, 4.0, 0.0, 0.0, 0.0),
    (Action::KeyDelete, 4.0, 0.0, 0.0, 0.3),
    (Action::RateLimit, 1.5, 1.0, 0.0, 0.0),
    (Action::SvcCreate, 0.5, 0.5, 0.0, 0.0),
    (Action::SvcUpdate, 0.3, 0.3, 0.0, 0.0),
    (Action::ProjectUpdate, 0.5, 0.8, 0.0, 0.0),
    (Action::Tunnel, 0.4, 0.0, 0.0, 0.0),
    (Action::ResourceDeleted, 0.4, 0.0, 0.0, 0.0),
    (Action::UserAddProject, 0.0, 3.0, 0.0, 0.0),
    (Action::UserUpdateProject, 0.0, 1.2, 0.0, 0.0),
    (Action::UserUpdateReader, 0.0, 0.5, 0.5, 0.0),
    (Action::RoleAssign, 0.0, 1.5, 0.0, 0.0),
    (Action::RoleUnassign, 0.0, 0.8, 0.0, 0.0),
    (Action::GroupCreate, 0.0, 0.3, 0.0, 0.0),
    (Action::GroupUpdate, 0.0, 0.4, 0.0, 0.0),
    (Action::ProjectCreate, 0.15, 0.4, 0.0, 0.0),
    (Action::Invite, 0.0, 0.2, 0.1, 0.0),
    (Action::Offboard, 0.0, 0.07, 0.02, 0.0),
    (Action::ProjectArchive, 0.0, 0.2, 0.0, 0.0),
    (Action::CertCreate, 0.0, 0.06, 0.04, 0.0),
    (Action::AllowlistUpdate, 0.0, 0.12, 0.08, 0.0),
    (Action::OrgUpdate, 0.0, 0.0, 0.15, 0.0),
    (Action::TenantBilling, 0.0, 0.0, 0.4, 0.0),
    (Action::TenantUsageLimit, 0.0, 0.2, 0.4, 0.0),
    (Action::TenantSessionPolicy, 0.0, 0.0, 0.1, 0.0),
];

fn choose_action(rng: &mut Rng, role: Role, dev: bool) -> Action {
    let admin = matches!(role, Role::Admin | Role::Owner);
    let weights: Vec<f64> = MENU
        .iter()
        .map(|(_, d, a, o, r)| {
            let mut w = 0.0;
            if dev {
                w += d;
            }
            if admin {
                w += a;
            }
            if role == Role::Owner {
                w += o;
            }
            if !dev && !admin {
                w += r;
            }
            w
        })
        .collect();
    MENU[rng::weighted(rng, &weights)].0
}

static GROUP_NAMES: [&str; 8] = [
    "Design",
    "Finance",
    "Legal",
    "ML Platform",
    "Customer Success",
    "Contractors",
    "Interns 2026",
    "Solutions",
];

static OFFICE_RANGES: [&str; 4] = [
    "203.0.113.16/29",
    "203.0.113.24/29",
    "203.0.113.32/28",
    "203.0.113.48/28",
];

/// One routine action by person `i` at `t` through `actor`.
fn act(org: &mut Org, rng: &mut Rng, b: &mut Batch, i: usize, actor: &str, t: i64) {
    let role = org.people[i].role;
    let dev = org.people[i].dev;
    let mut action = choose_action(rng, role, dev);
    let pi = org.project_of(rng, i, t);
    if matches!(action, Action::KeyUpdate | Action::KeyDelete) && org.projects[pi].keys.len() < 2 {
        action = Action::KeyCreate;
    }
    match action {
        Action::KeyCreate => {
            let key = rng::id(rng, "key_", 16);
            let scopes = *pick(rng, &SCOPES);
            let p = &org.projects[pi];
            b.event(rng, t, "api_key.created")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &key).obj("data", |o| {
                        o.strs("scopes", scopes);
                    });
                })
                .push();
            org.projects[pi].keys.push(key);
        }
        Action::KeyUpdate => {
            let p = &org.projects[pi];
            let key = pick(rng, &p.keys).clone();
            let scopes = *pick(rng, &SCOPES);
            b.event(rng, t, "api_key.updated")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &key).obj("changes_requested", |o| {
                        o.strs("scopes", scopes);
                    });
                })
                .push();
        }
        Action::KeyDelete => {
            let k = rng.usize(..org.projects[pi].keys.len());
            let key = org.projects[pi].keys.swap_remove(k);
            let p = &org.projects[pi];
            b.event(rng, t, "api_key.deleted")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &key);
                })
                .push();
        }
        Action::RateLimit => modest_rate_limit(org, rng, b, pi, actor, t),
        Action::SvcCreate => {
            let svc = rng::id(rng, "svc_acct_", 24);
            let p = &org.projects[pi];
            b.event(rng, t, "service_account.created")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &svc).obj("data", |o| {
                        o.str("role", "member");
                    });
                })
                .push();
            org.projects[pi].service_accounts.push(svc);
        }
        Action::SvcUpdate => {
            let p = &org.projects[pi];
            let Some(svc) =
                (!p.service_accounts.is_empty()).then(|| pick(rng, &p.service_accounts).clone())
            else {
                return;
            };
            b.event(rng, t, "service_account.updated")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &svc).obj("changes_requested", |o| {
                        o.str("role", "member");
                    });
                })
                .push();
        }
        Action::ProjectUpdate => {
            // The default project keeps its name.
            let Some(pi) = (pi != 0).then_some(pi).or_else(|| org.live_project(rng, t)) else {
                return;
            };
            let p = &org.projects[pi];
            let base = p.title.split(" (").next().unwrap_or(&p.title).to_string();
            let title = format!(
                "{base} ({})",
                pick(rng, &["beta", "internal", "prod", "pilot", "EU", "v2"])
            );
            let by_key = chance(rng, 0.3) && !p.keys.is_empty();
            let key_actor;
            let actor = if by_key {
                let person = &org.people[i];
                key_actor = user_key_actor(pick::<String>(rng, &p.keys), &person.id, &person.email);
                key_actor.as_str()
            } else {
                actor
            };
            b.event(rng, t, "project.updated")
                .project(&p.id, &title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &p.id).obj("changes_requested", |o| {
                        o.str("title", &title);
                    });
                })
                .push();
            org.projects[pi].title = title;
        }
        Action::Tunnel => {
            let ty = *pick(
                rng,
                &[
                    "tunnel.created",
                    "tunnel.updated",
                    "tunnel.updated",
                    "tunnel.deleted",
                ],
            );
            let p = &org.projects[pi];
            b.event(rng, t, ty)
                .project(&p.id, &p.title)
                .actor(actor)
                .push();
        }
        Action::ResourceDeleted => {
            let p = &org.projects[pi];
            b.event(rng, t, "resource.deleted")
                .project(&p.id, &p.title)
                .actor(actor)
                .push();
        }
        Action::UserAddProject => {
            let Some(pj) = org.live_project(rng, t) else {
                return;
            };
            let Some(u) = org.someone(rng, t, i, |q| !q.projects.contains(&pj)) else {
                return;
            };
            let p = &org.projects[pj];
            b.event(rng, t, "user.added")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.people[u].id).obj("data", |o| {
                        o.str("role", "member");
                    });
                })
                .push();
            org.people[u].projects.push(pj);
        }
        Action::UserUpdateProject => {
            let Some(u) = org.someone(rng, t, i, |q| q.projects.contains(&pi)) else {
                return;
            };
            let p = &org.projects[pi];
            b.event(rng, t, "user.updated")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.people[u].id)
                        .obj("changes_requested", |o| {
                            o.str("role", "member");
                        });
                })
                .push();
        }
        Action::UserUpdateReader => {
            let Some(u) = org.someone(rng, t, i, |q| q.role == Role::Reader) else {
                return;
            };
            b.event(rng, t, "user.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.people[u].id)
                        .obj("changes_requested", |o| {
                            o.str("role", "reader");
                        });
                })
                .push();
        }
        Action::RoleAssign | Action::RoleUnassign => {
            let ty = if matches!(action, Action::RoleAssign) {
                "role.assignment.created"
            } else {
                "role.assignment.deleted"
            };
            let (principal, ptype) = if chance(rng, 0.8) {
                let Some(u) = org.someone(rng, t, i, |_| true) else {
                    return;
                };
                (org.people[u].id.clone(), "user")
            } else {
                (pick(rng, &org.groups).id.clone(), "group")
            };
            let assignment = rng::id(rng, "ra_", 24);
            let p = &org.projects[pi];
            let on_project = chance(rng, 0.7);
            let mut e = b.event(rng, t, ty);
            if on_project {
                e = e.project(&p.id, &p.title);
            }
            e.actor(actor)
                .detail(|o| {
                    o.str("id", &assignment)
                        .str("principal_id", &principal)
                        .str("principal_type", ptype);
                    if on_project {
                        o.str("resource_id", &p.id).str("resource_type", "project");
                    } else {
                        o.str("resource_id", &org.id)
                            .str("resource_type", "organization");
                    }
                })
                .push();
        }
        Action::GroupCreate => {
            let name = pick(rng, &GROUP_NAMES).to_string();
            if org.groups.iter().any(|g| g.name == name) {
                return;
            }
            let id = rng::id(rng, "group_", 24);
            b.event(rng, t, "group.created")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &id).obj("data", |o| {
                        o.str("group_name", &name);
                    });
                })
                .push();
            org.groups.push(Named { id, name });
        }
        Action::GroupUpdate => {
            let g = rng.usize(..org.groups.len());
            let base = org.groups[g]
                .name
                .split(" - ")
                .next()
                .unwrap_or_default()
                .to_string();
            let name = format!("{base} - {}", pick(rng, &["Core", "Leads", "US", "All"]));
            b.event(rng, t, "group.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.groups[g].id)
                        .obj("changes_requested", |o| {
                            o.str("group_name", &name);
                        });
                })
                .push();
            org.groups[g].name = name;
        }
        Action::ProjectCreate => create_project(org, rng, b, i, actor, t),
        Action::Invite => invite(org, rng, b, actor, t),
        Action::Offboard => {
            let Some(u) = org.someone(rng, t, i, |q| q.role == Role::Reader) else {
                return;
            };
            b.event(rng, t, "user.deleted")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.people[u].id);
                })
                .push();
            org.people[u].left_at = t;
        }
        Action::ProjectArchive => {
            let live = org.projects.iter().filter(|p| p.live_at(t)).count();
            if live <= 7 {
                create_project(org, rng, b, i, actor, t);
                return;
            }
            let Some(pj) = org.live_project(rng, t) else {
                return;
            };
            let p = &org.projects[pj];
            let key_actor;
            let actor = if chance(rng, 0.5) && !p.keys.is_empty() {
                let person = &org.people[i];
                key_actor = user_key_actor(pick::<String>(rng, &p.keys), &person.id, &person.email);
                key_actor.as_str()
            } else {
                actor
            };
            b.event(rng, t, "project.archived")
                .project(&p.id, &p.title)
                .actor(actor)
                .detail(|o| {
                    o.str("id", &p.id);
                })
                .push();
            org.projects[pj].archived_at = t;
        }
        Action::CertCreate => {
            let id = rng::id(rng, "cert_", 24);
            let name = format!(
                "{}-{}",
                pick(
                    rng,
                    &["mtls-client", "gateway", "batch-uploader", "sso-proxy"]
                ),
                rng.u32(2026..=2027)
            );
            b.event(rng, t, "certificate.created")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &id).str("name", &name);
                })
                .push();
            if chance(rng, 0.6) {
                let ta = t + between(rng, 30, 600);
                b.event(rng, ta, "certificates.activated")
                    .actor(actor)
                    .detail(|o| {
                        o.objs("certificates", &[(&id, &name)], |o, (id, name)| {
                            o.str("id", id).str("name", name);
                        });
                    })
                    .push();
            }
            org.certificates.push(Named { id, name });
        }
        Action::AllowlistUpdate => {
            let Some(a) = org.allowlists.iter().position(|a| !a.deleted) else {
                return;
            };
            let add = if org.allowlists[a].name == "Toronto remote" {
                format!("192.0.2.{}/32", rng.u8(20..250))
            } else {
                let Some(r) = OFFICE_RANGES
                    .iter()
                    .find(|r| !org.allowlists[a].ips.iter().any(|x| x == *r))
                else {
                    return;
                };
                r.to_string()
            };
            org.allowlists[a].ips.push(add);
            let al = &org.allowlists[a];
            b.event(rng, t, "ip_allowlist.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &al.id).strs("allowed_ips", &al.ips);
                })
                .push();
        }
        Action::OrgUpdate => {
            let (k, v) = *pick(
                rng,
                &[
                    ("title", "Example Corp"),
                    ("title", "Example Corp Platform"),
                    (
                        "description",
                        "Production and R&D workloads for Example Corp",
                    ),
                    (
                        "description",
                        "Example Corp: customer support, search and internal tools",
                    ),
                ],
            );
            b.event(rng, t, "organization.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.id).obj("changes_requested", |o| {
                        o.str(k, v);
                    });
                })
                .push();
        }
        Action::TenantBilling => {
            let th = *pick(
                rng,
                &[[500, 1000, 2500], [1000, 2500, 5000], [2000, 5000, 10000]],
            );
            b.event(rng, t, "tenant.billing.alerts.updated")
                .actor(actor)
                .detail(|o| {
                    o.ints("thresholds_usd", &th).str("notify", "owners");
                })
                .push();
        }
        Action::TenantUsageLimit => {
            let Some(u) = org.someone(rng, t, i, |_| true) else {
                return;
            };
            let limit = *pick(rng, &[100, 200, 250, 500]);
            b.event(rng, t, "tenant.usage_limit.user.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("user_id", &org.people[u].id)
                        .int("monthly_limit_usd", limit);
                })
                .push();
        }
        Action::TenantSessionPolicy => {
            let idle = *pick(rng, &[30, 60, 120]);
            b.event(rng, t, "tenant.session_policy.updated")
                .actor(actor)
                .detail(|o| {
                    o.str("id", &org.session_policy)
                        .int("idle_timeout_minutes", idle)
                        .int("max_session_hours", 12);
                })
                .push();
        }
    }
}

/// A modest rate limit change: usually lowered, sometimes raised by at most 2x.
fn modest_rate_limit(org: &mut Org, rng: &mut Rng, b: &mut Batch, pi: usize, actor: &str, t: i64) {
    let p = &mut org.projects[pi];
    let l = rng.usize(..p.limits.len());
    let factor = if chance(rng, 0.6) {
        0.5 + rng.f64() * 0.4
    } else {
        1.1 + rng.f64() * 0.9
    };
    let which = rng.u8(..4);
    let lim = &mut p.limits[l];
    // Tuning stays within the usage tier: between an eighth and two and a half times the
    // model's default.
    let (rpm0, tpm0) = MODELS
        .iter()
        .find(|(m, _, _)| *m == lim.model)
        .map_or((lim.rpm, lim.tpm), |(_, r, t)| (*r, *t));
    let tuned = |v: i64, v0: i64, unit: f64| {
        let x = (v as f64 * factor).clamp(v0 as f64 / 8.0, v0 as f64 * 2.5);
        ((x / unit).round() * unit) as i64
    };
    let rpm = tuned(lim.rpm, rpm0, 10.0).max(10);
    let tpm = tuned(lim.tpm, tpm0, 1000.0).max(1000);
    if which != 1 {
        lim.rpm = rpm;
    }
    if which != 0 {
        lim.tpm = tpm;
    }
    let id = lim.id();
    let p = &org.projects[pi];
    b.event(rng, t, "rate_limit.updated")
        .project(&p.id, &p.title)
        .actor(actor)
        .detail(|o| {
            o.str("id", &id).obj("changes_requested", |o| {
                if which != 1 {
                    o.int("max_requests_per_1_minute", rpm);
                }
                if which != 0 {
                    o.int("max_tokens_per_1_minute", tpm);
                }
            });
        })
        .push();
}

fn create_project(org: &mut Org, rng: &mut Rng, b: &mut Batch, i: usize, actor: &str, t: i64) {
    let title = org.next_project_title();
    let pj = org.add_project(rng, title);
    let p = &org.projects[pj];
    b.event(rng, t, "project.created")
        .project(&p.id, &p.title)
        .actor(actor)
        .detail(|o| {
            o.str("id", &p.id).obj("data", |o| {
                o.str("name", &p.slug).str("title", &p.title);
            });
        })
        .push();
    org.people[i].projects.push(pj);
}

/// Companies whose contractors are invited as readers.
static PARTNER_DOMAINS: [&str; 3] = [
    "northwind-partners.example.net",
    "fabrikam-design.example.org",
    "contoso-consulting.example.net",
];

/// Onboarding: an invite to a corporate address (in large orgs sometimes a partner's) as reader, accepted hours later; the new
/// person signs in and is added to the organization, then works from the next day on.
fn invite(org: &mut Org, rng: &mut Rng, b: &mut Batch, actor: &str, t: i64) {
    let mut email = people::new_email(rng, &mut org.emails).to_ascii_lowercase();
    if org.people.len() >= crate::habits::OFFICES_FROM && chance(rng, 0.12) {
        // A contractor or partner, invited at their own company's address.
        let local = email.split('@').next().unwrap_or("guest").to_string();
        email = format!("{local}@{}", pick(rng, &PARTNER_DOMAINS));
    }
    let invite_id = rng::id(rng, "invite-", 24);
    b.event(rng, t, "invite.sent")
        .actor(actor)
        .detail(|o| {
            o.str("id", &invite_id).obj("data", |o| {
                o.str("email", &email).str("role", "reader");
            });
        })
        .push();
    let accepted = t + between(rng, 1800, 26 * 3600);
    let n = org.people.len();
    let person = people::new_person(rng, n, Role::Reader, email, accepted + 60);
    let place = person.home.clone();
    let new_actor = session_actor(&person.id, &person.email, &place, &person.devices[0], true);
    let signed_in = accepted - between(rng, 20, 90);
    b.event(rng, signed_in, "login.succeeded")
        .actor(&new_actor)
        .push();
    b.event(rng, accepted, "invite.accepted")
        .actor(&new_actor)
        .detail(|o| {
            o.str("id", &invite_id);
        })
        .push();
    b.event(rng, accepted + 1, "user.added")
        .actor(&new_actor)
        .detail(|o| {
            o.str("id", &person.id).obj("data", |o| {
                o.str("role", "reader");
            });
        })
        .push();
    org.people.push(person);
    org.join_projects(rng, n);
}

/// The provisioning service account rotates the keys of automated projects at 02:00.
fn nightly_job(
    org: &mut Org,
    clock: &Clock,
    rng: &mut Rng,
    b: &mut Batch,
    date: jiff::civil::Date,
) {
    let mut t = clock.local(date, hm(2, 0)) + between(rng, 0, 40);
    for pi in 0..org.projects.len() {
        if !org.projects[pi].automated || !org.projects[pi].live_at(t) {
            continue;
        }
        let key = rng::id(rng, "key_", 16);
        let p = &org.projects[pi];
        b.event(rng, t, "api_key.created")
            .project(&p.id, &p.title)
            .actor(&org.provisioner_actor)
            .detail(|o| {
                o.str("id", &key).obj("data", |o| {
                    o.strs("scopes", &["api.model.request"]);
                });
            })
            .push();
        t += between(rng, 2, 9);
        if !p.keys.is_empty() {
            let old = org.projects[pi].keys.remove(0);
            let p = &org.projects[pi];
            b.event(rng, t, "api_key.deleted")
                .project(&p.id, &p.title)
                .actor(&org.provisioner_actor)
                .detail(|o| {
                    o.str("id", &old);
                })
                .push();
        }
        org.projects[pi].keys.push(key);
        t += between(rng, 3, 20);
    }
}

/// The CI system applies membership and limit changes with an owner's admin key.
/// Admin-key actions are reported against the default project.
fn ci_runs(org: &mut Org, clock: &Clock, rng: &mut Rng, b: &mut Batch, date: jiff::civil::Date) {
    let runs = poisson(rng, org.people.len() as f64 / 40.0);
    for _ in 0..runs {
        let mut t = clock.local(date, between(rng, hm(10, 0), hm(17, 30)));
        let actor = org.ci_actor.clone();
        for _ in 0..rng.usize(1..=3) {
            let (did, name) = (org.projects[0].id.clone(), org.projects[0].title.clone());
            match rng.u8(..10) {
                0..=3 => {
                    let Some(pj) = org.live_project(rng, t) else {
                        continue;
                    };
                    let Some(u) = org.someone(rng, t, usize::MAX, |q| !q.projects.contains(&pj))
                    else {
                        continue;
                    };
                    b.event(rng, t, "user.added")
                        .project(&did, &name)
                        .actor(&actor)
                        .detail(|o| {
                            o.str("id", &org.people[u].id).obj("data", |o| {
                                o.str("role", "member");
                            });
                        })
                        .push();
                    org.people[u].projects.push(pj);
                }
                4..=6 => modest_rate_limit(org, rng, b, 0, &actor, t),
                7 => {
                    let svc = org.provisioner_svc.clone();
                    b.event(rng, t, "service_account.updated")
                        .project(&did, &name)
                        .actor(&actor)
                        .detail(|o| {
                            o.str("id", &svc).obj("changes_requested", |o| {
                                o.str("role", "member");
                            });
                        })
                        .push();
                }
                _ => {
                    let Some(u) = org.someone(rng, t, usize::MAX, |_| true) else {
                        continue;
                    };
                    let assignment = rng::id(rng, "ra_", 24);
                    let pj = org.project_of(rng, u, t);
                    let p = &org.projects[pj];
                    b.event(rng, t, "role.assignment.created")
                        .project(&did, &name)
                        .actor(&actor)
                        .detail(|o| {
                            o.str("id", &assignment)
                                .str("principal_id", &org.people[u].id)
                                .str("principal_type", "user")
                                .str("resource_id", &p.id)
                                .str("resource_type", "project");
                        })
                        .push();
                }
            }
            t += between(rng, 1, 6);
        }
    }
}

/// Tenant-level system events without a person behind them (`actor` null or absent).
fn system_events(
    org: &mut Org,
    clock: &Clock,
    rng: &mut Rng,
    b: &mut Batch,
    date: jiff::civil::Date,
) {
    let weekend = is_weekend(date);
    let n = org.people.len() as f64;
    let lookups = poisson(rng, if weekend { n / 300.0 } else { n / 25.0 });
    for _ in 0..lookups {
        let t = clock.local(date, between(rng, hm(7, 0), hm(21, 0)));
        let Some(u) = org.someone(rng, t, usize::MAX, |_| true) else {
            continue;
        };
        b.event(rng, t, "tenant.user.looked_up")
            .actor("null")
            .detail(|o| {
                o.str("user_id", &org.people[u].id)
                    .str("source", "directory_sync");
            })
            .push();
    }
    if !weekend {
        let changes = poisson(rng, n / 150.0);
        for _ in 0..changes {
            let t = clock.local(date, between(rng, hm(6, 0), hm(20, 0)));
            let Some(u) = org.someone(rng, t, usize::MAX, |_| true) else {
                continue;
            };
            let g = pick(rng, &org.groups);
            let ty = if chance(rng, 0.7) {
                "tenant.group.member.added"
            } else {
                "tenant.group.member.removed"
            };
            b.event(rng, t, ty)
                .detail(|o| {
                    o.str("group_id", &g.id).str("user_id", &org.people[u].id);
                })
                .push();
        }
    }
    if chance(rng, 0.03) {
        let t = clock.local(date, between(rng, hm(0, 0), hm(23, 59)));
        b.event(rng, t, "tenant.metadata.updated")
            .actor("null")
            .push();
    }
}
