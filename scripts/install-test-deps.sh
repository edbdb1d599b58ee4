#!/usr/bin/env bash
# Installs the external Kafka clients used by the end-to-end suite in test/e2e:
#   kcat, python3-confluent-kafka (librdkafka), python3-kafka (kafka-python),
#   iproute2 (ip netns) from Debian, and kafkajs (and dockerfilelint, which lints
#   deploy/Dockerfile) from npm into test/e2e/node_modules;
#   and slapd (OpenLDAP), which the LDAP verifier's tests start on loopback with a
#   configuration of their own (the package's own server is not used); haproxy, which the
#   PROXY protocol tests start on loopback in front of the proxy (send-proxy-v2); and
#   dante-server (SOCKS5) and tinyproxy (HTTP CONNECT), which the --forward-proxy tests
#   start on loopback with configurations of their own (dante's SOCKS username check goes
#   through PAM to a password file of the test's, with libpam-pwdfile); and chromium, in which the status
#   page test renders the demo's page headless; openssl and Java's keytool
#   (openjdk-17-jre-headless), which check what `kafka-proxy certs` writes; and
#   krb5-kdc and krb5-admin-server, whose MIT KDC the GSSAPI tests run on loopback
#   with a realm of their own.
# Idempotent and non-interactive: apt-get update runs only when a package is missing,
# and npm ci runs only when node_modules does not match package-lock.json.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
e2e="$root/test/e2e"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo"
	else
		echo "install-test-deps: not root and no sudo available" >&2
		exit 1
	fi
fi

debs=(kcat python3-confluent-kafka python3-kafka iproute2 slapd haproxy dante-server libpam-pwdfile tinyproxy chromium openssl openjdk-17-jre-headless krb5-kdc krb5-admin-server)
missing=()
for p in "${debs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-test-deps: installing Debian packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	echo "install-test-deps: Debian packages already installed"
fi

if ! command -v npm >/dev/null 2>&1; then
	echo "install-test-deps: npm not found; install Node.js (>= 14) to run the kafkajs test" >&2
	exit 1
fi

cd "$e2e"
# node_modules is up to date when every package pinned in package-lock.json is
# installed at the locked version.
lock_ok() {
	node -e '
		const fs = require("fs");
		const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
		for (const [p, v] of Object.entries(lock.packages || {})) {
			if (!p) continue;
			const pj = p + "/package.json";
			if (!fs.existsSync(pj) || JSON.parse(fs.readFileSync(pj, "utf8")).version !== v.version) process.exit(1);
		}
	' 2>/dev/null
}
if [ -f package-lock.json ]; then
	if lock_ok; then
		echo "install-test-deps: node_modules up to date"
	else
		echo "install-test-deps: npm ci in test/e2e"
		npm ci --no-audit --no-fund --loglevel=error
	fi
else
	echo "install-test-deps: npm install in test/e2e (no lockfile yet)"
	npm install --no-audit --no-fund --loglevel=error
fi

# Sanity check: every client the suite uses can be loaded.
command -v kcat >/dev/null
/usr/bin/python3 -c 'import confluent_kafka, kafka' 
node -e 'require("kafkajs")'
command -v ip >/dev/null
test -x /usr/sbin/slapd
test -x /usr/sbin/haproxy
echo "install-test-deps: ok"
