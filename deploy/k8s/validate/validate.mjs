// Offline validation of the Kubernetes base in deploy/k8s (run by ctest through
// tests/deploy/k8s-validate.sh; node_modules come from this folder's package-lock.json).
//
//   node validate.mjs --base DIR [--sidecar DIR] [--dockerfile FILE] [--compose FILE]
//                     [--server-binary FILE] [--kubectl FILE] [--self-test]
//
// 1. Renders the kustomization (the subset this base uses: resources, images, namespace) and, when a
//    kubectl with built-in kustomize is given, checks that `kubectl kustomize` renders the same objects.
// 2. Schema-validates every object with the kubernetes-models package (the API's OpenAPI schemas).
// 3. Checks that the pieces agree with each other and with the server: ports, probes, labels and
//    selectors, the ConfigMap's flags, the drain timeout against the termination grace period,
//    resources, the security context and the Dockerfile's USER and EXPOSE.
// 4. With --sidecar, renders the sidecar example (deploy/k8s/sidecar) and checks that the model
//    server and the sampler share a memory-backed /dev/shm and the socket directory, run as one
//    uid, and that the sampler's flags (Unix socket, shared memory mode, byte limit) fit them.
// 5. With --compose, checks deploy/compose.yaml the same way (replicas, nginx upstreams, ports,
//    drain timeout vs stop_grace_period, hardening).
// --self-test then breaks copies of the objects one way at a time and requires each break to be
// reported, so a check that cannot fail does not go unnoticed.
// Exit code 0 when everything holds, 1 otherwise.

import { readFileSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { parseAllDocuments, parse as parseYaml } from "yaml";

const args = parseArgs(process.argv.slice(2));
if (!args.base) {
  console.error("usage: node validate.mjs --base DIR [--dockerfile FILE] [--compose FILE] [--server-binary FILE] [--kubectl FILE] [--self-test]");
  process.exit(2);
}

// Server flags that may be set by environment (see the README's flag table).
const KNOWN_FLAGS = {
  TOKENSAMPLER_ADDRESS: "address",
  TOKENSAMPLER_WORKERS: "workers",
  TOKENSAMPLER_QUEUE_DEPTH: "queue_depth",
  TOKENSAMPLER_MAX_VOCAB: "max_vocab",
  TOKENSAMPLER_MAX_ROWS: "max_rows",
  TOKENSAMPLER_MAX_MESSAGE_BYTES: "max_message_bytes",
  TOKENSAMPLER_MAX_SEQUENCES: "max_sequences",
  TOKENSAMPLER_MAX_HISTORY_TOKENS: "max_history_tokens",
  TOKENSAMPLER_DRAIN_TIMEOUT: "drain_timeout",
  TOKENSAMPLER_LAME_DUCK: "lame_duck",
  TOKENSAMPLER_MAX_CONNECTION_AGE: "max_connection_age",
  TOKENSAMPLER_MAX_CONNECTION_AGE_GRACE: "max_connection_age_grace",
  TOKENSAMPLER_METRICS_ADDRESS: "metrics_address",
  TOKENSAMPLER_MAX_MEMORY: "max_memory",
  TOKENSAMPLER_MAX_STREAMS: "max_streams",
  TOKENSAMPLER_MAX_LIVE_SEQUENCES: "max_live_sequences",
  TOKENSAMPLER_HEALTH_ADDRESS: "health_address",
  TOKENSAMPLER_TLS_CERT: "tls_cert",
  TOKENSAMPLER_TLS_KEY: "tls_key",
  TOKENSAMPLER_TLS_CLIENT_CA: "tls_client_ca",
  TOKENSAMPLER_TLS_RELOAD_INTERVAL: "tls_reload_interval",
  TOKENSAMPLER_AUTH_TOKEN_FILE: "auth_token_file",
  TOKENSAMPLER_UNIX_SOCKET_MODE: "unix_socket_mode",
  TOKENSAMPLER_SHARED_MEMORY: "shared_memory",
  TOKENSAMPLER_SHARED_MEMORY_PREFIX: "shared_memory_prefix",
  TOKENSAMPLER_MAX_SHARED_MEMORY_REGIONS: "max_shared_memory_regions",
  TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES: "max_shared_memory_bytes",
};
// Flags whose value is a host:port or a file path rather than a number.
const ADDRESS_FLAGS = new Set(["TOKENSAMPLER_METRICS_ADDRESS", "TOKENSAMPLER_HEALTH_ADDRESS"]);
const PATH_FLAGS = new Set(["TOKENSAMPLER_TLS_CERT", "TOKENSAMPLER_TLS_KEY", "TOKENSAMPLER_TLS_CLIENT_CA",
  "TOKENSAMPLER_AUTH_TOKEN_FILE"]);
// Flags whose value is a word or a path rather than an integer.
const STRING_FLAGS = new Set(["TOKENSAMPLER_ADDRESS", "TOKENSAMPLER_SHARED_MEMORY",
  "TOKENSAMPLER_SHARED_MEMORY_PREFIX"]);
// Flags whose value is an absl duration ("10s", "5m", "inf"), not an integer.
const DURATION_FLAGS = new Set(["TOKENSAMPLER_DRAIN_TIMEOUT", "TOKENSAMPLER_LAME_DUCK", "TOKENSAMPLER_TLS_RELOAD_INTERVAL",
  "TOKENSAMPLER_MAX_CONNECTION_AGE", "TOKENSAMPLER_MAX_CONNECTION_AGE_GRACE"]);
const HEALTH_SERVICES = new Set(["", "tokensampler.v1.Sampler"]);

// ---------------------------------------------------------------------------------------------
// Rendering

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--self-test") out.selfTest = true;
    else if (a.startsWith("--") && a.includes("=")) out[camel(a.slice(2, a.indexOf("=")))] = a.slice(a.indexOf("=") + 1);
    else if (a.startsWith("--") && i + 1 < argv.length) out[camel(a.slice(2))] = argv[++i];
    else { console.error(`unknown argument '${a}'`); process.exit(2); }
  }
  return out;
}

function camel(s) { return s.replace(/-([a-z])/g, (_, c) => c.toUpperCase()); }

function readYamlDocs(file) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  const out = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    const v = d.toJS();
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}

