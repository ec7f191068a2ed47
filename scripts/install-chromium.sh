#!/usr/bin/env bash
# Installs Debian's headless-capable browser, `chromium`, if it is missing: the report
# tests (tests/report_html.rs) render the HTML report with it to a DOM dump, a screenshot
# and a PDF. Called by .ci/run (system packages) and by scripts/test.sh.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-chromium.sh: /usr/bin/chromium is missing and this is not root: run 'apt-get install -y chromium' as root" >&2
  exit 1
fi
echo "install-chromium.sh: installing chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
