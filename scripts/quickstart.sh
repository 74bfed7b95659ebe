#!/usr/bin/env bash
# Runs both ends of the offline exchange on their embedded defaults (SQLite,
# no other server): a vendor store in ./demo with a demo root, one license
# with one device, and the ingestor's licensing service on
# http://127.0.0.1:5000, built pinned to that demo root and configured with
# the customer document's two variables. Ctrl-C stops it; run again to
# reuse ./demo.
set -euo pipefail
cd "$(dirname "$0")/.."

# The demo root is sealed with this passphrase; a real root is sealed with
# one typed at the prompt and kept offline (see the README).
export REN3_ROOT_PASSPHRASE=${REN3_ROOT_PASSPHRASE:-quickstart demo root, not for production}

cargo build --release --locked -p ren3-issuer
bin="$PWD/target/release"
mkdir -p demo
cd demo

issuer() { "$bin/ren3-issuer" --db issuer.db "$@"; }

if [ ! -f issuer.db ]; then
    issuer init --root-dir root >/dev/null
    issuer license create --customer "Demo Customer" --features ingest,export \
        --limit max-sources=10 --max-devices 2 >license-key.txt
    issuer device add --license "$(cat license-key.txt)" --label "demo ingestor" >device-id.txt
    umask 077
    cat >.env <<ENV
enable_offline_license=true
client_device_id=$(cat device-id.txt)
license_db_path=license.db
listen_addr=127.0.0.1:5000
ENV
fi

# The client the vendor ships is built pinned to the vendor's root.
root_pub="$PWD/root/root.pub"
(cd .. && REN3_TRUST_ROOT="$root_pub" cargo build --release --locked -p ren3-client-cli)

key=$(cat license-key.txt)
cat <<HELP

Vendor store: demo/issuer.db   Root (keep offline): demo/root
License key: $key
Client device id: $(cat device-id.txt)
The client is pinned to root $(sed -n 's/^# Fingerprint: //p' root/root.pub)

In another terminal, from $(pwd):
  # 3. generate the license request
  curl -s localhost:5000/license/register -H 'Content-Type: application/json' \\
    -d '{"licenseKey": "$key", "export": true}' | tee register.json
  # 4. the ReN3 team issues the payload
  python3 -c 'import json;print(json.load(open("register.json"))["licenseRequest"])' \\
    | $bin/ren3-issuer --db issuer.db issue --request - --out payload.txt
  # 5. import it
  curl -s localhost:5000/license/import -H 'Content-Type: application/json' \\
    -d "{\"licenseKey\": \"$key\", \"licensePayload\": \"\$(cat payload.txt)\"}"
  curl -s localhost:5000/license

HELP
exec "$bin/ren3-client"
