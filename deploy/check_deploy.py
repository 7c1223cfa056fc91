"""Consistency checks of deploy/ against the code, run by deploy/validate.sh.

kubernetes-validate checks the manifests against the Kubernetes schemas; this checks what no
schema knows:
  - every pulsed flag used in compose.yaml and in the StatefulSets exists for that role in
    crates/pulsed/src/cli.rs, and the compose services use exactly the agreed flags;
  - every key of the ConfigMap's pulse.toml is a field of ServerConfig
    (crates/pulse-coordinator/src/config.rs), as pulsed rejects unknown keys;
  - each coordinator's --advertise is one of its --peers (pulsed finds its raft id that way);
  - kustomization.yaml lists exactly the manifests of deploy/k8s, the labels, probes, preStop
    drain and PodDisruptionBudgets are there;
  - the Dockerfile builds and installs the three binaries.
Prints every failure and exits 1 if there is any.

Usage: check_deploy.py REPO_ROOT
"""

import pathlib
import re
import sys
import tomllib

import yaml

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
K8S = ROOT / "deploy" / "k8s"
BINARIES = ("pulsed", "pulsectl", "pulse-loadgen")
# The flags a compose service passes: exactly these (plus --peers or --join by role).
COMPOSE_FLAGS = {"--advertise", "--listen", "--data-dir", "--metrics-listen"}
ROLE_FLAG = {"coordinator": "--peers", "node": "--join"}
NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"

failures = []


def fail(where, message):
    failures.append(f"{where}: {message}")


# ---- what the code accepts ----------------------------------------------------------------


def rust_struct(text, name):
    """The body of `pub struct NAME { ... }` (up to the closing brace at column 0)."""
    match = re.search(r"pub struct " + name + r" \{\n(.*?)\n\}", text, re.S)
    if not match:
        raise SystemExit(f"check_deploy: struct {name} not found; update deploy/check_deploy.py")
    return match.group(1)


def clap_flags(text, struct):
    """The --long flags of a clap `Args` struct, following `#[command(flatten)]` fields."""
    flags = set()
    attributes = ""  # the attribute text since the previous field (may span lines)
    for line in rust_struct(text, struct).splitlines():
        line = line.strip()
        if line.startswith("//"):
            continue
        field = re.match(r"pub (\w+): (\w+)", line)
        if not field:
            attributes += " " + line
            continue
        name, kind = field.groups()
        if "flatten" in attributes:
            flags |= clap_flags(text, kind)
        elif re.search(r"#\[arg\([^\]]*\blong\b", attributes):
            flags.add("--" + name.replace("_", "-"))
        attributes = ""
    return flags


cli_rs = (ROOT / "crates/pulsed/src/cli.rs").read_text()
PULSED_FLAGS = {"coordinator": clap_flags(cli_rs, "CoordinatorArgs"), "node": clap_flags(cli_rs, "NodeArgs")}
config_rs = (ROOT / "crates/pulse-coordinator/src/config.rs").read_text()
CONFIG_KEYS = set(re.findall(r"^\s*pub (\w+):", rust_struct(config_rs, "ServerConfig"), re.M))


def parse_args(where, args):
    """(role, {flag: value}) of a `pulsed ROLE --flag value|--flag=value ...` argument list."""
    if not args or args[0] not in PULSED_FLAGS:
        fail(where, f"expected `coordinator` or `node` as the first argument, got {args[:1]}")
        return None, {}
    role, flags, rest = args[0], {}, list(args[1:])
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--"):
            fail(where, f"unexpected argument {arg!r}")
            continue
        flag, _, value = arg.partition("=")
        if not _:
            value = rest.pop(0) if rest else ""
        if flag not in PULSED_FLAGS[role]:
            fail(where, f"pulsed {role} has no flag {flag} (it has {sorted(PULSED_FLAGS[role])})")
        if flag in flags:
            fail(where, f"{flag} given twice")
        flags[flag] = value
    return role, flags


def check_peers(where, advertise, peers):
    if advertise not in peers.split(","):
        fail(where, f"--advertise {advertise} is not one of --peers {peers}")


# ---- compose.yaml -------------------------------------------------------------------------


