"""Checks of deploy/ that need no schema: the kustomization lists files that exist and
are all the manifests; the Grafana dashboard is well formed; every metric that the
dashboard or the alert rules name is defined by the filter; the PrometheusRule holds the
alert rules' groups; every alert has a runbook_url to a section of docs/runbook.md; the
configurations of the Kubernetes ConfigMap, the compose stack and the image pass
`config check` and listen on 0.0.0.0:9898. Run by scripts/validate-deploy.sh."""
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


# Generated ConfigMap: the file exists, the Deployment mounts that name; no fixed
# replicas while KEDA's ScaledObject owns the count; PDB lets unready pods be evicted.
generated = {g["name"]: g for g in kust.get("configMapGenerator", [])}
if "cdr-purpose-filter" not in generated:
    fail("kustomization: no configMapGenerator cdr-purpose-filter")
else:
    for f in generated["cdr-purpose-filter"]["files"]:
        if not (k8s / f).is_file():
            fail(f"configMapGenerator names {f}, which does not exist")
mounted = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
if mounted != ["cdr-purpose-filter"]:
    fail(f"the Deployment mounts {mounted}, not the generated cdr-purpose-filter")
if "scaledobject.yaml" in listed and "replicas" in deployment["spec"]:
    fail("the Deployment sets replicas although the KEDA ScaledObject owns the count")
pdb = yaml.safe_load((k8s / "poddisruptionbudget.yaml").read_text())
if pdb["spec"].get("unhealthyPodEvictionPolicy") != "AlwaysAllow":
    fail("the PodDisruptionBudget does not set unhealthyPodEvictionPolicy: AlwaysAllow")

# Alert rules: the PrometheusRule has the same groups; every alert links its runbook
# section.
alerts = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text())
rule = yaml.safe_load((k8s / "prometheusrule.yaml").read_text())
if rule["spec"]["groups"] != alerts["groups"]:
    fail("deploy/kubernetes/prometheusrule.yaml differs from deploy/prometheus/alerts.yml")
runbook = (root / "docs/runbook.md").read_text()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
           for h in re.findall(r"^#+ (.+)$", runbook, re.M)}
names = []
for group in alerts["groups"]:
    for r in group["rules"]:
        if "alert" not in r:
            continue
        names.append(r["alert"])
        url = r.get("annotations", {}).get("runbook_url", "")
        anchor = url.partition("#")[2]
        if not url.startswith("https://") or anchor not in anchors:
            fail(f"alert {r['alert']}: runbook_url {url!r} is not a section of docs/runbook.md")
print(f"ok   alerts: {len(names)} with a runbook section; PrometheusRule equal to alerts.yml")

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


def listens_everywhere(where, effective):
    if effective is not None and 'listen = "0.0.0.0:9898"' not in effective:
        fail(f"{where}: metrics.listen is not 0.0.0.0:9898 (probes and scrapes come from outside)")


effective = config_check("deploy/kubernetes/filter.toml", (k8s / "filter.toml").read_text())
listens_everywhere("deploy/kubernetes/filter.toml", effective)
if effective is not None:
    timeout = re.search(r'shutdown_timeout = "([^"]+)"', effective).group(1)
    grace = pod["terminationGracePeriodSeconds"]
    if grace <= seconds(timeout):
        fail(f"terminationGracePeriodSeconds {grace} <= delivery.shutdown_timeout {timeout}")
    else:
        print(f"ok   terminationGracePeriodSeconds {grace} > shutdown_timeout {timeout}")
listens_everywhere("deploy/compose/filter.toml", config_check(
    "deploy/compose/filter.toml", (root / "deploy/compose/filter.toml").read_text()))
# The image's configuration: the Dockerfile's sed over the example.
dockerfile = (root / "Dockerfile").read_text()
m = re.search(r"sed 's/(.+?)/(.+?)/' deploy/config.example.toml >/out/filter.toml", dockerfile)
if not m:
    fail("Dockerfile: no sed making the image configuration from the example")
else:
    example = (root / "deploy/config.example.toml").read_text()
    image = re.sub(m.group(1).replace("^", "(?m)^"), m.group(2), example)
    listens_everywhere("the image configuration", config_check("the image configuration", image))

sys.exit(1 if failures else 0)
