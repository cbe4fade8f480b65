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