def check_compose():
    where = "deploy/compose.yaml"
    compose = yaml.safe_load((ROOT / where).read_text())
    services = compose.get("services") or {}
    expected = {"c1": "coordinator", "c2": "coordinator", "c3": "coordinator",
                "n1": "node", "n2": "node", "n3": "node"}
    for name, role in expected.items():
        if name not in services:
            fail(where, f"service {name} is missing")
            continue
        service, here = services[name], f"{where} service {name}"
        command = service.get("command")
        if not isinstance(command, list):
            fail(here, "command must be a list")
            continue
        got_role, flags = parse_args(here, [str(a) for a in command])
        if got_role != role:
            fail(here, f"expected a pulsed {role}, got {got_role}")
            continue
        wanted = COMPOSE_FLAGS | {ROLE_FLAG[role]}
        if set(flags) != wanted:
            fail(here, f"flags {sorted(flags)} differ from the agreed {sorted(wanted)}")
        if flags.get("--advertise") != f"{name}:50051":
            fail(here, f"--advertise must be {name}:50051, got {flags.get('--advertise')}")
        if flags.get("--data-dir") != "/var/lib/pulse":
            fail(here, "--data-dir must be /var/lib/pulse (the image's volume)")
        coordinators = "c1:50051,c2:50051,c3:50051"
        if flags.get(ROLE_FLAG[role]) != coordinators:
            fail(here, f"{ROLE_FLAG[role]} must be {coordinators}")
        if role == "coordinator" and "--advertise" in flags and "--peers" in flags:
            check_peers(here, flags["--advertise"], flags["--peers"])
        volumes = service.get("volumes") or []
        if not any(str(v).endswith(":/var/lib/pulse") for v in volumes):
            fail(here, "no volume mounted at /var/lib/pulse")
        for volume in volumes:
            source = str(volume).split(":")[0]
            if source not in (compose.get("volumes") or {}):
                fail(here, f"volume {source} is not a named volume of the file")
    if not any(s.get("ports") for s in services.values() if isinstance(s, dict)):
        fail(where, "no service publishes a port")


# ---- deploy/k8s ---------------------------------------------------------------------------


def load_k8s():
    resources = {}
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization.get("resources") or [])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    if listed != present:
        fail("deploy/k8s/kustomization.yaml",
             f"resources {sorted(listed)} differ from the files {sorted(present)}")
    for path in sorted(present):
        for doc in yaml.safe_load_all((K8S / path).read_text()):
            if doc:
                resources[(doc["kind"], doc["metadata"]["name"])] = (path, doc)
    return resources


def check_labels(where, labels, component):
    labels = labels or {}
    if labels.get(NAME_LABEL) != "pulse":
        fail(where, f"label {NAME_LABEL}: pulse is missing")
    if component and labels.get(COMPONENT_LABEL) != component:
        fail(where, f"label {COMPONENT_LABEL}: {component} is missing")


def expand(text, pod, namespace="ns"):
    """The Kubernetes $(VAR) expansion of the downward-API variables for pod POD."""
    return text.replace("$(POD_NAME)", pod).replace("$(POD_NAMESPACE)", namespace)


