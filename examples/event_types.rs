//! Updates the list of event types built into the binary from the official
//! one, after checking that it parses:
//!
//!     cargo run --example event_types -- ../shared/openai/event-types.txt

fn main() -> anyhow::Result<()> {
    let from = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("give the official event-types.txt"))?;
    let text = std::fs::read_to_string(&from)?;
    let schema = auditwatch::rules::schema::Schema::parse(&text).map_err(anyhow::Error::msg)?;
    let to = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/rules/event-types.txt");
    std::fs::write(&to, &text)?;
    println!("{}: {} event types", to.display(), schema.types.len());
    Ok(())
}
