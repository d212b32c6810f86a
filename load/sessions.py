#!/usr/bin/env python3
"""Creates, checks and removes the load test's sessions through the cart app's JSON API.

    sessions.py create URL N FILE     N new sessions: POST /api/cart/items without a cookie, one
                                      product each; writes "<cookie value> <sku>" per line to FILE
    sessions.py verify URL FILE STATE MAX
                                      GET /api/cart for every session: 200, still the same
                                      session (no Set-Cookie), and the cart lines wrk's script
                                      expected (STATE, written by cart.lua's done()); at most MAX
                                      carts may differ (writes in flight when wrk stopped)
    sessions.py keys FILE PREFIX      the store key of each session: PREFIX{sha256(id)} (for Redis
                                      clean-up; the stores file a session under the SHA-256 of its id)

Standard library only; 8 keep-alive connections in parallel.
"""
import hashlib
import http.client
import json
import sys
import threading
from urllib.parse import urlsplit

CATALOGUE = ["apple", "bread", "cheese", "coffee", "olive-oil", "tea"]
WORKERS = 8


def connect(url):
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def run_parallel(jobs, work):
    """Runs work(conn, job) for every job on WORKERS threads; returns the results in order."""
    results = [None] * len(jobs)
    errors = []

    def worker(index):
        conn = connect(URL)
        for i in range(index, len(jobs), WORKERS):
            try:
                results[i] = work(conn, jobs[i])
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(f"{jobs[i]!r}: {err}")
                conn.close()
                conn = connect(URL)
        conn.close()

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"sessions.py: {len(errors)} request(s) failed, first: {errors[0]}")
    return results


def session_cookie(response):
    for name, value in response.getheaders():
        if name.lower() == "set-cookie" and value.startswith("session="):
            return value.split(";", 1)[0][len("session="):]
    return None


def create(n, path):
    def work(conn, i):
        sku = CATALOGUE[i % len(CATALOGUE)]
        body = json.dumps({"sku": sku, "qty": 1})
        conn.request("POST", "/api/cart/items", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        cookie = session_cookie(response)
        if response.status != 200 or not cookie:
            raise RuntimeError(f"status {response.status}, cookie {'set' if cookie else 'missing'}")
        return f"{cookie} {sku}"

    lines = run_parallel(list(range(n)), work)
    if len(set(line.split()[0] for line in lines)) != n:
        sys.exit("sessions.py: duplicate session ids")
    with open(path, "w") as out:
        out.write("\n".join(lines) + "\n")
    print(f"created {n} sessions")


def verify(path, state_path):
    expected = {}
    with open(state_path) as f:
        for line in f:
            cookie, _, skus = line.rstrip("\n").partition(" ")
            expected[cookie] = sorted(s for s in skus.split(",") if s)
    cookies = [line.split()[0] for line in open(path) if line.strip()]
    examples = []

    def work(conn, cookie):
        conn.request("GET", "/api/cart", headers={"Cookie": f"session={cookie}"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            return f"status {response.status}"
        if session_cookie(response) is not None:
            return "a new session cookie"
        skus = sorted(line["sku"] for line in json.loads(body)["lines"])
        if cookie in expected and skus != expected[cookie]:
            if len(examples) < 3:
                examples.append(f"expected {','.join(expected[cookie])}, got {','.join(skus)}")
            return "cart differs"
        return None

    results = run_parallel(cookies, work)
    problems = {}
    for result in results:
        if result:
            problems[result] = problems.get(result, 0) + 1
    summary = ", ".join(f"{n} {what}" for what, n in sorted(problems.items())) or "all as expected"
    print(f"verify: {len(cookies)} sessions read back: {summary}")
    for example in examples:
        print(f"  e.g. {example}")
    # a write in flight when wrk stopped may or may not have been applied: at most one per
    # connection may differ from wrk's view; anything else is a failure
    return sum(n for what, n in problems.items() if what != "cart differs"), problems.get("cart differs", 0)


def keys(path, prefix):
    for line in open(path):
        if line.strip():
            cookie = line.split()[0]
            print(prefix + "{" + hashlib.sha256(cookie.encode()).hexdigest() + "}")


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "create" and len(sys.argv) == 5:
        URL = sys.argv[2]
        create(int(sys.argv[3]), sys.argv[4])
    elif command == "verify" and len(sys.argv) == 6:
        URL = sys.argv[2]
        allowed = int(sys.argv[5])
        hard, differ = verify(sys.argv[3], sys.argv[4])
        if hard or differ > allowed:
            sys.exit(f"verify: FAILED ({hard} hard problems, {differ} carts differ, at most {allowed} allowed)")
    elif command == "keys" and len(sys.argv) == 4:
        keys(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
