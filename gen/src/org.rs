//! The organization's mutable state: people, projects with their keys, service accounts and
//! rate limits, groups, custom roles, IP allowlists, certificates and automation identities.

use std::collections::HashSet;

use fastrand::Rng;

use crate::event::{service_key_actor, user_key_actor};
use crate::people::{self, Person, Role};
use crate::rng::{self, chance, pick};

pub static PROJECT_TITLES: [&str; 40] = [
    "Support Assistant",
    "Search Relevance",
    "Docs QA",
    "Sales Copilot",
    "Data Labeling",
    "Fraud Signals",
    "Internal Tools",
    "Marketing Content",
    "Eval Harness",
    "Voice Agent",
    "Contract Review",
    "Churn Insights",
    "Onboarding Bot",
    "Code Review Bot",
    "Knowledge Base",
    "Translation",
    "Ticket Triage",
    "Research Sandbox",
    "Prod Inference",
    "Staging",
    "Recommendations",
    "Invoice Extraction",
    "Meeting Notes",
    "HR Helpdesk",
    "Catalog Enrichment",
    "Security Triage",
    "Analytics Chat",
    "Mobile App",
    "Partner Portal",
    "Compliance Review",
    "Email Drafting",
    "Forecasting",
    "Image Studio",
    "Legal Research",
    "QA Automation",
    "Data Platform",
    "Customer Insights",
    "Batch Summaries",
    "Realtime Demo",
    "Hackathon",
];

/// Models with project rate limits and their default (requests/min, tokens/min).
pub static MODELS: [(&str, i64, i64); 6] = [
    ("gpt-5", 5_000, 2_000_000),
    ("gpt-5-mini", 10_000, 5_000_000),
    ("gpt-4.1", 5_000, 800_000),
    ("gpt-4.1-mini", 10_000, 4_000_000),
    ("text-embedding-3-large", 5_000, 5_000_000),
    ("gpt-image-1", 500, 100_000),
];

/// Scopes of restricted project keys. Full-access keys would be `["api.all"]`.
pub static SCOPES: [&[&str]; 6] = [
    &["api.model.request"],
    &["api.model.request", "api.files.write"],
    &["api.model.read", "api.files.read"],
    &["api.model.request", "api.files.read"],
    &["api.model.request", "api.vector_stores.write"],
    &["api.model.request", "api.fine_tuning.jobs.write"],
];

pub struct RateLimit {
    pub model: &'static str,
    pub rpm: i64,
    pub tpm: i64,
}

impl RateLimit {
    pub fn id(&self) -> String {
        format!("rl-{}", self.model)
    }
}

pub struct Project {
    pub id: String,
    pub title: String,
    pub slug: String,
    /// Tracking ids of live keys.
    pub keys: Vec<String>,
    pub service_accounts: Vec<String>,
    pub limits: Vec<RateLimit>,
    /// Keys rotated every night by the provisioning job.
    pub automated: bool,
    pub archived_at: i64,
}

impl Project {
    pub fn live_at(&self, t: i64) -> bool {
        t < self.archived_at
    }
}

pub struct Named {
    pub id: String,
    pub name: String,
}

pub struct Allowlist {
    pub id: String,
    pub name: String,
    pub ips: Vec<String>,
    pub deleted: bool,
}

pub struct Org {
    pub id: String,
    pub people: Vec<Person>,
    pub projects: Vec<Project>,
    pub groups: Vec<Named>,
    pub roles: Vec<Named>,
    pub allowlists: Vec<Allowlist>,
    pub certificates: Vec<Named>,
    pub emails: HashSet<String>,
    /// The provisioning service account and the actor JSON of its key.
    pub provisioner_svc: String,
    pub provisioner_actor: String,
    /// An owner's admin key used by the CI system, and its actor JSON.
    pub ci_owner: usize,
    pub ci_actor: String,
    pub session_policy: String,
    /// How much more often people sign in again than in a 60-person org: larger tenants
    /// run stricter session policies (shorter idle timeouts).
    pub reauth: f64,
    pub next_title: usize,
}

fn slug(title: &str) -> String {
    title.to_ascii_lowercase().replace(' ', "-")
}

