#!/usr/bin/env bash
# Uses the PostgreSQL on 127.0.0.1:5432 when it answers; otherwise installs and starts Debian's.
set -euo pipefail
answers() { python3 - <<'PY'
import socket, sys
s = socket.socket(); s.settimeout(1)
try:
    s.connect(("127.0.0.1", 5432)); sys.exit(0)
except OSError:
    sys.exit(1)
PY
}
answers && exit 0
echo "PostgreSQL not answering on 127.0.0.1:5432: installing and starting one"
bash "$(dirname "$0")/ensure-debian.sh" postgresql
ver=$(ls /etc/postgresql | sort -n | tail -1)
pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
conf=/etc/postgresql/$ver/main/pg_hba.conf
if ! grep -q '^host all all 127.0.0.1/32 trust' "$conf"; then
  sed -i '1i host all all 127.0.0.1/32 trust' "$conf"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
fi
for i in $(seq 1 30); do answers && break; sleep 1; done
su postgres -c "psql -tc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test" || true