def check_statefulset(resources, component):
    name = f"pulse-{component}"
    found = resources.get(("StatefulSet", name))
    if not found:
        fail("deploy/k8s", f"StatefulSet {name} is missing")
        return
    path, sts = found
    where = f"deploy/k8s/{path} StatefulSet {name}"
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    check_labels(where, sts["metadata"].get("labels"), component)
    check_labels(where + " pod template", sts["spec"]["template"]["metadata"].get("labels"), component)
    if spec.get("serviceName") != name:
        fail(where, f"serviceName must be the headless Service {name}")
    if not spec.get("volumeClaimTemplates"):
        fail(where, "no volumeClaimTemplates")
    if component == "coordinator" and spec.get("podManagementPolicy") != "Parallel":
        fail(where, "coordinators need podManagementPolicy: Parallel")
    if not (pod.get("affinity") or {}).get("podAntiAffinity"):
        fail(where, "no pod anti-affinity")
    (container,) = pod["containers"]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container.get("env", [])}
    if env.get("POD_NAME") != "metadata.name" or env.get("POD_NAMESPACE") != "metadata.namespace":
        fail(where, "POD_NAME and POD_NAMESPACE must come from the downward API")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if (container.get(probe) or {}).get("grpc", {}).get("port") != 50051:
            fail(where, f"{probe} must be a native gRPC probe on port 50051")
    resources_spec = container.get("resources") or {}
    if not resources_spec.get("requests") or not resources_spec.get("limits"):
        fail(where, "resource requests and limits are required")
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if mounts.get("/var/lib/pulse") != "data" or "/etc/pulse" not in mounts:
        fail(where, "the data volume must be mounted at /var/lib/pulse and the config at /etc/pulse")
    role, flags = parse_args(where, container.get("args") or [])
    if role != component:
        fail(where, f"runs pulsed {role}, expected {component}")
        return
    if flags.get("--config") != "/etc/pulse/pulse.toml":
        fail(where, "must pass --config /etc/pulse/pulse.toml")
    coordinators = ",".join(
        f"pulse-coordinator-{i}.pulse-coordinator.$(POD_NAMESPACE).svc.cluster.local:50051" for i in range(3))
    if flags.get(ROLE_FLAG[role]) != coordinators:
        fail(where, f"{ROLE_FLAG[role]} must list the 3 coordinator pod DNS names: {coordinators}")
    advertise = f"$(POD_NAME).{name}.$(POD_NAMESPACE).svc.cluster.local:50051"
    if flags.get("--advertise") != advertise:
        fail(where, f"--advertise must be {advertise}")
    if role == "coordinator":
        for ordinal in range(spec.get("replicas", 1)):
            check_peers(f"{where} pod {ordinal}", expand(flags.get("--advertise", ""), f"{name}-{ordinal}"),
                        expand(flags.get("--peers", ""), f"{name}-{ordinal}"))
    if role == "node":
        pre_stop = " ".join(container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", []))
        drain = 'cluster drain "$POD_NAME.pulse-node.$POD_NAMESPACE.svc.cluster.local:50051" --timeout'
        if "pulsectl --addr 127.0.0.1:50051" not in pre_stop or drain not in pre_stop:
            fail(where, "the preStop hook must drain the node (pulsectl cluster drain ...)")
        timeout = re.search(r"--timeout (\d+)s\b", pre_stop)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        if not timeout or grace <= int(timeout.group(1)):  # --timeout in seconds, e.g. 600s
            fail(where, "terminationGracePeriodSeconds must exceed the drain --timeout")


def check_k8s():
    resources = load_k8s()
    for (kind, name), (path, doc) in resources.items():
        component = None if name in ("pulse", "pulse-config") else name.removeprefix("pulse-")
        check_labels(f"deploy/k8s/{path} {kind} {name}", doc["metadata"].get("labels"), component)
    check_statefulset(resources, "coordinator")
    check_statefulset(resources, "node")
    for component in ("coordinator", "node"):
        name = f"pulse-{component}"
        service = resources.get(("Service", name), (None, None))[1]
        if not service or service["spec"].get("clusterIP") != "None" or not service["spec"].get("publishNotReadyAddresses"):
            fail("deploy/k8s", f"Service {name} must be headless with publishNotReadyAddresses: true")
        pdb = resources.get(("PodDisruptionBudget", name), (None, None))[1]
        if not pdb or pdb["spec"].get("maxUnavailable") != 1:
            fail("deploy/k8s", f"PodDisruptionBudget {name} with maxUnavailable: 1 is missing")
    client = resources.get(("Service", "pulse"), (None, None))[1]
    if not client or client["spec"].get("selector") != {NAME_LABEL: "pulse"}:
        fail("deploy/k8s", "Service pulse must select every pulse pod (coordinators and nodes)")
    config = resources.get(("ConfigMap", "pulse-config"), (None, None))[1]
    if not config or "pulse.toml" not in config.get("data", {}):
        fail("deploy/k8s", "ConfigMap pulse-config with a pulse.toml is missing")
        return
    try:
        toml = tomllib.loads(config["data"]["pulse.toml"])
    except tomllib.TOMLDecodeError as error:
        fail("deploy/k8s/configmap.yaml", f"pulse.toml does not parse: {error}")
        return
    unknown = set(toml) - CONFIG_KEYS
    if unknown:
        fail("deploy/k8s/configmap.yaml", f"pulse.toml keys {sorted(unknown)} are not ServerConfig fields "
             f"(pulsed would refuse to start); valid: {sorted(CONFIG_KEYS)}")


# ---- Dockerfile ---------------------------------------------------------------------------


def check_dockerfile():
    where = "deploy/Dockerfile"
    text = (ROOT / where).read_text()
    build = re.search(r"cargo build --release --locked((?: -p [\w-]+)+)", text)
    built = set(build.group(1).split()[1::2]) if build else set()
    for binary in BINARIES:
        if binary not in built:
            fail(where, f"`cargo build --release --locked` does not build -p {binary}")
        if not re.search(r"COPY --from=builder .*/" + re.escape(binary) + r"\b.* /usr/local/bin/", text):
            fail(where, f"{binary} is not copied to /usr/local/bin/ of the runtime image")
    for needle in ("FROM rust:1-bookworm", "FROM debian:bookworm-slim", "librocksdb7.8",
                   "EXPOSE 50051 9090", 'ENTRYPOINT ["pulsed"]', "USER "):
        if needle not in text:
            fail(where, f"{needle!r} is missing")


check_compose()
check_k8s()
check_dockerfile()
for failure in failures:
    print(f"FAIL {failure}")
if failures:
    sys.exit(1)
print(f"deploy: compose.yaml, k8s manifests and Dockerfile consistent with pulsed "
      f"({len(CONFIG_KEYS)} config keys, coordinator flags {len(PULSED_FLAGS['coordinator'])}, "
      f"node flags {len(PULSED_FLAGS['node'])})")