function splitImage(ref) {
  // name[:tag][@digest]; a ':' after the last '/' starts the tag.
  let digest = "";
  const at = ref.indexOf("@");
  if (at >= 0) { digest = ref.slice(at + 1); ref = ref.slice(0, at); }
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > slash) return { name: ref.slice(0, colon), tag: ref.slice(colon + 1), digest };
  return { name: ref, tag: "", digest };
}

function renderKustomization(dir) {
  const file = ["kustomization.yaml", "kustomization.yml", "Kustomization"].map((f) => path.join(dir, f)).find(existsSync);
  if (!file) throw new Error(`${dir}: no kustomization.yaml`);
  const k = parseYaml(readFileSync(file, "utf8"));
  const supported = new Set(["apiVersion", "kind", "resources", "images", "namespace"]);
  for (const key of Object.keys(k)) {
    if (!supported.has(key)) throw new Error(`${file}: field '${key}' is not supported by this validator (supported: ${[...supported].join(", ")}); extend validate.mjs`);
  }
  const objects = [];
  for (const r of k.resources || []) {
    const p = path.join(dir, r);
    if (!existsSync(p)) throw new Error(`${file}: resource '${r}' does not exist`);
    for (const o of readYamlDocs(p)) objects.push({ file: r, obj: o });
  }
  for (const { obj } of objects) {
    if (k.namespace) obj.metadata = { ...obj.metadata, namespace: k.namespace };
    for (const c of podContainers(obj)) {
      const ref = splitImage(c.image || "");
      const rule = (k.images || []).find((i) => i.name === ref.name);
      if (!rule) continue;
      const name = rule.newName || ref.name;
      if (rule.digest) c.image = `${name}@${rule.digest}`;
      else {
        const tag = rule.newTag !== undefined ? String(rule.newTag) : ref.tag;
        c.image = tag ? `${name}:${tag}` : name;
      }
    }
  }
  return objects;
}

function podContainers(obj) {
  const spec = obj?.spec?.template?.spec;
  if (!spec) return [];
  return [...(spec.initContainers || []), ...(spec.containers || [])];
}

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    const out = {};
    for (const key of Object.keys(v).sort()) out[key] = canonical(v[key]);
    return out;
  }
  return v;
}

function key(o) { return `${o.apiVersion}/${o.kind}/${o.metadata?.namespace || ""}/${o.metadata?.name}`; }

// ---------------------------------------------------------------------------------------------
// Schema validation (kubernetes-models)

