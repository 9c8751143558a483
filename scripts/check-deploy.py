"""Validates the deployment examples in deploy/ as far as this machine can, without a
container runtime or a Kubernetes cluster (docs/deploy.md says what is checked where).

usage: check-deploy.py REPO_ROOT    (TRIBUTARY_BIN: the tributary binary to check configs with)

- every YAML and TOML file under deploy/ parses;
- every server configuration (deploy/tributary.toml, the Kubernetes ConfigMap's) is
  accepted by `tributary serve --check-config`, and deploy/tributary.toml documents
  every key the server knows;
- the Kubernetes manifests hold a StatefulSet with a persistent volume claim, gRPC health
  probes on the gRPC port and the ConfigMap mounted where its args point, and the Services;
  `kubectl kustomize` renders them when kubectl is installed;
- the compose file runs two servers, the replication one-shot linking them both ways (with
  verbs and flags `tributary --help` lists), and a Prometheus scraping both metrics ports;
- the systemd unit has its hardening and passes `systemd-analyze verify` (with ExecStart
  pointed at the real binary) when systemd-analyze is installed;
- the Dockerfile is multi-stage, builds with scripts/bootstrap.sh and runs as non-root;
- no TRIBUTARY_* variable (the image's, the StatefulSet's, compose's) shadows a key of the
  configuration file beside it (variables beat the file), TRIBUTARY_CONFIG aside;
- a metrics endpoint on every interface asks for a token (metrics_token_file); in
  Kubernetes that token and the first admin's (admin_token_file) come from mounted Secrets,
  and the readiness probe tolerates a slow answer; compose's Prometheus sends the token;
- the binary users get (scripts/serve.sh, the image) is the `perf` profile's, which has no
  debug assertions or overflow checks: the build docs/PERFORMANCE.md measures.

Exits non-zero with every problem found.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

problems = []


def check(ok, what):
    if not ok:
        problems.append(what)
    return ok


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# A well-formed token, put in place of the files configurations name (mounted Secrets
# that do not exist here), so that --check-config sees readable files.
SAMPLE_TOKEN = "trb_0123456789abcdef." + "a" * 43


def check_config(binary, text, name):
    sample = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)
    sample.write(SAMPLE_TOKEN + "\n")
    sample.close()
    text = re.sub(r'^(\w+_file) = "[^"]*"', rf'\1 = "{sample.name}"', text, flags=re.M)
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
        env.pop("RUST_LOG", None)
        r = run([binary, "serve", "--check-config", "--config", f.name], env=env)
        check(r.returncode == 0, f"{name}: --check-config refused it: {r.stderr.strip()}")
        return r.stdout
    finally:
        os.unlink(f.name)
        os.unlink(sample.name)


def setting(text, key):
    """A key's string value in a TOML configuration, or None."""
    return tomllib.loads(text).get(key)


def check_metrics_protected(text, name):
    """A metrics endpoint on every interface (or any but loopback) asks for a token."""
    listen = setting(text, "metrics_listen") or "127.0.0.1:9464"
    exposed = listen != "off" and not listen.startswith(("127.", "[::1]", "localhost"))
    check(
        not exposed or setting(text, "metrics_token_file"),
        f"{name}: metrics_listen {listen} is reachable from outside without metrics_token_file",
    )


def shadowing(variables, keys, name):
    """TRIBUTARY_<KEY> variables beat the configuration file's keys: none may be set."""
    for var in variables:
        check(
            var.removeprefix("TRIBUTARY_").lower() not in keys or not var.startswith("TRIBUTARY_"),
            f"{name} sets {var}, which beats the configuration file's key",
        )


def effective_profile(cargo, name):
    """A Cargo profile's settings, following `inherits` (release's own are the base)."""
    profiles = cargo.get("profile", {})
    chain = []
    while name not in ("release", "dev"):
        chain.append(profiles.get(name, {}))
        name = chain[-1].get("inherits", "release")
    out = {"debug-assertions": name == "dev", "overflow-checks": name == "dev"}
    out.update(profiles.get(name, {}))
    for p in reversed(chain):
        out.update(p)
    return out


