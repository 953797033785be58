#!/usr/bin/env bash
# A throwaway one-node Ceph cluster with the RADOS Gateway (S3) on 127.0.0.1, from Debian 12's
# packages (radosgw, ceph-mon, ceph-osd 16.2.x; `scripts/setup-test-tools.sh` installs them):
# one monitor, one OSD on memstore (RAM, no block device), no manager, no cephx, and an S3
# user with the test suite's credentials. Everything lives under DIR.
#
#   ceph-rgw.sh DIR S3_PORT MON_PORT [ACCESS_KEY SECRET_KEY]
#
# Starts the daemons, prints "ceph-rgw ready on http://127.0.0.1:S3_PORT" once S3 answers,
# then stays in the foreground until SIGTERM, SIGINT or SIGHUP, when it kills every daemon it
# started (the test harness's keeper sends SIGTERM when the test process ends). Start-up takes
# about 2 s on a 2-core machine.
set -euo pipefail
D=${1:?data dir}; PORT=${2:?S3 port}; MONPORT=${3:?monitor port}
ACCESS=${4:-AKIAEXAMPLE}; SECRET=${5:-secret}
mkdir -p "$D"
D=$(cd "$D" && pwd)
if [ -e "$D/ceph.conf" ]; then
  echo "ceph-rgw: $D already holds a cluster; give a fresh directory" >&2
  exit 1
fi
mkdir -p "$D"/{run,log,mon.a,osd.0,rgw.a,crash}
C="$D/ceph.conf"
FSID=$(cat /proc/sys/kernel/random/uuid)
cat > "$C" <<EOF
[global]
fsid = $FSID
mon host = v2:127.0.0.1:$MONPORT
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
# radosgw as a daemon asks the monitor for 'secure' mode only, which auth 'none' lacks:
# without 'crc' it loops on -13 (EACCES) for the whole auth timeout.
ms mon client mode = crc secure
client mount timeout = 30
mon warn on insecure global id reclaim allowed = false
mon warn on insecure global id reclaim = false
run dir = $D/run
admin socket = $D/run/\$name.asok
pid file = $D/run/\$name.pid
log file = $D/log/\$name.log
crash dir = $D/crash
keyring = $D/keyring
log to stderr = false
err to stderr = true
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
# RGW creates its pools one after another at start; the default 1 s between proposals
# makes that take 12 s instead of 1.
paxos propose interval = 0.05
[mon]
mon data = $D/mon.\$id
mon cluster log file = $D/log/cluster.log
[osd]
osd data = $D/osd.\$id
osd objectstore = memstore
memstore device bytes = 1073741824
osd crush update on start = true
osd crush initial weight = 1
[client.rgw.a]
rgw data = $D/rgw.a
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw thread pool size = 32
rgw enable apis = s3, admin
EOF

# The daemons fork into the background and write pid files; every one of them is killed on
# the way out, however the script ends.
stop() {
  trap - EXIT
  local f
  for f in "$D"/run/client.rgw.*.pid "$D"/run/osd.*.pid "$D"/run/mon.*.pid; do
    [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null || true
  done
  # A daemon whose pid file was not written yet, or a CLI still talking to the cluster: by
  # an exact match of the config path in its command line, not a pattern.
  local pid
  for pid in $(pgrep -f -- "ceph" 2>/dev/null); do
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -F -- "-c $C " >/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  return 0
}
trap stop EXIT
trap 'exit 0' TERM INT HUP

cd "$D"
monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MONPORT]" "$D/monmap" >/dev/null
ceph-mon -c "$C" -i a --mkfs --monmap "$D/monmap" 2>>"$D/log/setup.err"
ceph-mon -c "$C" -i a
CEPH=(ceph -c "$C" --connect-timeout 20)
"${CEPH[@]}" mon stat >/dev/null
UUID=$(cat /proc/sys/kernel/random/uuid)
OSD=$("${CEPH[@]}" osd new "$UUID")
ceph-osd -c "$C" -i "$OSD" --mkfs --osd-uuid "$UUID" 2>>"$D/log/setup.err"
ceph-osd -c "$C" -i "$OSD"
osd_up=""
for _ in $(seq 300); do
  # grep reads all of the dump (no -q): an early exit could SIGPIPE ceph under pipefail.
  if "${CEPH[@]}" osd dump 2>/dev/null | grep "^osd.$OSD up" >/dev/null; then osd_up=1; break; fi
  sleep 0.2
done
if [ -z "$osd_up" ]; then
  echo "ceph-rgw: osd.$OSD never came up; logs in $D/log" >&2
  exit 1
fi
radosgw -c "$C" -n client.rgw.a
radosgw-admin -c "$C" user create --uid=test --display-name=test \
  --access-key="$ACCESS" --secret-key="$SECRET" >"$D/user.json" 2>>"$D/log/setup.err"
ready=""
for _ in $(seq 300); do
  if curl -s -o /dev/null -m 2 "http://127.0.0.1:$PORT/"; then ready=1; break; fi
  sleep 0.2
done
if [ -z "$ready" ]; then
  echo "ceph-rgw: S3 never answered on 127.0.0.1:$PORT; logs in $D/log" >&2
  exit 1
fi
echo "ceph-rgw ready on http://127.0.0.1:$PORT"
while :; do
  sleep 1 &
  wait $! || true
done
