#!/usr/bin/env bash
# Renders the README's previews (a Slack alert, an email digest) from the
# sample history and the default pack, and screenshots them with headless
# Chromium (Debian: apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/previews
cargo run --quiet --example previews -- "$out"
shot() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --window-size="$2" --screenshot="docs/$1.png" "file://$PWD/$out/$1.html" 2>/dev/null
}
shot slack-alert 660,560
shot email-digest 800,1100
ls -l docs/slack-alert.png docs/email-digest.png

# The status page of a watcher replaying the sample history (no token, on a
# free port), screenshotted once its first poll is in.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -f "$out"/status.db*
sed -e "s#path: sample-events.jsonl#path: $PWD/examples/sample-events.jsonl#" \
    -e "s#rules: \[../rules/\]#rules: [$PWD/rules/]#" \
    -e "s#state: {path: demo-state.db}#state: {path: $PWD/$out/status.db}\nserver: {listen: 127.0.0.1:$port}#" \
    examples/demo.yaml >"$out/status.yaml"
cargo build --quiet --release --bin auditwatch
target/release/auditwatch watch -c "$out/status.yaml" >/dev/null 2>"$out/status.log" &
watcher=$!
trap 'kill $watcher 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.2
done
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1100,1500 --screenshot=docs/status-page.png "http://127.0.0.1:$port/" 2>/dev/null
kill $watcher
ls -l docs/status-page.png
