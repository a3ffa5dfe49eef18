"""A fault-injecting HTTP proxy on loopback, for the end-to-end tests of cloud-secrets' remotes.

Usage: fault_proxy.py --upstream URL [--port PORT] [--slow SECONDS]

Listens on 127.0.0.1:PORT (0, the default, for a free port) and prints the port on the first
line of its standard output. Every request (any method; its headers except the hop-by-hop ones;
its body, sent with Content-Length or chunked) is forwarded to UPSTREAM on a connection of its
own, and the answer is relayed with a Content-Length. Client connections are kept alive
(HTTP/1.1), as reqwest expects. Only the standard library is used; each connection has a thread.

A fault program decides what happens to the request at each position. Positions count the
requests the proxy receives since the program was set, from 1; control requests are not
counted. Each fault applies to exactly the request at its position; every other request passes.

    5xx-before   answer 503 (an HTML page, as a gateway does) without forwarding: the origin
                 never sees the request
    5xx-after    forward, let the origin commit, then answer 502 instead of its answer (a
                 gateway failing after the origin committed)
    drop-before  close the connection without forwarding and without an answer
    drop-after   forward, then close the connection without an answer
    429          answer as the remote does when it limits its rate, without forwarding: 429 with
                 `Retry-After: 1` for the cloud API and Vault; for AWS-shaped requests (those
                 carrying X-Amz-Target), 400 with `{"__type": "ThrottlingException"}` and no
                 Retry-After, which is what Secrets Manager and SSM answer
    slow-after   forward, then hold the origin's answer for --slow seconds (default 1.5, longer
                 than the client's --timeout in the tests) before sending it, if the client is
                 still there
    hold-before  hold the request until POST /__proxy/release (or 30 s), then forward it: the
                 test can change the store in the moment before a write reaches it

Control paths (under /__proxy/, which no remote's API uses):

    POST /__proxy/program   body [{"at": N, "fault": "..."}]: the new program; the count, the log
                            and any held request are reset
    GET  /__proxy/log       [{"n", "method", "path", "target", "fault", "forwarded",
                            "origin_status", "answered"}] for each request since the program was
                            set: `target` is X-Amz-Target (or null), `forwarded` whether the
                            origin got it, `origin_status` its status (null if it did not answer),
                            `answered` the status sent back (null when the connection was closed
                            without an answer, or the client had gone)
    POST /__proxy/release   lets held requests go on
"""

import argparse
import http.client
import http.server
import json
import socket
import sys
import threading
import time
import urllib.parse

FAULTS = {"5xx-before", "5xx-after", "drop-before", "drop-after", "429", "slow-after", "hold-before"}
# Headers that belong to one connection, not to the request (RFC 9110, 7.6.1); Host is the
# upstream's, set by http.client.
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade", "host", "content-length",
}
HOLD_LIMIT = 30.0


