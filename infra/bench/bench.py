#!/usr/bin/env python3
"""`make bench`: the guide's performance:benchmark list, each figure next to the guide's target and
a raw baseline measured in the same run.

    infra/bench/bench.py                    # run everything, write infra/bench/results/latest.json
    infra/bench/bench.py --update-baseline  # ... and store the results as infra/bench/baseline.json
    BENCH_STRICT=1 infra/bench/bench.py     # exit 1 when a figure regressed > 20 % against the baseline

Expects the environment of infra/scripts/env.sh (the Makefile sources it). Standard library only.

Figures (see RESULTS.md for what each one measures):
  1. cache ops/s: CacheService GET/SET at concurrency 50 (shared/cache bench) vs redis-benchmark
  2. DB query average: the API's hot queries through the crates' code (bench-runner db) vs pgbench -S
  3. API average response time: wrk through the perf build of the local server, cached and
     uncached, vs GET /health on the same server
  4. 100 MB upload-and-process: POST /api/files, PUT to the presigned URL (moto S3), POST complete,
     poll until ready; vs the bare PUT and the geometry crate's in-process analyze + render
  5. search time: GET /api/search over 10k seeded files, cached and uncached, vs GET /health
  plus the compression bench's ratio and MB/s for the chosen levels.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS_DIR = os.path.join(HERE, "results")
BASELINE = os.path.join(HERE, "baseline.json")
REGRESSION = 0.20  # "more than 20 % worse"

ENV = os.environ
TARGET_DIR = ENV.get("CARGO_TARGET_DIR", "/var/tmp/cad-target")
STATE_DIR = ENV.get("STATE_DIR", "/var/tmp/cad-platform-state")
JOBS = ENV.get("JOBS", "2")
WRK_DURATION = ENV.get("BENCH_WRK_DURATION", "10s")
WRK_CONNECTIONS = ENV.get("BENCH_WRK_CONNECTIONS", "8")
WRK_THREADS = ENV.get("BENCH_WRK_THREADS", "2")
SEARCH_FILES = int(ENV.get("BENCH_SEARCH_FILES", "10000"))
DB_ITERATIONS = ENV.get("BENCH_DB_ITERATIONS", "300")
PG = f"postgres://{ENV.get('PGUSER', 'postgres')}@{ENV.get('PGHOST', '127.0.0.1')}:{ENV.get('PGPORT', '5432')}"
BENCH_DB = ENV.get("BENCH_DATABASE", "cad_bench")
PGBENCH_DB = "cad_bench_pgbench"
PORT_UNCACHED, PORT_CACHED = 3101, 3102
# What a browser sends; the server picks by its own preference.
ACCEPT_ENCODING = "gzip, deflate, br, zstd"


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(cmd, env=None, check=True, timeout=1800):
    """Runs a command, returns its stdout (stderr passes through to the console)."""
    r = subprocess.run(cmd, cwd=ROOT, env=env or ENV, stdout=subprocess.PIPE, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}")
    return r.stdout


def cargo_bench(package, bench, env_extra):
    env = dict(ENV, **env_extra)
    # --profile perf: the same optimised build (no LTO) as the local server, so the dependencies
    # compile once for both.
    return sh(["cargo", "bench", "-q", "--profile", "perf", "-j", JOBS, "-p", package, "--bench", bench], env=env)


def md_rows(text):
    """Rows of every markdown table in text, as lists of cells."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]


def num(s):
    return float(re.sub(r"[^0-9.eE+-]", "", s))


# --- 1. cache ---------------------------------------------------------------------------------

def bench_cache():
    log("cache: CacheService vs redis-benchmark, concurrency 50")
    out = cargo_bench("cache", "throughput", {
        "BENCH_OPS": ENV.get("BENCH_CACHE_OPS", "100000"),
        "BENCH_ROUNDS": ENV.get("BENCH_CACHE_ROUNDS", "3"),
        "BENCH_VALUE_SIZE": "512",
    })
    print(out, file=sys.stderr)
    res = {"raw_output": out}
    for row in md_rows(out):
        if row[0] in ("SET", "GET", "MGET(10)") and len(row) >= 8:
            res[row[0]] = {
                "redis_benchmark_ops_s": None if row[1] == "n/a" else num(row[1]),
                "raw_crate_ops_s": num(row[2]),
                "service_bytes_ops_s": num(row[3]),
                "service_typed_ops_s": num(row[4]),
                "service_vs_redis_benchmark": None if row[5] == "n/a" else num(row[5]) / 100,
                "service_vs_raw_crate": num(row[6]) / 100,
            }
    if "GET" not in res or "SET" not in res:
        raise RuntimeError("could not read the cache bench's table")
    return res


