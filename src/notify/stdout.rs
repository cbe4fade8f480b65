//! The `stdout` destination: each alert as one JSON line, the same object
//! as `rulecheck --format jsonl`, so a live run and a dry run compare line
//! for line.

use std::io::Write;

use super::{Accepted, Destination, Parcel, SendError, Sending};
use crate::alert::Alert;

pub struct Stdout {
    name: String,
}

impl Stdout {
    pub fn new(name: &str) -> Stdout {
        Stdout {
            name: name.to_owned(),
        }
    }
}

impl Destination for Stdout {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, parcel: &'a Parcel<'a>) -> Sending<'a> {
        let alert: &Alert = &parcel.delivery.alert;
        Box::pin(async move {
            let mut line = serde_json::to_vec(alert).expect("alerts serialize");
            line.push(b'\n');
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(&line)
                .and_then(|()| out.flush())
                .map_err(|e| SendError::Retry {
                    message: format!("cannot write to standard output: {e}"),
                    after: None,
                })?;
            Ok(Accepted::answer("written"))
        })
    }
}
