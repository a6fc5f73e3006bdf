#!/usr/bin/env bash
# Set up and run the gateway on the embedded defaults: SQLite and a Maildir outbox under
# ./var, the SMTP listener on 127.0.0.1:2525. Extra arguments go to `mailgate serve`'s
# parent command, e.g. scripts/run.sh --config mailgate.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/mailgate "$@" serve
