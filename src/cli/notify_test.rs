//! `auditwatch notify-test`: one sample alert to one destination, and what
//! the destination answered, so a config is proven before the first alert.

use std::path::PathBuf;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::alert::{Alert, Facts};
use crate::notify::{self, Parcel, SendError};
use crate::rules::Severity;
use crate::store::Delivery;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml).
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// The destination's name in the config.
    #[arg(value_name = "DESTINATION")]
    pub destination: String,
}

/// The sample alert: what a real one looks like, marked as a test.
pub fn sample_alert(now: i64) -> Alert {
    Alert {
        rule_id: "auditwatch.notify_test".into(),
        severity: Severity::High,
        title: "Test alert from auditwatch".into(),
        summary: "This is a test: if you read it, alerts reach this destination.".into(),
        event_id: "audit_log-notify-test".into(),
        event_ids: vec!["audit_log-notify-test".into()],
        effective_at: now,
        suppressed: 0,
        facts: Facts {
            event_type: "api_key.created".into(),
            actor: Some("alice@example.com".into()),
            actor_kind: Some("user".into()),
            ip: Some("203.0.113.7".into()),
            place: Some("Brooklyn, New York, US".into()),
            project: Some("Default project (proj_example)".into()),
            description: Some("Sent by `auditwatch notify-test`; no audit event caused it.".into()),
            ..Facts::default()
        },
    }
}

pub fn run(args: &Args) -> u8 {
    let (path, config) = match super::load_config(args.config.as_deref(), "notify-test") {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !config.destinations.contains_key(&args.destination) {
        eprintln!(
            "auditwatch notify-test: {} has no destination `{}` (destinations: {})",
            path.display(),
            crate::text::plain(&args.destination),
            config
                .destinations
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        return EXIT_USAGE;
    }
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auditwatch notify-test: {e}");
            return EXIT_FAILED;
        }
    };
    let _inside = runtime.enter();
    let destinations = match notify::destinations(&config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("auditwatch notify-test: {e}");
            return EXIT_USAGE;
        }
    };
    let now = crate::time::now();
    let alert = sample_alert(now);
    let name = args.destination.as_str();
    let result = runtime.block_on(async {
        if let Some(d) = destinations.digests.iter().find(|d| d.name() == name) {
            return d
                .send_now(std::slice::from_ref(&alert), now - 86_400, now)
                .await;
        }
        let d = destinations
            .immediate
            .iter()
            .find(|d| d.name() == name)
            .expect("every destination is built");
        let delivery = Delivery::preview(alert.clone(), name, vec![name.to_owned()], now);
        let parcel = Parcel {
            delivery: &delivery,
            thread: None,
            earlier: Default::default(),
        };
        d.send(&parcel).await.map(|a| a.answer)
    });
    match result {
        Ok(answer) => {
            println!("{name}: accepted the test alert ({answer})");
            EXIT_OK
        }
        Err(SendError::Retry { message, after }) => {
            let when = after
                .map(|a| format!(" (it asks to wait {}s)", a.as_secs()))
                .unwrap_or_default();
            eprintln!(
                "{name}: not delivered, a failure that may pass{when}: {}",
                crate::text::plain(&message)
            );
            EXIT_FAILED
        }
        Err(SendError::Permanent(message)) => {
            eprintln!(
                "{name}: refused the test alert: {}",
                crate::text::plain(&message)
            );
            EXIT_FAILED
        }
    }
}