async function schemaErrors(objects) {
  const errors = [];
  for (const { file, obj } of objects) {
    const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
    const mod = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
    let Model;
    try {
      Model = (await import(mod))[obj.kind];
    } catch (e) {
      errors.push(`${file}: no schema for ${obj.apiVersion} ${obj.kind} (${e.code || e.message})`);
      continue;
    }
    try {
      new Model(structuredClone(obj)).validate();
    } catch (e) {
      errors.push(`${file}: ${obj.kind} ${obj.metadata?.name}: schema: ${e.message}`);
    }
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Structural checks

function parseDurationSeconds(s) {
  // absl duration syntax: a sequence of decimal numbers with units h, m, s, ms, us, ns ("10s", "1m30s", "2.5s").
  if (typeof s !== "string" || !/^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+$/.test(s)) return NaN;
  const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, ns: 1e-9 };
  let total = 0;
  for (const [, num, , u] of s.matchAll(/([0-9]+(\.[0-9]+)?)(h|ms|us|ns|m|s)/g)) total += Number(num) * unit[u];
  return total;
}

function parseCpu(q) {
  if (q === undefined) return NaN;
  const s = String(q);
  if (/^[0-9]+m$/.test(s)) return Number(s.slice(0, -1)) / 1000;
  if (/^[0-9]+(\.[0-9]+)?$/.test(s)) return Number(s);
  return NaN;
}

function parseBytes(q) {
  if (q === undefined) return NaN;
  const m = /^([0-9]+)(Ki|Mi|Gi|Ti|K|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const mult = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? mult[m[2]] : 1);
}

function selects(selector, labels) {
  // A matchLabels-style selector selects a label set when every pair is present.
  return selector && Object.keys(selector).length > 0 &&
    Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}

function structuralErrors(objects, ctx) {
  const errors = [];
  const err = (m) => errors.push(m);
  const all = objects.map((o) => o.obj);
  const byKind = (kind) => all.filter((o) => o.kind === kind);

  const deployments = byKind("Deployment");
  if (deployments.length !== 1) { err(`want exactly 1 Deployment, got ${deployments.length}`); return errors; }
  const dep = deployments[0];
  const podSpec = dep.spec?.template?.spec || {};
  const podLabels = dep.spec?.template?.metadata?.labels || {};
  const matchLabels = dep.spec?.selector?.matchLabels;
  if (dep.spec?.replicas !== 3) err(`Deployment.spec.replicas: want 3, got ${dep.spec?.replicas}`);
  if (!selects(matchLabels, podLabels)) err("Deployment.spec.selector.matchLabels: does not select the pod template's labels");

  const containers = podSpec.containers || [];
  const c = containers.find((x) => x.name === "tokensampler");
  if (!c) { err("Deployment: no container named 'tokensampler'"); return errors; }

  // ConfigMap with the flags, loaded by envFrom.
  const cms = byKind("ConfigMap");
  const envFromNames = (c.envFrom || []).map((e) => e.configMapRef?.name).filter(Boolean);
  const cm = cms.find((m) => envFromNames.includes(m.metadata?.name));
  if (!cm) { err(`container envFrom: no configMapRef to a ConfigMap of this base (envFrom names: ${JSON.stringify(envFromNames)}, ConfigMaps: ${JSON.stringify(cms.map((m) => m.metadata?.name))})`); return errors; }
  const flags = cm.data || {};
  for (const k of Object.keys(flags)) {
    if (!(k in KNOWN_FLAGS)) err(`ConfigMap ${cm.metadata.name}: '${k}' is not a server flag's environment variable (unknown flag)`);
  }
  for (const [k, v] of Object.entries(flags)) {
    if (STRING_FLAGS.has(k)) continue;
    if (ADDRESS_FLAGS.has(k)) {
      if (!/^.+:[0-9]+$/.test(String(v))) err(`ConfigMap ${k}: want host:port, got '${v}'`);
      continue;
    }
    if (PATH_FLAGS.has(k)) {
      if (!String(v).startsWith("/")) err(`ConfigMap ${k}: want an absolute path, got '${v}'`);
      continue;
    }
    if (DURATION_FLAGS.has(k)) {
      if (String(v) !== "inf" && Number.isNaN(parseDurationSeconds(String(v)))) err(`ConfigMap ${k}: want an absl duration like '10s', got '${v}'`);
      continue;
    }
    if (k in KNOWN_FLAGS && !/^[0-9]+$/.test(String(v))) err(`ConfigMap ${k}: want a non-negative integer, got '${v}'`);
  }
  for (const e of c.env || []) {
    if (e.name in KNOWN_FLAGS) err(`container env sets ${e.name} too; keep flags in the ConfigMap only`);
  }
  if (c.args?.length || c.command?.length) err("container: command/args would override the ConfigMap's flags; keep flags in the ConfigMap");

  // Port: the listen address, the container port, the probes, the Services and the Dockerfile agree.
  const addr = flags.TOKENSAMPLER_ADDRESS;
  const am = /^(.*):([0-9]+)$/.exec(addr || "");
  let port = NaN;
  if (!am) err(`ConfigMap TOKENSAMPLER_ADDRESS: want HOST:PORT, got '${addr}'`);
  else {
    port = Number(am[2]);
    if (!["0.0.0.0", "[::]", "[::0]"].includes(am[1])) err(`ConfigMap TOKENSAMPLER_ADDRESS: host '${am[1]}' is not reachable from other pods; listen on 0.0.0.0 or [::]`);
    if (port === 0) err("ConfigMap TOKENSAMPLER_ADDRESS: port 0 (a random port) cannot be probed or served");
  }
  const grpcPort = (c.ports || []).find((p) => p.name === "grpc");
  if (!grpcPort) err("container: no port named 'grpc'");
  else if (grpcPort.containerPort !== port) err(`container port 'grpc' is ${grpcPort.containerPort} but TOKENSAMPLER_ADDRESS listens on ${port}`);
  if (ctx.exposedPorts && !ctx.exposedPorts.includes(port)) err(`Dockerfile EXPOSE ${ctx.exposedPorts.join(" ")} does not include the listen port ${port}`);

  for (const probeName of ["readinessProbe", "livenessProbe", "startupProbe"]) {
    const probe = c[probeName];
    if (!probe) { if (probeName !== "startupProbe") err(`container: ${probeName} missing`); continue; }
    if (!probe.grpc) { err(`container ${probeName}: want a native grpc probe, got ${JSON.stringify(Object.keys(probe))}`); continue; }
    const pp = probe.grpc.port;
    if (pp !== port) err(`container ${probeName}.grpc.port is ${pp} but the server listens on ${port}`);
    const svc = probe.grpc.service ?? "";
    if (!HEALTH_SERVICES.has(svc)) err(`container ${probeName}.grpc.service '${svc}' is not a service the health server reports (${[...HEALTH_SERVICES].map((s) => `'${s}'`).join(", ")})`);
  }

  // The memory budget must be below the container's memory limit (else the kernel kills first).
  if (flags.TOKENSAMPLER_MAX_MEMORY !== undefined) {
    const budget = Number(flags.TOKENSAMPLER_MAX_MEMORY);
    const limit = parseQuantityBytes(c.resources?.limits?.memory);
    if (budget === 0) err("ConfigMap TOKENSAMPLER_MAX_MEMORY: 0 (unlimited) lets a request outgrow the memory limit");
    else if (!Number.isNaN(limit) && budget >= limit) err(`ConfigMap TOKENSAMPLER_MAX_MEMORY ${budget} is not below limits.memory (${limit} bytes)`);
  }

  // Metrics: the listen port, the container port named "metrics" and the scrape annotations agree.
  if (flags.TOKENSAMPLER_METRICS_ADDRESS) {
    const mm = /^(.*):([0-9]+)$/.exec(flags.TOKENSAMPLER_METRICS_ADDRESS);
    const metricsPort = mm ? Number(mm[2]) : NaN;
    const mp = (c.ports || []).find((p) => p.name === "metrics");
    if (!mp) err("container: TOKENSAMPLER_METRICS_ADDRESS is set but no port is named 'metrics'");
    else if (mp.containerPort !== metricsPort) err(`container port 'metrics' is ${mp.containerPort} but TOKENSAMPLER_METRICS_ADDRESS listens on ${metricsPort}`);
    const ann = dep.spec?.template?.metadata?.annotations || {};
    if (ann["prometheus.io/scrape"] !== "true") err("pod template: annotation prometheus.io/scrape is not \"true\"");
    if (Number(ann["prometheus.io/port"]) !== metricsPort) err(`pod template: annotation prometheus.io/port '${ann["prometheus.io/port"]}' is not the metrics port ${metricsPort}`);
    if ((ann["prometheus.io/path"] ?? "/metrics") !== "/metrics") err(`pod template: annotation prometheus.io/path '${ann["prometheus.io/path"]}' is not /metrics`);
  }

  const services = byKind("Service");
  const clusterIp = services.filter((s) => s.spec?.clusterIP !== "None");
  const headless = services.filter((s) => s.spec?.clusterIP === "None");
  if (clusterIp.length !== 1) err(`want 1 ClusterIP Service, got ${clusterIp.length}`);
  if (headless.length !== 1) err(`want 1 headless Service (clusterIP: None), got ${headless.length}`);
  for (const s of services) {
    const name = `Service ${s.metadata?.name}`;
    if (s.spec?.type && s.spec.type !== "ClusterIP") err(`${name}: type ${s.spec.type}, want ClusterIP`);
    if (!selects(s.spec?.selector, podLabels)) err(`${name}: selector ${JSON.stringify(s.spec?.selector)} does not select the Deployment's pods`);
    const sp = (s.spec?.ports || []).find((p) => p.name === "grpc");
    if (!sp) { err(`${name}: no port named 'grpc'`); continue; }
    const target = sp.targetPort ?? sp.port;
    const resolved = typeof target === "string" ? (c.ports || []).find((p) => p.name === target)?.containerPort : target;
    if (resolved !== port) err(`${name}: targetPort ${JSON.stringify(target)} resolves to ${resolved}, the server listens on ${port}`);
    if (s.spec?.clusterIP === "None" && sp.port !== port) err(`${name}: a headless service's clients dial the pod port; port ${sp.port} != ${port}`);
  }

  // Graceful stop: preStop delay + drain timeout must fit in the termination grace period.
  const drain = parseDurationSeconds(flags.TOKENSAMPLER_DRAIN_TIMEOUT);
  if (Number.isNaN(drain)) err(`ConfigMap TOKENSAMPLER_DRAIN_TIMEOUT: want an absl duration like '10s', got '${flags.TOKENSAMPLER_DRAIN_TIMEOUT}'`);
  const pre = c.lifecycle?.preStop;
  let preStopSeconds = NaN;
  if (pre?.sleep) preStopSeconds = Number(pre.sleep.seconds);
  else if (pre?.exec?.command) {
    const cmd = pre.exec.command;
    if (cmd.length === 2 && /(^|\/)sleep$/.test(cmd[0])) preStopSeconds = parseDurationSeconds(/^[0-9.]+$/.test(cmd[1]) ? `${cmd[1]}s` : cmd[1]);
  }
  if (Number.isNaN(preStopSeconds)) err(`container lifecycle.preStop: want a sleep (sleep.seconds or exec [sleep, N]), got ${JSON.stringify(pre)}`);
  else if (preStopSeconds <= 0) err("container lifecycle.preStop: the delay must be positive");
  const grace = podSpec.terminationGracePeriodSeconds;
  if (typeof grace !== "number") err("pod terminationGracePeriodSeconds missing");
  else if (!(grace > preStopSeconds + drain)) err(`pod terminationGracePeriodSeconds ${grace} must exceed preStop ${preStopSeconds}s + drain timeout ${drain}s`);

  // Resources: requests and limits for CPU and memory; requests <= limits; the flags fit them.
  const res = c.resources || {};
  for (const kind of ["requests", "limits"]) {
    for (const r of ["cpu", "memory"]) if (res[kind]?.[r] === undefined) err(`container resources.${kind}.${r} missing`);
  }
  const cpuReq = parseCpu(res.requests?.cpu), cpuLim = parseCpu(res.limits?.cpu);
  const memReq = parseBytes(res.requests?.memory), memLim = parseBytes(res.limits?.memory);
  if (cpuReq > cpuLim) err(`container resources: cpu request ${res.requests.cpu} > limit ${res.limits.cpu}`);
  if (memReq > memLim) err(`container resources: memory request ${res.requests.memory} > limit ${res.limits.memory}`);
  const workers = Number(flags.TOKENSAMPLER_WORKERS);
  if (flags.TOKENSAMPLER_WORKERS === undefined || workers === 0) err("ConfigMap TOKENSAMPLER_WORKERS: set it to the CPU limit (0 means every CPU of the node, not of the container)");
  else if (!Number.isNaN(cpuLim) && workers > Math.ceil(cpuLim)) err(`ConfigMap TOKENSAMPLER_WORKERS ${workers} exceeds the CPU limit ${res.limits.cpu}`);
  const maxMsg = Number(flags.TOKENSAMPLER_MAX_MESSAGE_BYTES ?? 268435456);
  if (!Number.isNaN(memLim) && 2 * maxMsg > memLim) err(`memory limit ${res.limits.memory} is less than twice TOKENSAMPLER_MAX_MESSAGE_BYTES (${maxMsg}): one maximal request and its decoded copy would not fit`);

  // Security: non-root with the image's numeric user, read-only root, no capabilities.
  const psc = podSpec.securityContext || {};
  const csc = c.securityContext || {};
  const runAsNonRoot = csc.runAsNonRoot ?? psc.runAsNonRoot;
  const runAsUser = csc.runAsUser ?? psc.runAsUser;
  if (runAsNonRoot !== true) err("securityContext.runAsNonRoot must be true");
  if (!Number.isInteger(runAsUser) || runAsUser === 0) err(`securityContext.runAsUser must be a numeric non-root uid, got ${runAsUser}`);
  if (ctx.imageUser !== undefined && runAsUser !== ctx.imageUser) err(`securityContext.runAsUser ${runAsUser} differs from the Dockerfile's USER ${ctx.imageUser}`);
  if (csc.readOnlyRootFilesystem !== true) err("container securityContext.readOnlyRootFilesystem must be true");
  if (csc.allowPrivilegeEscalation !== false) err("container securityContext.allowPrivilegeEscalation must be false");
  const drop = csc.capabilities?.drop || [];
  if (!drop.includes("ALL")) err(`container securityContext.capabilities.drop must include ALL, got ${JSON.stringify(drop)}`);
  if ((csc.capabilities?.add || []).length) err(`container securityContext.capabilities.add must be empty, got ${JSON.stringify(csc.capabilities.add)}`);

  // HorizontalPodAutoscaler on CPU for this Deployment.
  const hpas = byKind("HorizontalPodAutoscaler");
  if (hpas.length !== 1) err(`want 1 HorizontalPodAutoscaler, got ${hpas.length}`);
  for (const h of hpas) {
    if (h.apiVersion !== "autoscaling/v2") err(`HorizontalPodAutoscaler ${h.metadata?.name}: apiVersion ${h.apiVersion}, want autoscaling/v2`);
    const ref = h.spec?.scaleTargetRef || {};
    if (ref.kind !== "Deployment" || ref.name !== dep.metadata?.name || ref.apiVersion !== "apps/v1") err(`HorizontalPodAutoscaler scaleTargetRef ${JSON.stringify(ref)} does not name Deployment ${dep.metadata?.name}`);
    const cpu = (h.spec?.metrics || []).find((m) => m.type === "Resource" && m.resource?.name === "cpu");
    if (!cpu) err("HorizontalPodAutoscaler: no CPU resource metric");
    const min = h.spec?.minReplicas ?? 1, max = h.spec?.maxReplicas;
    if (!(min <= dep.spec?.replicas && dep.spec?.replicas <= max)) err(`HorizontalPodAutoscaler: replicas ${dep.spec?.replicas} outside [${min}, ${max}]`);
  }

  // PodDisruptionBudget selecting the same pods, leaving some available.
  const pdbs = byKind("PodDisruptionBudget");
  if (pdbs.length !== 1) err(`want 1 PodDisruptionBudget, got ${pdbs.length}`);
  for (const p of pdbs) {
    if (!selects(p.spec?.selector?.matchLabels, podLabels)) err(`PodDisruptionBudget ${p.metadata?.name}: selector does not select the Deployment's pods`);
    const mu = p.spec?.maxUnavailable, ma = p.spec?.minAvailable;
    if (mu === undefined && ma === undefined) err("PodDisruptionBudget: neither maxUnavailable nor minAvailable");
    if (typeof ma === "number" && ma >= dep.spec?.replicas) err(`PodDisruptionBudget minAvailable ${ma} >= replicas ${dep.spec?.replicas}: no pod could ever be evicted`);
    if (typeof mu === "number" && mu < 1) err("PodDisruptionBudget maxUnavailable < 1: no pod could ever be evicted");
  }
  return errors;
}

// ---------------------------------------------------------------------------------------------
// The sidecar example: model server + sampler in one pod, shared memory and a Unix socket

function sidecarErrors(objects) {
  const errors = [];
  const err = (m) => errors.push(`sidecar: ${m}`);
  const all = objects.map((o) => o.obj);
  const deps = all.filter((o) => o.kind === "Deployment");
  if (deps.length !== 1) { err(`want exactly 1 Deployment, got ${deps.length}`); return errors; }
  const podSpec = deps[0].spec?.template?.spec || {};
  const containers = podSpec.containers || [];
  const sampler = containers.find((c) => c.name === "tokensampler");
  const others = containers.filter((c) => c.name !== "tokensampler");
  if (!sampler) { err("no container named 'tokensampler'"); return errors; }
  if (others.length < 1) { err("no model-server container next to the sampler"); return errors; }
  const cm = all.find((o) => o.kind === "ConfigMap" && (sampler.envFrom || []).some((e) => e.configMapRef?.name === o.metadata?.name));
  if (!cm) { err("the sampler's envFrom names no ConfigMap of the example"); return errors; }
  const flags = cm.data || {};
  for (const k of Object.keys(flags)) if (!(k in KNOWN_FLAGS)) err(`ConfigMap '${k}' is not a server flag's environment variable (unknown flag)`);
  const volumes = Object.fromEntries((podSpec.volumes || []).map((v) => [v.name, v]));
  const mountAt = (c, p) => (c.volumeMounts || []).find((m) => m.mountPath === p);
  const uid = (c) => c.securityContext?.runAsUser ?? podSpec.securityContext?.runAsUser;

  // Shared memory: one memory-backed emptyDir at /dev/shm in every container.
  const shm = mountAt(sampler, "/dev/shm");
  if (!shm) err("the sampler does not mount a volume at /dev/shm");
  else {
    const v = volumes[shm.name];
    if (!v?.emptyDir || v.emptyDir.medium !== "Memory") err(`volume '${shm.name}' at /dev/shm: want an emptyDir with medium: Memory`);
    for (const o of others) {
      const m = mountAt(o, "/dev/shm");
      if (!m || m.name !== shm.name) err(`container '${o.name}' does not mount volume '${shm.name}' at /dev/shm: its shared memory objects would be invisible to the sampler`);
      if (m?.readOnly) err(`container '${o.name}' mounts /dev/shm read-only: it cannot create its objects`);
      if (uid(o) !== uid(sampler)) err(`container '${o.name}' runs as uid ${uid(o)}, the sampler as ${uid(sampler)}: the sampler could not open its 0600 objects`);
    }
    const limit = parseBytes(volumes[shm.name]?.emptyDir?.sizeLimit);
    const maxBytes = Number(flags.TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES ?? 17179869184);
    if (!Number.isNaN(limit) && maxBytes > limit) err(`TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES ${maxBytes} exceeds the /dev/shm sizeLimit ${volumes[shm.name].emptyDir.sizeLimit}`);
  }
  const mode = flags.TOKENSAMPLER_SHARED_MEMORY ?? "local";
  if (!["local", "any"].includes(mode)) err(`TOKENSAMPLER_SHARED_MEMORY: want local (or any), got '${mode}'`);
  const prefix = flags.TOKENSAMPLER_SHARED_MEMORY_PREFIX ?? "/tokensampler";
  if (!/^\/[^/]+$/.test(prefix)) err(`TOKENSAMPLER_SHARED_MEMORY_PREFIX: want '/' and a name without '/', got '${prefix}'`);

  // The Unix socket: its directory is a volume both containers mount; the model server dials it.
  const entries = String(flags.TOKENSAMPLER_ADDRESS || "").split(",").map((a) => a.trim());
  const unix = entries.find((a) => a.startsWith("unix:"));
  if (!unix) err(`TOKENSAMPLER_ADDRESS: want a unix:PATH entry, got '${flags.TOKENSAMPLER_ADDRESS}'`);
  else {
    const socketPath = unix.slice(5).replace(/^\/\//, "");
    const dir = path.posix.dirname(socketPath);
    const m = mountAt(sampler, dir);
    if (!m) err(`the socket directory ${dir} is not a volume mount of the sampler`);
    else {
      for (const o of others) {
        const om = (o.volumeMounts || []).find((x) => x.name === m.name);
        if (!om) { err(`container '${o.name}' does not mount the socket volume '${m.name}'`); continue; }
        const want = `${om.mountPath}/${path.posix.basename(socketPath)}`;
        const server = (o.env || []).find((e) => e.name === "TOKENSAMPLER_SERVER")?.value;
        if (server !== undefined && server.replace(/^unix:(\/\/)?/, "") !== want) err(`container '${o.name}' TOKENSAMPLER_SERVER '${server}' is not the socket unix:${want}`);
      }
    }
  }
  // Probes reach the sampler over its loopback TCP entry.
  const tcp = entries.map((a) => /^(.*):([0-9]+)$/.exec(a)).find((x) => x && !x[0].startsWith("unix:"));
  for (const probeName of ["readinessProbe", "livenessProbe"]) {
    const probe = sampler[probeName];
    if (!probe?.grpc) { err(`sampler ${probeName}: want a native grpc probe`); continue; }
    if (!tcp || Number(tcp[2]) !== probe.grpc.port) err(`sampler ${probeName}.grpc.port ${probe.grpc.port} is not a TCP port of TOKENSAMPLER_ADDRESS`);
  }
  const csc = sampler.securityContext || {};
  if (csc.readOnlyRootFilesystem !== true) err("sampler securityContext.readOnlyRootFilesystem must be true");
  if (!(csc.capabilities?.drop || []).includes("ALL")) err("sampler securityContext.capabilities.drop must include ALL");
  if ((podSpec.securityContext?.runAsNonRoot ?? csc.runAsNonRoot) !== true) err("securityContext.runAsNonRoot must be true");
  return errors;
}

function sidecarMutations() {
  const spec = (os) => os.find((o) => o.obj.kind === "Deployment").obj.spec.template.spec;
  const ctr = (os, name) => spec(os).containers.find((c) => c.name === name);
  const cm = (os) => os.find((o) => o.obj.kind === "ConfigMap").obj;
  return [
    ["model server without the shared /dev/shm", (os) => { const c = ctr(os, "model-server"); c.volumeMounts = c.volumeMounts.filter((m) => m.mountPath !== "/dev/shm"); }, "invisible to the sampler"],
    ["/dev/shm on disk", (os) => { delete spec(os).volumes.find((v) => v.name === "dshm").emptyDir.medium; }, "medium: Memory"],
    ["socket in an unshared directory", (os) => { cm(os).data.TOKENSAMPLER_ADDRESS = "127.0.0.1:50051,unix:/tmp/sampler.sock"; }, "socket directory /tmp"],
    ["model server dials another path", (os) => { ctr(os, "model-server").env[0].value = "unix:/run/sampler.sock"; }, "TOKENSAMPLER_SERVER"],
    ["shared memory off", (os) => { cm(os).data.TOKENSAMPLER_SHARED_MEMORY = "off"; }, "TOKENSAMPLER_SHARED_MEMORY"],
    ["model server under another uid", (os) => { ctr(os, "model-server").securityContext.runAsUser = 10002; }, "0600 objects"],
    ["byte limit beyond /dev/shm", (os) => { cm(os).data.TOKENSAMPLER_MAX_SHARED_MEMORY_BYTES = "4294967296"; }, "sizeLimit"],
    ["probe on a port the sampler does not listen on", (os) => { ctr(os, "tokensampler").readinessProbe.grpc.port = 50052; }, "readinessProbe.grpc.port"],
  ];
}

// ---------------------------------------------------------------------------------------------
// Cross-checks with other tools and files

function dockerfileContext(file) {
  if (!file) return {};
  const text = readFileSync(file, "utf8").replace(/\\\n/g, " ");
  const stages = text.split(/^FROM\s/m);
  const last = stages[stages.length - 1];
  const ctx = {};
  const user = /^USER\s+([0-9]+)(:[0-9]+)?\s*$/m.exec(last);
  if (user) ctx.imageUser = Number(user[1]);
  else ctx.dockerfileError = `${file}: the runtime stage has no numeric USER`;
  const expose = [...last.matchAll(/^EXPOSE\s+(.+)$/gm)].flatMap((m) => m[1].trim().split(/\s+/)).map((p) => Number(p.split("/")[0]));
  ctx.exposedPorts = expose;
  return ctx;
}

function serverFlagErrors(binary, flags) {
  if (!binary) return [];
  let help;
  try {
    help = execFileSync(binary, ["--helpfull"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    if (e.code === "ENOENT" || e.code === "EACCES") return [`cannot run ${binary}: ${e.code}`];
    // abseil's --helpfull exits with code 1 after printing.
    help = `${e.stdout || ""}${e.stderr || ""}`;
  }
  const errors = [];
  for (const k of Object.keys(flags)) {
    const flag = KNOWN_FLAGS[k];
    if (flag && !new RegExp(`--${flag}\\b`).test(help)) errors.push(`ConfigMap ${k}: ${binary} --helpfull lists no --${flag}`);
    // The server documents the variable in the flag's help ("Env TOKENSAMPLER_..."); lines may wrap.
    else if (flag && !help.replace(/\s+/g, " ").includes(`Env ${k}`)) errors.push(`ConfigMap ${k}: ${binary} --helpfull does not say --${flag} reads ${k}`);
  }
  return errors;
}

function kubectlErrors(kubectl, dir, mine) {
  if (!kubectl) return { errors: [], note: "kubectl not given: skipped the `kubectl kustomize` cross-check" };
  let out;
  try {
    out = execFileSync(kubectl, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    return { errors: [`kubectl kustomize ${dir} failed: ${e.stderr || e.message}`] };
  }
  const theirs = parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
  const errors = [];
  const mineByKey = new Map(mine.map(({ obj }) => [key(obj), JSON.stringify(canonical(obj))]));
  const theirsByKey = new Map(theirs.map((o) => [key(o), JSON.stringify(canonical(o))]));
  for (const [k, v] of theirsByKey) {
    if (!mineByKey.has(k)) errors.push(`kubectl kustomize renders ${k}, this validator does not`);
    else if (mineByKey.get(k) !== v) errors.push(`kubectl kustomize renders ${k} differently:\n  kubectl: ${v}\n  here:    ${mineByKey.get(k)}`);
  }
  for (const k of mineByKey.keys()) if (!theirsByKey.has(k)) errors.push(`this validator renders ${k}, kubectl kustomize does not`);
  return { errors, note: `kubectl kustomize renders the same ${theirs.length} objects` };
}

// ---------------------------------------------------------------------------------------------
// deploy/compose.yaml: the replicas, nginx and the flags agree (it cannot be run here: no engine).

function composeErrors(compose, composeDir) {
  const errors = [];
  const err = (m) => errors.push(`compose: ${m}`);
  const services = compose?.services || {};
  const ts = services.tokensampler, nx = services.nginx;
  if (!ts) { err("no service 'tokensampler'"); return errors; }
  if (!nx) { err("no service 'nginx'"); return errors; }
  const env = (svc) => {
    const e = svc.environment || {};
    if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
    return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
  };
  const tsEnv = env(ts), nxEnv = env(nx);
  for (const k of Object.keys(tsEnv)) if (!(k in KNOWN_FLAGS)) err(`tokensampler environment '${k}' is not a server flag (unknown flag)`);
  const am = /^(.*):([0-9]+)$/.exec(tsEnv.TOKENSAMPLER_ADDRESS || "");
  if (!am || am[1] !== "0.0.0.0") err(`tokensampler TOKENSAMPLER_ADDRESS '${tsEnv.TOKENSAMPLER_ADDRESS}' must listen on 0.0.0.0:PORT for nginx to reach it`);
  const port = am ? Number(am[2]) : NaN;
  if (!(ts.expose || []).map(String).includes(String(port))) err(`tokensampler expose ${JSON.stringify(ts.expose)} lacks the listen port ${port}`);
  const replicas = String(ts.deploy?.replicas ?? "1");
  const rm = /^(?:\$\{[A-Z_]+:-([0-9]+)\}|([0-9]+))$/.exec(replicas);
  if (!rm || Number(rm[1] ?? rm[2]) < 2) err(`tokensampler deploy.replicas '${replicas}' must default to 2 or more`);
  const drain = parseDurationSeconds(tsEnv.TOKENSAMPLER_DRAIN_TIMEOUT ?? "10s");
  const grace = parseDurationSeconds(String(ts.stop_grace_period ?? "10s"));
  if (!(grace > drain)) err(`tokensampler stop_grace_period ${ts.stop_grace_period} must exceed the drain timeout ${drain}s`);
  const ups = (nxEnv.TOKENSAMPLER_UPSTREAMS || "").split(",").filter(Boolean);
  if (!ups.length) err("nginx TOKENSAMPLER_UPSTREAMS is empty");
  for (const u of ups) {
    const [host, p] = [u.slice(0, u.lastIndexOf(":")), Number(u.slice(u.lastIndexOf(":") + 1))];
    if (host !== "tokensampler") err(`nginx upstream '${u}' does not name the tokensampler service`);
    if (p !== port) err(`nginx upstream '${u}' port ${p} != the replicas' listen port ${port}`);
  }
  const listenPort = Number(String(nxEnv.NGINX_LISTEN || "").split(":").pop());
  const published = (nx.ports || []).map((p) => Number(String(p).split(":").pop()));
  if (!published.includes(listenPort)) err(`nginx ports ${JSON.stringify(nx.ports)} do not publish NGINX_LISTEN ${nxEnv.NGINX_LISTEN}`);
  if (nx.depends_on?.tokensampler?.condition !== "service_healthy") err("nginx must depend on tokensampler with condition service_healthy (it resolves the replicas once at start)");
  for (const [name, svc] of [["tokensampler", ts], ["nginx", nx]]) {
    if (!svc.build) continue;
    const ctxDir = path.resolve(composeDir, svc.build.context || ".");
    const df = path.resolve(ctxDir, svc.build.dockerfile || "Dockerfile");
    if (!existsSync(df)) err(`${name} build: ${df} does not exist`);
    if (svc.read_only !== true) err(`${name}: read_only must be true`);
    if (!(svc.cap_drop || []).includes("ALL")) err(`${name}: cap_drop must include ALL`);
  }
  if (nx.read_only && !(nx.tmpfs || []).some((t) => String(t).startsWith("/run/tokensampler-nginx"))) err("nginx is read-only but has no tmpfs for /run/tokensampler-nginx (its prefix)");
  return errors;
}

// ---------------------------------------------------------------------------------------------
// Self-test: each mutation must be reported by the schema or the structural checks.

// "1Gi" / "512Mi" / "1G" / "1073741824" -> bytes; NaN when absent or unreadable.
function parseQuantityBytes(q) {
  const m = /^([0-9.]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q ?? ""));
  if (!m) return NaN;
  const unit = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2]] ?? 1;
  return Number(m[1]) * unit;
}

function mutations() {
  const dep = (os) => os.find((o) => o.obj.kind === "Deployment").obj;
  const ctr = (os) => dep(os).spec.template.spec.containers[0];
  const cm = (os) => os.find((o) => o.obj.kind === "ConfigMap").obj;
  const svc = (os, headless) => os.find((o) => o.obj.kind === "Service" && (o.obj.spec.clusterIP === "None") === headless).obj;
  return [
    ["memory budget above the memory limit", (os) => { cm(os).data.TOKENSAMPLER_MAX_MEMORY = "2147483648"; }, "not below limits.memory"],
    ["metrics port differs from the metrics address", (os) => { ctr(os).ports.find((p) => p.name === "metrics").containerPort = 9091; }, "container port 'metrics'"],
    ["scrape annotation on another port", (os) => { dep(os).spec.template.metadata.annotations["prometheus.io/port"] = "8080"; }, "prometheus.io/port"],
    ["metrics address not host:port", (os) => { cm(os).data.TOKENSAMPLER_METRICS_ADDRESS = "9090"; }, "want host:port"],
    ["readiness probe on another port", (os) => { ctr(os).readinessProbe.grpc.port = 50052; }, "readinessProbe.grpc.port"],
    ["liveness probe over HTTP", (os) => { ctr(os).livenessProbe = { httpGet: { path: "/", port: 50051 } }; }, "livenessProbe: want a native grpc probe"],
    ["probe of an unknown health service", (os) => { ctr(os).readinessProbe.grpc.service = "sampler"; }, "readinessProbe.grpc.service"],
    ["container port differs from the listen address", (os) => { ctr(os).ports[0].containerPort = 8080; }, "container port 'grpc'"],
    ["listen address moved", (os) => { cm(os).data.TOKENSAMPLER_ADDRESS = "0.0.0.0:6000"; }, "listens on 6000"],
    ["listen on loopback only", (os) => { cm(os).data.TOKENSAMPLER_ADDRESS = "127.0.0.1:50051"; }, "not reachable from other pods"],
    ["grace period shorter than preStop + drain", (os) => { dep(os).spec.template.spec.terminationGracePeriodSeconds = 12; }, "terminationGracePeriodSeconds 12"],
    ["drain timeout longer than the grace period", (os) => { cm(os).data.TOKENSAMPLER_DRAIN_TIMEOUT = "1m"; }, "must exceed"],
    ["drain timeout not a duration", (os) => { cm(os).data.TOKENSAMPLER_DRAIN_TIMEOUT = "10 seconds"; }, "TOKENSAMPLER_DRAIN_TIMEOUT"],
    ["unknown flag in the ConfigMap", (os) => { cm(os).data.TOKENSAMPLER_THREADS = "4"; }, "unknown flag"],
    ["ConfigMap not loaded", (os) => { ctr(os).envFrom[0].configMapRef.name = "other"; }, "envFrom"],
    ["Service selector matches no pod", (os) => { svc(os, false).spec.selector["app.kubernetes.io/name"] = "tokensamplr"; }, "does not select"],
    ["headless Service targets another port", (os) => { svc(os, true).spec.ports[0].targetPort = 9000; }, "targetPort"],
    ["headless Service became a ClusterIP", (os) => { delete svc(os, true).spec.clusterIP; }, "headless"],
    ["Deployment selector differs from pod labels", (os) => { dep(os).spec.template.metadata.labels["app.kubernetes.io/component"] = "x"; }, "selector"],
    ["two replicas", (os) => { dep(os).spec.replicas = 2; }, "replicas"],
    ["root user", (os) => { ctr(os).securityContext.runAsUser = 0; dep(os).spec.template.spec.securityContext.runAsUser = 0; }, "runAsUser"],
    ["writable root filesystem", (os) => { ctr(os).securityContext.readOnlyRootFilesystem = false; }, "readOnlyRootFilesystem"],
    ["capabilities kept", (os) => { ctr(os).securityContext.capabilities.drop = []; }, "capabilities.drop"],
    ["no memory limit", (os) => { delete ctr(os).resources.limits.memory; }, "resources.limits.memory"],
    ["CPU request above the limit", (os) => { ctr(os).resources.requests.cpu = "4"; }, "cpu request"],
    ["workers from the node's CPUs", (os) => { cm(os).data.TOKENSAMPLER_WORKERS = "0"; }, "TOKENSAMPLER_WORKERS"],
    ["message limit beyond memory", (os) => { cm(os).data.TOKENSAMPLER_MAX_MESSAGE_BYTES = "1073741824"; }, "MAX_MESSAGE_BYTES"],
    ["HPA aims at another Deployment", (os) => { os.find((o) => o.obj.kind === "HorizontalPodAutoscaler").obj.spec.scaleTargetRef.name = "x"; }, "scaleTargetRef"],
    ["PDB that blocks every eviction", (os) => { const p = os.find((o) => o.obj.kind === "PodDisruptionBudget").obj; delete p.spec.maxUnavailable; p.spec.minAvailable = 3; }, "minAvailable 3"],
    ["schema: port as a string", (os) => { ctr(os).ports[0].containerPort = "50051"; }, "schema"],
    ["schema: probe period as a string", (os) => { ctr(os).livenessProbe.periodSeconds = "10s"; }, "schema"],
    ["schema: replicas as a string", (os) => { dep(os).spec.replicas = "3"; }, "schema"],
  ];
}

async function allErrors(objects, ctx) {
  return [...(await schemaErrors(objects)), ...structuralErrors(objects, ctx)];
}

// ---------------------------------------------------------------------------------------------

const base = path.resolve(args.base);
const objects = renderKustomization(base);
const ctx = dockerfileContext(args.dockerfile);
const errors = [];
if (ctx.dockerfileError) errors.push(ctx.dockerfileError);
errors.push(...(await allErrors(objects, ctx)));
const cmObj = objects.find((o) => o.obj.kind === "ConfigMap")?.obj;
errors.push(...serverFlagErrors(args.serverBinary, cmObj?.data || {}));
let sidecar;
if (args.sidecar) {
  sidecar = renderKustomization(path.resolve(args.sidecar));
  errors.push(...(await schemaErrors(sidecar)), ...sidecarErrors(sidecar));
  const scm = sidecar.find((o) => o.obj.kind === "ConfigMap")?.obj;
  errors.push(...serverFlagErrors(args.serverBinary, scm?.data || {}));
  errors.push(...kubectlErrors(args.kubectl, path.resolve(args.sidecar), sidecar).errors);
}
let compose;
if (args.compose) {
  compose = parseYaml(readFileSync(args.compose, "utf8"));
  errors.push(...composeErrors(compose, path.dirname(path.resolve(args.compose))));
}
const kc = kubectlErrors(args.kubectl, base, objects);
errors.push(...kc.errors);

console.log(`rendered ${objects.length} objects: ${objects.map(({ obj }) => `${obj.kind}/${obj.metadata?.name}`).join(", ")}`);
if (kc.note && !kc.errors.length) console.log(kc.note);
if (sidecar) console.log(`rendered the sidecar example: ${sidecar.map(({ obj }) => `${obj.kind}/${obj.metadata?.name}`).join(", ")}`);
if (args.compose) console.log(`checked ${args.compose} (replicas, nginx upstreams, ports, drain vs stop_grace_period)`);
if (args.serverBinary) console.log(`every ConfigMap variable is a flag that ${path.basename(args.serverBinary)} --helpfull says reads it`);
let failed = false;
if (errors.length) {
  failed = true;
  console.log(`FAIL: ${errors.length} problem(s) in ${base}:`);
  for (const e of errors) console.log(`  - ${e}`);
} else {
  console.log("OK: schema (kubernetes-models) and structural checks pass");
}

if (args.selfTest) {
  let caught = 0;
  const list = mutations();
  for (const [name, mutate, expect] of list) {
    const copy = structuredClone(objects);
    mutate(copy);
    const errs = await allErrors(copy, ctx);
    const hit = errs.find((e) => e.includes(expect));
    if (hit) caught++;
    else {
      failed = true;
      console.log(`SELF-TEST FAIL: '${name}' was not reported as '${expect}'; got: ${JSON.stringify(errs)}`);
    }
  }
  if (sidecar) {
    const sidecarList = sidecarMutations();
    for (const [name, mutate, expect] of sidecarList) {
      const copy = structuredClone(sidecar);
      mutate(copy);
      const errs = sidecarErrors(copy);
      if (errs.some((e) => e.includes(expect))) caught++;
      else { failed = true; console.log(`SELF-TEST FAIL: '${name}' was not reported as '${expect}'; got: ${JSON.stringify(errs)}`); }
    }
    list.push(...sidecarList);
  }
  if (compose) {
    const composeMutations = [
      ["nginx upstream on another port", (c) => { c.services.nginx.environment.TOKENSAMPLER_UPSTREAMS = "tokensampler:50052"; }, "port 50052"],
      ["stop grace below the drain timeout", (c) => { c.services.tokensampler.stop_grace_period = "5s"; }, "stop_grace_period"],
      ["replicas listen on loopback", (c) => { c.services.tokensampler.environment.TOKENSAMPLER_ADDRESS = "127.0.0.1:50051"; }, "0.0.0.0"],
      ["nginx listen port not published", (c) => { c.services.nginx.environment.NGINX_LISTEN = "9090"; }, "do not publish"],
    ];
    for (const [name, mutate, expect] of composeMutations) {
      const copy = structuredClone(compose);
      mutate(copy);
      const errs = composeErrors(copy, path.dirname(path.resolve(args.compose)));
      if (errs.some((e) => e.includes(expect))) caught++;
      else { failed = true; console.log(`SELF-TEST FAIL: '${name}' was not reported as '${expect}'; got: ${JSON.stringify(errs)}`); }
    }
    list.push(...composeMutations);
  }
  console.log(`self-test: ${caught}/${list.length} broken variants reported`);
}
process.exit(failed ? 1 : 0);
