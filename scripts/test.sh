#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine and run the whole suite:
# the virtual environment, Dovecot (tests start their own instance on loopback), a
# running PostgreSQL, lint and type checks, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test

# Dovecot: installed from Debian's package; the tests run a private instance with their
# own config, port and Maildir, so the system service is stopped and left disabled.
if [ ! -x /usr/sbin/dovecot ]; then
    echo "test.sh: installing dovecot-imapd" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends dovecot-imapd openssl >/dev/null
    # Our tests start private instances; the packaged service must not hold port 143.
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl disable --now dovecot >/dev/null 2>&1 || true
    else
        service dovecot stop >/dev/null 2>&1 || true
    fi
fi

# PostgreSQL at 127.0.0.1:5432 (trust auth): start the local cluster if it is down.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null; then
        version=$(ls /etc/postgresql | head -n1)
        pg_ctlcluster --skip-systemctl-redirect "$version" main start
    fi
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

.venv/bin/ruff check mailgate tests bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