class Program:
    """The faults by position, the count of requests and the log, shared by every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faults, self.count, self.log = {}, 0, []
        self.released = threading.Event()

    def set(self, faults):
        with self.lock:
            self.released.set()
            self.faults, self.count, self.log = faults, 0, []
            self.released = threading.Event()

    def next(self, entry):
        """Numbers a request, logs it and returns its fault and the event that releases it."""
        with self.lock:
            self.count += 1
            entry["n"] = self.count
            entry["fault"] = self.faults.get(self.count)
            self.log.append(entry)
            return entry["fault"], self.released

    def entries(self):
        with self.lock:
            return [dict(e) for e in self.log]


PROGRAM = Program()


def gateway_page(status, reason):
    return f"<html><body><h1>{status} {reason}</h1></body></html>\n".encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None
    slow = 1.5

    def log_message(self, *args):
        pass

    def __getattr__(self, name):
        # Every method (GET, PUT, DELETE, Vault's LIST...) is proxied.
        if name.startswith("do_"):
            return self.handle_request
        raise AttributeError(name)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = self.headers.get("Content-Length")
        return self.rfile.read(int(length)) if length else None

    def answer(self, status, body, headers=()):
        """Sends an answer; False if the client is gone."""
        try:
            self.send_response_only(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def hang_up(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def forward(self, body):
        """The origin's status, headers and body; None if it could not be reached."""
        url = self.upstream
        connection = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        skip = HOP_BY_HOP | {
            h.strip().lower() for h in self.headers.get("Connection", "").split(",") if h.strip()
        }
        headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return response.status, kept, payload
        except OSError:
            return None
        finally:
            connection.close()

    def handle_request(self):
        body = self.read_body()
        if self.path.startswith("/__proxy/"):
            return self.control(body)
        entry = {
            "method": self.command,
            "path": self.path,
            "target": self.headers.get("X-Amz-Target"),
            "forwarded": False,
            "origin_status": None,
            "answered": None,
        }
        fault, released = PROGRAM.next(entry)
        aws = entry["target"] is not None
        if fault == "5xx-before":
            page = gateway_page(503, "Service Unavailable")
            if self.answer(503, page, [("Content-Type", "text/html")]):
                entry["answered"] = 503
            return
        if fault == "429":
            if aws:
                error = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
                sent = self.answer(400, error, [("Content-Type", "application/x-amz-json-1.1")])
                entry["answered"] = 400 if sent else None
            else:
                error = json.dumps({"errors": ["rate limit exceeded"], "error": {"code": "rate_limited"}})
                sent = self.answer(429, error.encode(), [("Content-Type", "application/json"), ("Retry-After", "1")])
                entry["answered"] = 429 if sent else None
            return
        if fault == "drop-before":
            return self.hang_up()
        if fault == "hold-before":
            released.wait(HOLD_LIMIT)
        forwarded = self.forward(body)
        if forwarded is None:
            if self.answer(502, gateway_page(502, "Bad Gateway"), [("Content-Type", "text/html")]):
                entry["answered"] = 502
            return
        status, headers, payload = forwarded
        entry["forwarded"], entry["origin_status"] = True, status
        if fault == "5xx-after":
            if self.answer(502, gateway_page(502, "Bad Gateway"), [("Content-Type", "text/html")]):
                entry["answered"] = 502
            return
        if fault == "drop-after":
            return self.hang_up()
        if fault == "slow-after":
            time.sleep(self.slow)
        if self.answer(status, payload, headers):
            entry["answered"] = status

    def control(self, body):
        if self.command == "POST" and self.path == "/__proxy/program":
            try:
                steps = json.loads(body or b"[]")
                faults = {int(step["at"]): step["fault"] for step in steps}
                if any(n < 1 or f not in FAULTS for n, f in faults.items()):
                    raise ValueError
            except (ValueError, TypeError, KeyError):
                message = f'expected [{{"at": N >= 1, "fault": one of {sorted(FAULTS)}}}]'
                return self.answer(400, json.dumps({"error": message}).encode(), [("Content-Type", "application/json")])
            PROGRAM.set(faults)
            return self.answer(200, b'{"ok": true}', [("Content-Type", "application/json")])
        if self.command == "GET" and self.path == "/__proxy/log":
            return self.answer(200, json.dumps(PROGRAM.entries()).encode(), [("Content-Type", "application/json")])
        if self.command == "POST" and self.path == "/__proxy/release":
            PROGRAM.released.set()
            return self.answer(200, b'{"ok": true}', [("Content-Type", "application/json")])
        return self.answer(404, b'{"error": "no such control path"}', [("Content-Type", "application/json")])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that gave up (timed out, hung up) is part of the tests; anything else is a bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def main():
    parser = argparse.ArgumentParser(description="A fault-injecting HTTP proxy on 127.0.0.1.")
    parser.add_argument("--upstream", required=True, help="the origin's base URL, http://HOST:PORT")
    parser.add_argument("--port", type=int, default=0, help="the port to listen on (0: a free one)")
    parser.add_argument("--slow", type=float, default=1.5, help="seconds slow-after holds an answer")
    args = parser.parse_args()
    upstream = urllib.parse.urlsplit(args.upstream)
    if upstream.scheme != "http" or not upstream.hostname:
        parser.error("--upstream must be http://HOST[:PORT]")
    Handler.upstream, Handler.slow = upstream, args.slow
    server = Server(("127.0.0.1", args.port), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