# --- compression (in process) ---------------------------------------------------------------

def bench_compression():
    log("compression: chosen levels over the 1000-file listing")
    out = cargo_bench("response-pipeline", "compression", {"BENCH_MS": ENV.get("BENCH_COMPRESSION_MS", "100")})
    res = {}
    for row in md_rows(out):
        if len(row) == 8 and row[0] == "1000-file listing" and "(chosen)" in row[2]:
            res[row[1]] = {"level": int(num(row[2].split()[0])), "bytes_in": int(num(row[3])),
                           "bytes_out": int(num(row[4])), "ratio": num(row[5]),
                           "compress_mb_s": num(row[6]), "decompress_mb_s": num(row[7])}
        elif len(row) == 5 and row[0] in ("br", "gzip", "zstd", "identity") and row[1] != "raw compress ms":
            res.setdefault("pipeline", {})[row[0]] = {"raw_ms": num(row[1]), "pipeline_ms": num(row[2]),
                                                      "pipeline_vs_raw": num(row[4])}
    return res


# --- geometry (in process) ------------------------------------------------------------------

def bench_geometry():
    log("geometry: 100 MB STL read, analyze, render (median of BENCH_STL_RUNS, default 3)")
    out = cargo_bench("geometry", "big_stl", {"BIG_STL_RUNS": ENV.get("BENCH_STL_RUNS", "3")})
    print(out, file=sys.stderr)
    res = {"path": os.path.join(TARGET_DIR, "bench-torus-2m.stl")}
    for line in out.splitlines():
        m = re.match(r"\s*(.+?)\s{2,}([0-9.]+)\s+([0-9.]+)\s+([0-9]+)\s+([0-9.-]+)\s*$", line)
        if not m:
            continue
        name, median = m.group(1).strip(), float(m.group(2))
        if name.startswith("read file"):
            res["read_s"] = median
        elif name.startswith("analyze()"):
            res["analyze_s"] = median
        elif name.startswith("render_thumbnails()"):
            res["render_s"] = median
        elif name.startswith("TOTAL"):
            res["analyze_render_s"] = median
    if "analyze_render_s" not in res:
        raise RuntimeError("could not read the geometry bench's table")
    return res


# --- 2. database ------------------------------------------------------------------------------

def psql(db, sql):
    return sh(["psql", "-qAtX", "-v", "ON_ERROR_STOP=1", f"{PG}/{db}", "-c", sql]).strip()


def bench_pgbench():
    log("pgbench -S (select-only, 1 client) baseline")
    if psql("postgres", f"SELECT count(*) FROM pg_database WHERE datname = '{PGBENCH_DB}'") == "0":
        psql("postgres", f"CREATE DATABASE {PGBENCH_DB}")
    if psql(PGBENCH_DB, "SELECT count(*) FROM pg_tables WHERE tablename = 'pgbench_accounts'") == "0":
        sh(["pgbench", "-i", "-q", "-s", "10", f"{PG}/{PGBENCH_DB}"])
    out = sh(["pgbench", "-S", "-n", "-c", "1", "-T", ENV.get("BENCH_PGBENCH_SECONDS", "10"), f"{PG}/{PGBENCH_DB}"])
    lat = re.search(r"latency average = ([0-9.]+) ms", out)
    tps = re.search(r"tps = ([0-9.]+)", out)
    if not lat:
        raise RuntimeError(f"no latency in pgbench output:\n{out}")
    return {"latency_avg_ms": float(lat.group(1)), "tps": float(tps.group(1)) if tps else None,
            "scale": 10, "clients": 1}


def bench_db(runner, db_env):
    log(f"database: the API's hot queries, {DB_ITERATIONS} iterations each")
    return json.loads(sh([runner, "db", DB_ITERATIONS], env=db_env))


# --- servers ----------------------------------------------------------------------------------

