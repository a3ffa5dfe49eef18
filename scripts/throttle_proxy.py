"""A throttling front for moto, for the tests of cloud-secrets' AWS retries.

Listens on 127.0.0.1:PORT and forwards every request to UPSTREAM, except that the first
THROTTLES times a given request (the same X-Amz-Target and body) arrives, it answers as AWS does
when it throttles: 400 with a ThrottlingException. GET /stats answers {"throttled": N, "forwarded": N}.

Usage: throttle_proxy.py PORT UPSTREAM [THROTTLES]
"""

import hashlib
import http.server
import json
import sys
import threading
import urllib.error
import urllib.request

PORT, UPSTREAM = int(sys.argv[1]), sys.argv[2].rstrip("/")
THROTTLES = int(sys.argv[3]) if len(sys.argv) > 3 else 2
seen, stats, lock = {}, {"throttled": 0, "forwarded": 0}, threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            body = json.dumps(stats).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        key = (self.headers.get("X-Amz-Target", ""), hashlib.sha256(body).hexdigest())
        with lock:
            seen[key] = seen.get(key, 0) + 1
            throttle = seen[key] <= THROTTLES
            stats["throttled" if throttle else "forwarded"] += 1
        if throttle:
            error = {"__type": "ThrottlingException", "message": "Rate exceeded"}
            self.answer(400, json.dumps(error).encode(), [("Content-Type", "application/x-amz-json-1.1")])
            return
        skip = {"host", "content-length", "connection"}
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        request = urllib.request.Request(UPSTREAM + self.path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, payload, kept = response.status, response.read(), response.headers.items()
        except urllib.error.HTTPError as error:
            status, payload, kept = error.code, error.read(), error.headers.items()
        passed = [(k, v) for k, v in kept if k.lower() in ("content-type", "x-amzn-requestid")]
        self.answer(status, payload, passed)


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
