//! `auditwatch health`: asks a running watcher's `/healthz` (from the
//! config's `server.listen`), for container health checks and scripts.

use std::path::PathBuf;
use std::time::Duration;

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config file (default: ./auditwatch.yaml); its `server.listen` is asked.
    #[arg(short = 'c', long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
}

pub fn run(args: &Args) -> u8 {
    let (path, config) = match super::load_config(args.config.as_deref(), "health") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(server) = &config.server else {
        eprintln!(
            "auditwatch health: {} has no `server` section: add `server: {{listen: 127.0.0.1:9464}}`",
            path.display()
        );
        return EXIT_USAGE;
    };
    // A wildcard address is asked on loopback.
    let listen = server
        .listen
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    let url = format!("http://{listen}/healthz");
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auditwatch health: {e}");
            return EXIT_FAILED;
        }
    };
    crate::tls::init();
    let answer = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        let r = client.get(&url).send().await.map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap_or_default();
        Ok::<_, String>((status, body))
    });
    match answer {
        Ok((200, body)) => {
            print!("{}", crate::text::plain_lines(&body));
            EXIT_OK
        }
        Ok((status, body)) => {
            eprint!("unhealthy ({status}): {}", crate::text::plain_lines(&body));
            EXIT_FAILED
        }
        Err(e) => {
            eprintln!(
                "auditwatch health: cannot ask {url}: {}",
                crate::text::plain(&e)
            );
            EXIT_FAILED
        }
    }
}
