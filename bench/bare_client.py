"""The floor a sync is measured against: a plain signed httpx client making the same requests.

ListDeployments (paged) in each namespace, then per deployment ListJobs and GetLineageInfo of
its newest job, `--concurrency` at a time; every body is parsed as JSON and then dropped. It
stores nothing, validates nothing, normalizes nothing. bench_sync.py runs it as a process,
beside each sync, and prints the ratio.

    .venv/bin/python bench/bare_client.py URL WORKSPACE NAMESPACE [NAMESPACE ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from exporter.api.signing import AcsSignatureAuth

KEY_ID, SECRET = "sim-access-key-id", "sim-access-key-secret"  # the simulator's own test key


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("workspace")
    parser.add_argument("namespaces", nargs="+")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    client = httpx.Client(
        base_url=args.url,
        auth=AcsSignatureAuth.with_keys(KEY_ID, SECRET),
        headers={"accept": "application/json", "workspace": args.workspace},
        limits=httpx.Limits(max_connections=args.concurrency),
        timeout=60,
    )

    def call(action: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"x-acs-action": action, "x-acs-version": "2022-07-18"}
        if "content" in kwargs:
            headers["content-type"] = "application/json; charset=utf-8"
        response = client.request(method, path, headers=headers, **kwargs)
        response.raise_for_status()
        return json.loads(response.content)

    def pages(action: str, path: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        index = 1
        while True:
            body = call(action, "GET", path, params={**params, "pageIndex": index, "pageSize": 100})
            items += body["data"]
            if not body["data"] or len(items) >= int(body["totalSize"]):
                return items
            index += 1

    def deployment(namespace: str, deployment_id: str) -> int:
        path = f"/api/v2/namespaces/{namespace}/jobs"
        jobs = pages("ListJobs", path, deploymentId=deployment_id)
        if not jobs:
            return 0
        newest = max(jobs, key=lambda j: (int(j.get("createdAt") or 0), j["jobId"]))
        body = {
            "id": newest["jobId"],
            "idType": "JOB",
            "depth": 1,
            "direction": "BOTH",
            "isColumnLevel": True,
            "namespace": namespace,
            "workspace": args.workspace,
        }
        call("GetLineageInfo", "POST", "/meta/v2/lineage", content=json.dumps(body).encode())
        return 1

    with ThreadPoolExecutor(args.concurrency) as pool:
        listings = [
            pool.submit(pages, "ListDeployments", f"/api/v2/namespaces/{ns}/deployments")
            for ns in args.namespaces
        ]
        fetches = [
            pool.submit(deployment, ns, d["deploymentId"])
            for ns, listing in zip(args.namespaces, listings, strict=True)
            for d in listing.result()
        ]
        fetched = sum(f.result() for f in fetches)
    print(f"bare client: {len(fetches)} deployments, {fetched} lineage fetched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
