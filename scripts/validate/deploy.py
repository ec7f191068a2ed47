"""Checks of deploy/ that need no schema: the kustomization lists files that exist and
are all the manifests; the Grafana dashboard is well formed; every metric that the
dashboard or the alert rules name is defined by the filter; the configurations in the
ConfigMap and the compose stack pass `config check`. Run by scripts/validate-deploy.sh."""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

binary = sys.argv[1]
root = pathlib.Path(".")
failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}")


# Kustomization: every resource exists, every manifest is listed.
k8s = root / "deploy/kubernetes"
kust = yaml.safe_load((k8s / "kustomization.yaml").read_text())
listed = set(kust["resources"])
present = {p.name for p in k8s.glob("*.yaml")} - {"kustomization.yaml"}
if listed != present:
    fail(f"kustomization resources {sorted(listed)} != manifests {sorted(present)}")
deployment = yaml.safe_load((k8s / "deployment.yaml").read_text())
pod = deployment["spec"]["template"]["spec"]

# Metric names the filter defines (string constants in the sources).
defined = set()
for src in (root / "src").rglob("*.rs"):
    defined |= set(re.findall(r'"(cdr_[a-z_]+)"', src.read_text()))


def base(name):
    return re.sub(r"_(bucket|count|sum)$", "", name)


def check_names(where, text):
    for name in sorted({base(n) for n in re.findall(r"\b(cdr_[a-z_]+)", text)}):
        if name not in defined:
            fail(f"{where} names {name}, which the filter does not define")


# Dashboard.
dash = json.loads((root / "deploy/grafana/cdr-purpose-filter.json").read_text())
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    fail("dashboard panel ids are not unique")
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
if not exprs:
    fail("dashboard has no queries")
check_names("the dashboard", "\n".join(exprs))
check_names("the alert rules", (root / "deploy/prometheus/alerts.yml").read_text())
print(f"ok   dashboard: {len(dash['panels'])} panels, {len(exprs)} queries; "
      f"{len(defined)} metric names defined")


# Configurations: config check, and the shutdown deadline below the grace period.
def config_check(where, text):
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as f:
        f.write(text)
        f.flush()
        r = subprocess.run([binary, "config", "check", "--config", f.name],
                           capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{where}: config check: {r.stderr.strip()}")
        return None
    print(f"ok   {where}: config check")
    return r.stdout


def seconds(text):
    m = re.fullmatch(r"(\d+)(s|m)", text)
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


configmap = yaml.safe_load((k8s / "configmap.yaml").read_text())
effective = config_check("deploy/kubernetes/configmap.yaml", configmap["data"]["filter.toml"])
if effective is not None:
    timeout = re.search(r'shutdown_timeout = "([^"]+)"', effective).group(1)
    grace = pod["terminationGracePeriodSeconds"]
    if grace <= seconds(timeout):
        fail(f"terminationGracePeriodSeconds {grace} <= delivery.shutdown_timeout {timeout}")
    else:
        print(f"ok   terminationGracePeriodSeconds {grace} > shutdown_timeout {timeout}")
config_check("deploy/compose/filter.toml", (root / "deploy/compose/filter.toml").read_text())

sys.exit(1 if failures else 0)