class Servers:
    def __init__(self, binary, env):
        self.binary, self.env, self.procs = binary, env, []

    def start(self, port, extra):
        env = dict(self.env, LOCAL_ADDR=f"127.0.0.1:{port}", **extra)
        logf = open(os.path.join(STATE_DIR, f"bench-server-{port}.log"), "w")
        p = subprocess.Popen([self.binary, "serve"], cwd=ROOT, env=env, stdout=logf, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs.append(p)
        deadline = time.time() + 60
        while time.time() < deadline:
            if p.poll() is not None:
                raise RuntimeError(f"server on {port} exited {p.returncode}; see {logf.name}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"server on {port} did not start; see {logf.name}")

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []


def http(method, url, token, body=None, headers=None, timeout=60):
    """A JSON request; returns (status, headers, parsed body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, dict(r.headers), (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, dict(e.headers), parsed


# --- 3 and 5. HTTP --------------------------------------------------------------------------

def to_ms(v):
    for unit, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3), ("m", 6e4)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float(v)


def wrk(port, path, token):
    out = sh(["wrk", f"-t{WRK_THREADS}", f"-c{WRK_CONNECTIONS}", f"-d{WRK_DURATION}", "--latency",
              "-H", f"Authorization: Bearer {token}", "-H", f"Accept-Encoding: {ACCEPT_ENCODING}",
              f"http://127.0.0.1:{port}{path}"])
    res = {"path": path, "port": port}
    m = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", out)
    res["avg_ms"] = to_ms(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = to_ms(m.group(1))
    res["rps"] = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", out)
    res["socket_errors"] = m.group(1).strip() if m else None
    return res


def x_cache(port, path, token):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept-Encoding", ACCEPT_ENCODING)
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
        return r.headers.get("X-Cache", "-"), r.status, len(body), r.headers.get("Content-Encoding", "identity")


def bench_http(token, file_id):
    endpoints = {
        "files_listing": "/api/files?limit=100",
        "file_by_id": f"/api/files/{file_id}",
        "search": "/api/search?q=steel%20bracket&limit=20",
    }
    res = {"wrk": f"-t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{WRK_DURATION}", "accept_encoding": ACCEPT_ENCODING}
    log("http: GET /health (baseline)")
    res["health"] = wrk(PORT_UNCACHED, "/health", token)
    for name, path in endpoints.items():
        for label, port in (("uncached", PORT_UNCACHED), ("cached", PORT_CACHED)):
            x_cache(port, path, token)  # fills the cache on the cached server
            xc, status, size, enc = x_cache(port, path, token)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            log(f"http: {name} {label} (X-Cache {xc}, {size} bytes {enc})")
            r = wrk(port, path, token)
            r.update({"x_cache": xc, "bytes": size, "content_encoding": enc})
            res[f"{name}_{label}"] = r
    return res


# --- 4. upload and process -------------------------------------------------------------------

def write_stl(path, n_tri=2_000_000):
    """Fallback when the geometry bench has not generated its torus: a strip of triangles, ~100 MB."""
    with open(path, "wb") as f:
        f.write(b"bench strip".ljust(80, b" ") + struct.pack("<I", n_tri))
        tri = struct.Struct("<12f2x")
        chunk = []
        for i in range(n_tri):
            x = float(i // 2)
            a, b = (x, 0.0, 0.0), (x + 1, 0.0, 0.0)
            c = (x, 1.0, 0.0) if i % 2 == 0 else (x + 1, 1.0, 0.0)
            chunk.append(tri.pack(0, 0, 1, *a, *b, *c))
            if len(chunk) == 10000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))


def curl_put(url, headers, path):
    cmd = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{time_total}", "-X", "PUT", "-T", path,
           "--max-time", "300"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    code, secs = sh(cmd + [url]).split()
    return int(code), float(secs)


def bench_upload(token, stl_path):
    base = f"http://127.0.0.1:{PORT_UNCACHED}"
    size = os.path.getsize(stl_path)
    log(f"upload: {size / 1e6:.1f} MB STL through the API, until ready")
    t0 = time.time()
    status, _, created = http("POST", f"{base}/api/files", token, {
        "name": "bench-torus.stl", "size": size, "content_type": "model/stl", "tags": ["bench"],
        "project_name": "Bench"})
    if status != 201:
        raise RuntimeError(f"POST /api/files answered {status}: {created}")
    t_created = time.time()
    file_id, upload = created["id"], created["upload"]
    code, put_s = curl_put(upload["url"], upload.get("headers", {}), stl_path)
    if code != 200:
        raise RuntimeError(f"PUT to the presigned URL answered {code}")
    t_put = time.time()
    status, _, done = http("POST", f"{base}/api/files/{file_id}/complete", token, {})
    if status != 202:
        raise RuntimeError(f"POST complete answered {status}: {done}")
    t_complete = time.time()
    final, polls = None, 0
    while time.time() - t_complete < 300:
        status, _, f = http("GET", f"{base}/api/files/{file_id}", token)
        polls += 1
        if status == 200 and f["status"] in ("ready", "failed"):
            final = f
            break
        time.sleep(0.2)
    t_ready = time.time()
    if final is None:
        raise RuntimeError("the upload was not processed within 300 s")
    res = {
        "bytes": size, "status": final["status"], "processing_error": final.get("processing_error"),
        "total_s": t_ready - t0, "create_s": t_created - t0, "put_s": t_put - t_created,
        "put_curl_s": put_s, "complete_s": t_complete - t_put, "processing_s": t_ready - t_complete,
        "polls": polls, "thumbnails": len(final.get("thumbnails") or []),
        "triangles": (final.get("metadata") or {}).get("triangles"),
    }
    # Keep neither the row nor the 100 MB object (moto holds S3 in memory).
    status, _, _ = http("DELETE", f"{base}/api/files/{file_id}", token)
    res["deleted"] = status == 204
    return res


# --- the table ----------------------------------------------------------------------------------

def figure(key, label, value, unit, better, target=None, target_text="", raw_label=None, raw=None, ratio=None,
           note=""):
    met = None
    if target is not None and value is not None:
        met = value > target if better == "higher" else value < target
    if ratio is None and raw not in (None, 0) and value is not None:
        ratio = value / raw
    return {"key": key, "label": label, "value": value, "unit": unit, "better": better, "target": target,
            "target_text": target_text, "target_met": met, "raw_label": raw_label, "raw": raw, "ratio": ratio,
            "note": note}


def figures(r):
    out = []
    c = r.get("cache")
    if c:
        for op in ("GET", "SET"):
            row = c[op]
            out.append(figure(f"cache_{op.lower()}_ops_s", f"Cache {op} ops/s (CacheService, c=50, 512 B)",
                              row["service_bytes_ops_s"], "ops/s", "higher", 1000, "> 1000 ops/s",
                              f"redis-benchmark {op} c=50 -d 512", row["redis_benchmark_ops_s"],
                              row["service_vs_redis_benchmark"],
                              f"raw redis crate {row['raw_crate_ops_s']:,.0f} ops/s, service/raw "
                              f"{row['service_vs_raw_crate']:.2f}; ratios: median of per-round ratios"))
            out.append(figure(f"cache_{op.lower()}_typed_ops_s", f"Cache {op} ops/s (typed record, MessagePack)",
                              row["service_typed_ops_s"], "ops/s", "higher", 1000, "> 1000 ops/s",
                              f"redis-benchmark {op} c=50 -d 512", row["redis_benchmark_ops_s"]))
    db, pg = r.get("db"), r.get("pgbench")
    if db:
        base = pg["latency_avg_ms"] if pg else None
        names = {"file_by_id": "file by id", "files_listing_100": "files listing, newest 100",
                 "files_listing_filtered": "files listing, tags+project+owner+size filters, 50",
                 "files_listing_by_name": "files listing sorted by name, 50", "search": "search (rank + history + lexemes)"}
        for k, q in db["queries"].items():
            out.append(figure(f"db_{k}_avg_ms", f"DB query avg: {names.get(k, k)}", q["avg_ms"],
                              "ms", "lower", 100, "< 100 ms avg", "pgbench -S avg latency (c=1)", base,
                              note=f"p50 {q['p50_ms']:.2f} p99 {q['p99_ms']:.2f} ms; {q['rows']} rows fetched of "
                                   f"{db['files_in_table']} files"))
    h = r.get("http")
    if h:
        base = h["health"]["avg_ms"]
        for name, label, target, ttext in (("files_listing", "API GET /api/files?limit=100", 500, "< 500 ms avg"),
                                           ("file_by_id", "API GET /api/files/{id}", 500, "< 500 ms avg"),
                                           ("search", "Search GET /api/search (10k files)", 2000, "< 2 s avg")):
            for variant in ("uncached", "cached"):
                w = h[f"{name}_{variant}"]
                out.append(figure(f"http_{name}_{variant}_avg_ms", f"{label} {variant} (X-Cache {w['x_cache']})",
                                  w["avg_ms"], "ms", "lower", target, ttext, "GET /health avg, same server", base,
                                  note=f"{w['rps']:.0f} req/s, p50 {w['p50_ms']:.2f} p99 {w['p99_ms']:.2f} ms"
                                  + (f", {w['non_2xx']} non-2xx" if w["non_2xx"] else "")))
    u, g = r.get("upload"), r.get("geometry")
    if u:
        out.append(figure("upload_100mb_s", f"Upload + process {u['bytes'] / 1e6:.0f} MB STL until ready",
                          u["total_s"], "s", "lower", 30, "< 30 s", "bare PUT of the bytes to moto S3", u["put_s"],
                          note=f"create {u['create_s']:.2f} s, PUT {u['put_s']:.2f} s, complete {u['complete_s']:.2f} s, "
                               f"processing {u['processing_s']:.2f} s; status {u['status']}"))
        if g:
            out.append(figure("upload_processing_s", "  of which processing (complete → ready)", u["processing_s"], "s",
                              "lower", None, "", "geometry analyze()+render in process", g["analyze_render_s"],
                              note=f"read {g.get('read_s', 0):.2f} s, analyze {g.get('analyze_s', 0):.2f} s, "
                                   f"render {g.get('render_s', 0):.2f} s"))
    comp = r.get("compression")
    if comp:
        for enc in ("br", "gzip", "zstd"):
            if enc in comp:
                e = comp[enc]
                out.append(figure(f"compression_{enc}_mb_s", f"Compression {enc} level {e['level']}, 1000-file listing",
                                  e["compress_mb_s"], "MB/s", "higher", None, "", None, None, e["ratio"],
                                  note=f"ratio {e['ratio']:.1f}x ({e['bytes_in']} → {e['bytes_out']} B)"))
    return out


def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return s + (f" {unit}" if unit else "")


def table(figs):
    lines = ["| figure | measured | guide target | met | same-run baseline | baseline | ratio | notes |",
             "|---|---:|---|:-:|---|---:|---:|---|"]
    for f in figs:
        met = "" if f["target_met"] is None else ("yes" if f["target_met"] else "**no**")
        raw_unit = f["unit"] if f["raw_label"] else ""
        if f["key"].startswith("compression_"):
            ratio, raw_unit = (f"{f['ratio']:.1f}x size", "")
        else:
            ratio = "n/a" if f["ratio"] is None else f"{f['ratio']:.2f}"
        lines.append(f"| {f['label']} | {fmt(f['value'], f['unit'])} | {f['target_text']} | {met} | "
                     f"{f['raw_label'] or ''} | {fmt(f['raw'], raw_unit) if f['raw_label'] else ''} | {ratio} | "
                     f"{f['note']} |")
    return "\n".join(lines)


def regressions(figs, baseline):
    """Figures more than 20 % worse than the baseline: the same-run ratio when both runs have one
    (robust to a slower or busier machine), else the absolute value."""
    old = {f["key"]: f for f in baseline.get("figures", [])}
    found, compared = [], 0
    for f in figs:
        b = old.get(f["key"])
        if not b:
            continue
        use_ratio = (f["ratio"] is not None and b.get("ratio") is not None and f["raw_label"]
                     and not f["key"].startswith("compression_"))
        now, then = (f["ratio"], b["ratio"]) if use_ratio else (f["value"], b["value"])
        if now is None or then in (None, 0):
            continue
        compared += 1
        # Lower-is-better figures and their ratios (value / raw) worsen upwards; higher-is-better
        # ones (throughput, and throughput / raw) downwards.
        worse = now > then * (1 + REGRESSION) if f["better"] == "lower" else now < then * (1 - REGRESSION)
        if worse:
            found.append((f, b, "ratio to the same-run baseline" if use_ratio else "absolute value", now, then))
    return found, compared


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update-baseline", action="store_true", help="store the results as infra/bench/baseline.json")
    ap.add_argument("--skip", default=ENV.get("BENCH_SKIP", ""),
                    help="comma-separated sections to skip: cache,compression,geometry,db,http,upload")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    for tool, pkg in (("wrk", "wrk"), ("redis-benchmark", "redis-tools"), ("pgbench", "postgresql-contrib"),
                      ("curl", "curl"), ("psql", "postgresql-client")):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed: apt-get install -y {pkg}")
    started = time.time()
    sh(["infra/scripts/services.sh"])

    log("building the perf profile of local-server and bench-runner (reused when up to date)")
    sh(["cargo", "build", "-q", "--profile", "perf", "-j", JOBS, "-p", "local", "-p", "bench-runner"])
    server_bin = os.path.join(TARGET_DIR, "perf", "local-server")
    runner = os.path.join(TARGET_DIR, "perf", "bench-runner")

    results = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": {"cores": os.cpu_count(), "load_before": open("/proc/loadavg").read().split()[:3]}}
    # In-process benches first, while no server competes for the two cores.
    if "cache" not in skip:
        results["cache"] = bench_cache()
        results["cache"].pop("raw_output", None)
    if "compression" not in skip:
        results["compression"] = bench_compression()
    if "geometry" not in skip:
        results["geometry"] = bench_geometry()
    if "db" not in skip:
        results["pgbench"] = bench_pgbench()

    server_env = dict(ENV, DATABASE_URL=f"{PG}/{BENCH_DB}", UPLOADS_BUCKET="cad-bench-uploads",
                      QUEUE_PREFIX="bench-", RUST_LOG="warn", CACHE_KEY_PREFIX=f"bench-{os.getpid()}:",
                      CACHE_WARM_INTERVAL_S="86400")
    servers = Servers(server_bin, server_env)
    try:
        log("starting two perf servers: response cache off (:3101) and on (:3102)")
        servers.start(PORT_UNCACHED, {"CACHE_DISABLED": "true"})
        servers.start(PORT_CACHED, {})
        token = sh([server_bin, "token", "engineer"], env=server_env).strip()
        sh(["psql", "-qX", "-v", "ON_ERROR_STOP=1", f"{PG}/{BENCH_DB}", "-f", "infra/bench/seed_listing.sql"])
        # Every uncached search writes history rows; start each run from the same table sizes.
        psql(BENCH_DB, "DELETE FROM search_queries WHERE user_id = (SELECT id FROM users WHERE cognito_sub = 'demo-engineer')")
        log(f"seeding {SEARCH_FILES} searchable files and reindexing")
        results["seed"] = json.loads(sh([runner, "seed-search", str(SEARCH_FILES)], env=server_env))
        if "db" not in skip:
            results["db"] = bench_db(runner, server_env)
        if "http" not in skip:
            file_id = psql(BENCH_DB, "SELECT id FROM cad_files WHERE s3_key = 'uploads/bench/1'")
            results["http"] = bench_http(token, file_id)
        if "upload" not in skip:
            stl = os.path.join(TARGET_DIR, "bench-torus-2m.stl")
            if not os.path.exists(stl):
                stl = os.path.join(TARGET_DIR, "bench-strip-2m.stl")
                if not os.path.exists(stl):
                    write_stl(stl)
            results["upload"] = bench_upload(token, stl)
    finally:
        servers.stop()

    results["machine"]["load_after"] = open("/proc/loadavg").read().split()[:3]
    results["elapsed_s"] = round(time.time() - started, 1)
    figs = figures(results)
    results["figures"] = figs
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, "latest.json"), "w") as f:
        json.dump(results, f, indent=2)

    print()
    print(f"make bench: {results['started']}, {os.cpu_count()} cores, load {' '.join(results['machine']['load_before'])}"
          f" → {' '.join(results['machine']['load_after'])}, {results['elapsed_s']:.0f} s")
    print()
    print(table(figs))
    print()
    print("The machine is shared and noisy: absolute figures move with other people's load. Each figure is")
    print("paired with a raw baseline from this same run; the ratio is what the regression check compares.")
    print(f"Results: {os.path.relpath(os.path.join(RESULTS_DIR, 'latest.json'), ROOT)}")

    status = 0
    if os.path.exists(BASELINE) and not args.update_baseline:
        with open(BASELINE) as f:
            baseline = json.load(f)
        found, compared = regressions(figs, baseline)
        print()
        print(f"Regression check against {os.path.relpath(BASELINE, ROOT)} ({baseline.get('started', '?')}): "
              f"{compared} figures compared, {len(found)} more than {REGRESSION:.0%} worse")
        for f, b, basis, now, then in found:
            print(f"  REGRESSION {f['label']}: {basis} {fmt(now)} vs {fmt(then)} in the baseline "
                  f"(value {fmt(f['value'], f['unit'])} vs {fmt(b['value'], b['unit'])})")
        if found and ENV.get("BENCH_STRICT") == "1":
            status = 1
        elif found:
            print("  (BENCH_STRICT=1 makes regressions fail the run)")
    elif not os.path.exists(BASELINE) and not args.update_baseline:
        print(f"No baseline at {os.path.relpath(BASELINE, ROOT)}: `make bench-baseline` stores one.")
    if args.update_baseline:
        shutil.copyfile(os.path.join(RESULTS_DIR, "latest.json"), BASELINE)
        print(f"Stored as the new baseline: {os.path.relpath(BASELINE, ROOT)}")
    sys.exit(status)


if __name__ == "__main__":
    main()
