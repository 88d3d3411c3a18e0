#!/usr/bin/env python3
"""Schema Registry throughput of a local three-node `strom dev` cluster.

  - registrations: distinct Avro schemas registered with confluent-kafka's
    SchemaRegistryClient (`register_schema`), one client per node in turn (two of three
    requests are forwarded to the writer, the leader of `_schemas`), sequentially, and
    then from 4 threads at once;
  - lookups: `GET /schemas/ids/{id}` (what a deserializer asks) and
    `POST /subjects/{s}` (lookup by schema, what a serializer without auto-register asks)
    over one kept-alive HTTP connection per thread (the Python client caches both, so it
    would measure its cache), sequentially and from 4 threads.

Usage: registry.py --strom target/release/strom [--schemas 500] [--lookups 5000]
Run with the e2e venv's python. Only 127.0.0.1 is used.
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from strom_harness import free_port_block  # noqa: E402


def schema(i: int) -> str:
    return json.dumps({"type": "record", "name": f"Bench{i}", "namespace": "bench",
                       "fields": [{"name": "id", "type": "long"}, {"name": f"f{i}", "type": "string"}]})


def timed(label: str, n: int, fn, threads: int = 1) -> float:
    per = n // threads
    errors = []

    def run(t):
        try:
            fn(t, per)
        except Exception as e:  # noqa: BLE001 - reported
            errors.append(e)
    ts = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        raise errors[0]
    rate = per * threads / dt
    print(f"{label:<58} {per * threads:>6} in {dt:6.2f} s = {rate:8.0f}/s")
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", required=True)
    ap.add_argument("--schemas", type=int, default=500)
    ap.add_argument("--lookups", type=int, default=5000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="strom-registry-bench-")
    base = free_port_block(3)
    urls = [f"127.0.0.1:{base - 1011 + i}" for i in range(3)]
    dev = subprocess.Popen([a.strom, "dev", "--nodes", "3", "--base-port", str(base), "--data-dir", f"{work}/data"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection(urls[2], timeout=5)
                c.request("GET", "/subjects")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        clients = [SchemaRegistryClient({"url": f"http://{u}"}) for u in urls]
        ids = {}

        def register(offset):
            def go(t, n):
                for k in range(n):
                    i = offset + t * n + k
                    ids[i] = clients[i % 3].register_schema(f"bench-{i}-value", Schema(schema(i), "AVRO"))
            return go
        n = a.schemas
        timed("register (SchemaRegistryClient, nodes in turn, 1 thread)", n, register(0))
        timed("register (SchemaRegistryClient, nodes in turn, 4 threads)", n, register(n), threads=4)
        all_ids = sorted(ids.values())

        def by_id(t, k):
            c = http.client.HTTPConnection(urls[t % 3], timeout=10)
            for j in range(k):
                c.request("GET", f"/schemas/ids/{all_ids[j % len(all_ids)]}")
                r = c.getresponse()
                r.read()
                assert r.status == 200, r.status

        def by_schema(t, k):
            c = http.client.HTTPConnection(urls[t % 3], timeout=10)
            for j in range(k):
                i = j % len(ids)
                c.request("POST", f"/subjects/bench-{i}-value", body=json.dumps({"schema": schema(i)}),
                          headers={"Content-Type": "application/vnd.schemaregistry.v1+json"})
                r = c.getresponse()
                r.read()
                assert r.status == 200, r.status
        timed("GET /schemas/ids/{id} (1 connection)", a.lookups, by_id)
        timed("GET /schemas/ids/{id} (4 threads, 4 connections)", a.lookups, by_id, threads=4)
        timed("POST /subjects/{s} lookup (1 connection)", a.lookups // 5, by_schema)
        timed("POST /subjects/{s} lookup (4 threads, 4 connections)", a.lookups // 5, by_schema, threads=4)
    finally:
        dev.terminate()
        try:
            dev.wait(30)
        except subprocess.TimeoutExpired:
            dev.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
