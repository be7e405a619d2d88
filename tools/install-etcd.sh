#!/bin/sh
# Make sure an `etcd` binary is available for the test suite (issue 11: the storage contract
# suite and the three-member cluster tests run against the real etcd).
#
# * etcd already on PATH (or in /usr/bin, where Debian puts it): say so and do nothing.
# * missing and we are root with apt-get: install Debian's `etcd-server` package.
# * missing otherwise: say what to do and exit 0, so `make test` still runs (the etcd tests
#   then skip with a message naming this script).
#
# The package's systemd unit is not started here: tests start their own etcd processes on
# ephemeral loopback ports with throw-away data directories.
set -eu

found=$(command -v etcd 2>/dev/null || true)
if [ -z "$found" ] && [ -x /usr/bin/etcd ]; then
    found=/usr/bin/etcd
fi
if [ -n "$found" ]; then
    echo "install-etcd: etcd present at $found ($("$found" --version 2>/dev/null | head -n 1))"
    exit 0
fi

if [ "$(id -u)" != "0" ]; then
    echo "install-etcd: etcd is missing and we are not root; install it with" \
         "'sudo apt-get install etcd-server' (etcd tests will be skipped)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-etcd: etcd is missing and apt-get is not available; install etcd >= 3.4" \
         "by hand (etcd tests will be skipped)"
    exit 0
fi

echo "install-etcd: etcd missing; running apt-get update and apt-get install -y etcd-server"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq; then
    echo "install-etcd: apt-get update failed; etcd tests will be skipped"
    exit 0
fi
# policy-rc.d 101 keeps the package's service from being started inside containers/CI.
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
if ! apt-get install -y -qq --no-install-recommends etcd-server; then
    echo "install-etcd: installing etcd-server failed; etcd tests will be skipped"
    exit 0
fi
echo "install-etcd: installed $(/usr/bin/etcd --version 2>/dev/null | head -n 1)"