impl Org {
    pub fn new(rng: &mut Rng, people: u32) -> Org {
        let people = people.max(12) as usize;
        let mut emails = HashSet::new();
        let owners = if people < 40 { 2 } else { 3 };
        let admins = (people / 15).max(2);
        let mut list = Vec::with_capacity(people);
        for n in 0..people {
            let role = if n < owners {
                Role::Owner
            } else if n < owners + admins {
                Role::Admin
            } else {
                Role::Reader
            };
            let email = people::new_email(rng, &mut emails);
            list.push(people::new_person(rng, n, role, email, i64::MIN));
        }
        let mut org = Org {
            id: rng::id(rng, "org-", 24),
            people: list,
            projects: Vec::new(),
            groups: Vec::new(),
            roles: Vec::new(),
            allowlists: Vec::new(),
            certificates: Vec::new(),
            emails,
            provisioner_svc: String::new(),
            provisioner_actor: String::new(),
            ci_owner: 0,
            ci_actor: String::new(),
            session_policy: rng::id(rng, "sesspol_", 24),
            reauth: 1.0 + 0.2 * (people.max(60) as f64 / 60.0).log10(),
            next_title: 0,
        };
        org.add_project(rng, "Default project".to_string());
        let n_projects = (3 + people / 5).max(8);
        for _ in 1..n_projects {
            let title = org.next_project_title();
            org.add_project(rng, title);
        }
        let mut automated = 0;
        for (i, p) in org.projects.iter_mut().enumerate() {
            p.automated = i > 0 && (chance(rng, 0.25) || automated < 2);
            automated += usize::from(p.automated);
        }
        for i in 0..org.people.len() {
            org.join_projects(rng, i);
        }
        for name in [
            "Engineering",
            "Data Science",
            "Support",
            "Sales Engineering",
            "Platform",
            "Security",
        ] {
            org.groups.push(Named {
                id: rng::id(rng, "group_", 24),
                name: name.to_string(),
            });
        }
        for name in [
            "Project Developer",
            "Usage Viewer",
            "Fine-tuning Operator",
            "Billing Viewer",
        ] {
            org.roles.push(Named {
                id: rng::id(rng, "role_", 24),
                name: name.to_string(),
            });
        }
        for (name, ips) in [
            ("HQ office", vec!["203.0.113.0/24"]),
            ("Toronto remote", vec!["192.0.2.0/24"]),
            ("CI runners", vec!["203.0.113.240/28"]),
        ] {
            org.allowlists.push(Allowlist {
                id: rng::id(rng, "ipallow_", 24),
                name: name.to_string(),
                ips: ips.into_iter().map(String::from).collect(),
                deleted: false,
            });
        }
        for name in ["mtls-gateway-2026", "partner-sftp-client"] {
            org.certificates.push(Named {
                id: rng::id(rng, "cert_", 24),
                name: name.to_string(),
            });
        }
        org.provisioner_svc = rng::id(rng, "svc_acct_", 24);
        let key = rng::id(rng, "key_", 16);
        org.provisioner_actor = service_key_actor(&key, &org.provisioner_svc);
        let svc = org.provisioner_svc.clone();
        org.projects[0].service_accounts.push(svc);
        org.ci_owner = 0;
        let key = rng::id(rng, "key_", 16);
        let owner = &org.people[0];
        org.ci_actor = user_key_actor(&key, &owner.id, &owner.email);
        org
    }

    pub fn next_project_title(&mut self) -> String {
        let n = self.next_title;
        self.next_title += 1;
        let base = PROJECT_TITLES[n % PROJECT_TITLES.len()];
        match n / PROJECT_TITLES.len() {
            0 => base.to_string(),
            k => format!("{base} {}", k + 1),
        }
    }

    pub fn add_project(&mut self, rng: &mut Rng, title: String) -> usize {
        let keys = (0..rng.usize(2..=5))
            .map(|_| rng::id(rng, "key_", 16))
            .collect();
        let service_accounts = (0..rng.usize(0..=2))
            .map(|_| rng::id(rng, "svc_acct_", 24))
            .collect();
        let mut limits = Vec::new();
        for (model, rpm, tpm) in MODELS.iter() {
            if limits.is_empty() || chance(rng, 0.4) {
                limits.push(RateLimit {
                    model,
                    rpm: *rpm,
                    tpm: *tpm,
                });
            }
        }
        self.projects.push(Project {
            id: rng::id(rng, "proj_", 24),
            slug: slug(&title),
            title,
            keys,
            service_accounts,
            limits,
            automated: false,
            archived_at: i64::MAX,
        });
        self.projects.len() - 1
    }

    /// Puts person `i` into one to three projects (the default project is common).
    pub fn join_projects(&mut self, rng: &mut Rng, i: usize) {
        let n = rng.usize(1..=3);
        let mut ps = Vec::with_capacity(n);
        if chance(rng, 0.3) {
            ps.push(0);
        }
        while ps.len() < n {
            let p = rng.usize(..self.projects.len());
            if !ps.contains(&p) {
                ps.push(p);
            }
        }
        self.people[i].projects = ps;
    }

    /// A live project of person `i` at `t` (falls back to the default project).
    pub fn project_of(&self, rng: &mut Rng, i: usize, t: i64) -> usize {
        let ps = &self.people[i].projects;
        for _ in 0..4 {
            let p = *pick(rng, ps);
            if self.projects[p].live_at(t) {
                return p;
            }
        }
        0
    }

    /// A random person other than `not`, active at `t`, whose role matches `want`.
    pub fn someone(
        &self,
        rng: &mut Rng,
        t: i64,
        not: usize,
        want: impl Fn(&Person) -> bool,
    ) -> Option<usize> {
        for _ in 0..64 {
            let i = rng.usize(..self.people.len());
            let p = &self.people[i];
            if i != not && p.active_at(t) && want(p) {
                return Some(i);
            }
        }
        None
    }

    /// A non-default project live at `t`.
    pub fn live_project(&self, rng: &mut Rng, t: i64) -> Option<usize> {
        for _ in 0..64 {
            let p = rng.usize(1..self.projects.len());
            if self.projects[p].live_at(t) {
                return Some(p);
            }
        }
        None
    }
}