def main(root):
    root = pathlib.Path(root)
    deploy = root / "deploy"
    binary = os.environ.get("TRIBUTARY_BIN", "tributary")
    docs = {}

    for path in sorted(deploy.rglob("*")):
        rel = path.relative_to(root)
        if path.suffix in (".yaml", ".yml"):
            try:
                docs[rel.as_posix()] = [d for d in yaml.safe_load_all(path.read_text()) if d]
            except yaml.YAMLError as e:
                check(False, f"{rel}: {e}")
        elif path.suffix == ".toml":
            try:
                tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as e:
                check(False, f"{rel}: {e}")

    # The example configuration: accepted, and every key documented in it.
    example = (deploy / "tributary.toml").read_text()
    printed = check_config(binary, example, "deploy/tributary.toml")
    keys = re.findall(r"^(?:# )?([a-z_]+)(?: = | is not set)", printed, re.M)
    check(len(keys) >= 10, f"--check-config printed too few keys:\n{printed}")
    for key in keys:
        check(
            re.search(rf"^#? ?{key} = ", example, re.M),
            f"deploy/tributary.toml does not document `{key}`",
        )
    for rel in ("deploy/tributary.toml", "deploy/container.toml", "deploy/compose/tributary.toml"):
        if not check((root / rel).exists(), f"{rel} is missing"):
            continue
        text = (root / rel).read_text()
        check_config(binary, text, rel)
        check_metrics_protected(text, rel)

    # Kubernetes.
    k8s = [d for name, ds in docs.items() if name.startswith("deploy/k8s/") for d in ds]
    kinds = {d.get("kind"): d for d in k8s}
    for kind in ("StatefulSet", "Service", "ConfigMap"):
        check(kind in kinds, f"deploy/k8s has no {kind}")
    sts, cm = kinds.get("StatefulSet"), kinds.get("ConfigMap")
    if sts and cm:
        spec = sts["spec"]
        check(spec.get("volumeClaimTemplates"), "the StatefulSet has no volumeClaimTemplates")
        pod = spec["template"]["spec"]
        (c,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            port = c.get(probe, {}).get("grpc", {}).get("port")
            check(port == ports.get("grpc"), f"{probe} is not a gRPC probe on the gRPC port")
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        claim = spec["volumeClaimTemplates"][0]["metadata"]["name"]
        check(claim in mounts, "the volume claim is not mounted")
        config_volume = [v for v in pod["volumes"] if "configMap" in v]
        check(
            config_volume and config_volume[0]["configMap"]["name"] == cm["metadata"]["name"],
            "the ConfigMap is not mounted",
        )
        config_path = c["args"][c["args"].index("--config") + 1]
        check(
            config_volume
            and config_path.startswith(mounts.get(config_volume[0]["name"], "?") + "/")
            and pathlib.Path(config_path).name in cm["data"],
            f"--config {config_path} is not the ConfigMap's file",
        )
        shadowing([e["name"] for e in c.get("env", [])], keys, "the StatefulSet")
        ready = c.get("readinessProbe", {})
        check(
            ready.get("failureThreshold", 3) >= 2 and ready.get("timeoutSeconds", 1) >= 2,
            "the readiness probe fails on one slow answer (needs timeoutSeconds and failureThreshold of 2 or more)",
        )
        secret_mounts = {
            mounts[v["name"]]: v["secret"]["secretName"]
            for v in pod["volumes"]
            if "secret" in v and v["name"] in mounts
        }

        def from_secret(path):
            return any(path and path.startswith(m + "/") for m in secret_mounts)

        for name, text in cm["data"].items():
            check_metrics_protected(text, f"ConfigMap {name}")
            for key in ("admin_token_file", "metrics_token_file"):
                path = setting(text, key)
                check(
                    from_secret(path),
                    f"ConfigMap {name}: {key} ({path}) is not in a mounted Secret",
                )
            printed = check_config(binary, text, f"ConfigMap {name}")
            if not printed:
                continue
            for key, port in (("listen", ports.get("grpc")), ("metrics_listen", ports.get("metrics"))):
                check(
                    re.search(rf'^{key} = "0\.0\.0\.0:{port}"', printed, re.M),
                    f"ConfigMap {name}: {key} is not 0.0.0.0:{port}",
                )
            data_dir = re.search(r'^data_dir = "([^"]+)"', printed, re.M).group(1)
            check(mounts.get(claim) == data_dir, "data_dir is not the persistent volume")
        services = [d for d in k8s if d.get("kind") == "Service"]
        check(
            any(p["port"] == ports.get("grpc") for s in services for p in s["spec"]["ports"]),
            "no Service exposes the gRPC port",
        )
    if shutil.which("kubectl"):
        r = run(["kubectl", "kustomize", str(deploy / "k8s")])
        check(r.returncode == 0, f"kubectl kustomize deploy/k8s: {r.stderr.strip()}")
        print("checked: kubectl kustomize deploy/k8s")
    else:
        print("not checked here: kubectl kustomize (kubectl is not installed)")

    # Compose: two servers, the replication one-shot, Prometheus scraping both.
    (compose,) = docs["deploy/docker-compose.yml"]
    services = compose["services"]
    servers = [n for n, s in services.items() if s.get("image", "").startswith("tributary") and "ports" in s]
    check(len(servers) >= 2, f"compose runs {len(servers)} tributary servers, not two")
    repl = services.get("replication", {})
    script_mount = [v for v in repl.get("volumes", []) if v.endswith(":/replicate.sh:ro")]
    check(script_mount, "the replication service does not mount its script")
    if script_mount:
        script = (deploy / script_mount[0].split(":")[0]).read_text()
        r = run(["sh", "-n"], input=script)
        check(r.returncode == 0, f"replicate.sh: {r.stderr.strip()}")
        for a, b in ((servers[0], servers[1]), (servers[1], servers[0])):
            check(
                re.search(rf"on {a} upstream add \S+ --from http://{b}:7070/", script),
                f"replicate.sh does not make {a} pull from {b}",
            )
        # The CLI verbs the script runs exist, with the flags it gives them.
        joined = script.replace("\\\n", " ")
        for verb, args in re.findall(r"^\s*on \S+ ((?:[a-z]+ )*[a-z]+)((?: [^\n]*)?)$", joined, re.M):
            words = verb.split()
            r = run([binary, *words, "--help"])
            if not check(r.returncode == 0, f"replicate.sh: `tributary {verb}` is not a command"):
                continue
            for flag in re.findall(r"(?<!\S)(--[a-z][a-z-]*)", args):
                check(
                    re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", r.stdout),
                    f"replicate.sh: `tributary {verb}` has no {flag}",
                )
    check("prometheus" in services, "compose has no prometheus")
    (prom,) = docs["deploy/compose/prometheus.yml"]
    targets = {t for job in prom["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    for s in servers:
        check(f"{s}:9464" in targets, f"Prometheus does not scrape {s}:9464")
    for name, service in services.items():
        env = service.get("environment", {})
        names = env if isinstance(env, dict) else [e.split("=")[0] for e in env]
        shadowing(names, keys, f"compose service {name}")
    for s in servers:
        mounted = [v for v in services[s].get("volumes", []) if v.endswith(":/etc/tributary/tributary.toml:ro")]
        config = deploy / (mounted[0].split(":")[0] if mounted else "container.toml")
        if check(config.exists(), f"compose service {s}'s configuration {config} is missing"):
            check_metrics_protected(config.read_text(), f"compose service {s}'s configuration")
    for job in prom["scrape_configs"]:
        auth = job.get("authorization", {})
        check(
            auth.get("credentials_file"),
            f"compose's Prometheus job {job.get('job_name')} sends no bearer token (authorization.credentials_file)",
        )

    # systemd.
    unit = (deploy / "systemd" / "tributary.service").read_text()
    for directive in ("NoNewPrivileges=yes", "ProtectSystem=strict", "DynamicUser=yes"):
        check(directive in unit, f"the systemd unit lacks {directive}")
    if shutil.which("systemd-analyze"):
        with tempfile.TemporaryDirectory() as d:
            path = pathlib.Path(d) / "tributary.service"
            path.write_text(unit.replace("/usr/local/bin/tributary", os.path.abspath(binary)))
            r = run(["systemd-analyze", "verify", str(path)])
            out = (r.stdout + r.stderr).strip()
            check(r.returncode == 0 and not out, f"systemd-analyze verify: {out}")
        print("checked: systemd-analyze verify deploy/systemd/tributary.service")
    else:
        print("not checked here: systemd-analyze verify (systemd is not installed)")

    # Dockerfile (no container runtime here: structure only).
    dockerfile = (deploy / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+(?:\s+AS\s+(\S+))?", dockerfile, re.M | re.I)
    check(len(stages) >= 2, "the Dockerfile is not multi-stage")
    final = dockerfile[dockerfile.rfind("\nFROM") :]
    check(re.search(r"^COPY --from=\S+", final, re.M), "the final stage copies no build output")
    user = re.findall(r"^USER\s+(\S+)", final, re.M)
    check(user and user[-1] not in ("root", "0"), "the image does not run as a non-root user")
    check("scripts/bootstrap.sh" in dockerfile, "the image does not build with scripts/bootstrap.sh")
    for src in re.findall(r"^COPY (?!--from)(\S+) ", final, re.M):
        check((root / src).exists(), f"the Dockerfile copies {src}, which does not exist")
    env_lines = re.findall(r"^ENV\s+((?:.*\\\n)*.*)$", dockerfile, re.M)
    shadowing(re.findall(r"(TRIBUTARY_\w+)[= ]", " ".join(env_lines)), keys, "the Dockerfile")

    # The binary users get: the `perf` profile's, without debug assertions or overflow checks.
    cargo = tomllib.loads((root / "Cargo.toml").read_text())
    perf = effective_profile(cargo, "perf")
    check(
        not perf["debug-assertions"] and not perf["overflow-checks"],
        f"the perf profile keeps debug assertions or overflow checks: {perf}",
    )
    build = re.findall(r"cargo build [^\n]*", dockerfile)
    check(
        build and all("--profile perf" in b for b in build)
        and re.search(r'\$CARGO_TARGET_DIR/perf/tributary"? /usr/local/bin/tributary', dockerfile),
        "the image does not build and install the perf profile's binary",
    )
    serve = (root / "scripts" / "serve.sh").read_text()
    install = re.findall(r"^\s*cargo install [^\n]*", serve, re.M)
    check(
        install and all("--profile perf" in i for i in install),
        "scripts/serve.sh does not install the perf profile's binary",
    )

    if problems:
        print("\n".join(f"problem: {p}" for p in problems), file=sys.stderr)
        sys.exit(1)
    print(f"deploy/: {len(docs)} YAML files and the configurations are valid")


if __name__ == "__main__":
    main(sys.argv[1])
