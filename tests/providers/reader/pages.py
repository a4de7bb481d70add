"""The pages the URL-analysis tests read, served by real HTTP servers in background threads:
`public` on 127.0.0.2 (the server under test allow-lists 127.0.0.2/32, so it plays a public host) and
`private` on 127.0.0.1, which must never be reached (it counts every request it gets)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import documents as docs

ARTICLE = b"""<!doctype html><html lang="en"><head><title>The Example Article</title>
<meta name="description" content="An article the tests serve">
<meta property="og:title" content="OG Example"><meta property="og:site_name" content="Test Site">
<meta property="article:published_time" content="2024-05-01T08:00:00Z">
<meta name="keywords" content="tests,reader"></head><body>
<nav class="menu"><a href="/home">Home</a> <a href="/about">About us</a></nav>
<div class="ad">BUY NOW advertisement</div>
<article><h1>Gateways and readers</h1>
<p>This is the first paragraph of the article, long enough to be taken as the main content of the page. It
links to <a href="/docs/intro">the introduction</a> and to <a href="https://other.example/x">another site</a>.</p>
<p>A second paragraph with more words, so that the extractor believes this is real content worth keeping,
and a sentence about the quarterly numbers that grew by twelve percent.</p>
<img src="/img/chart.png" alt="A chart"><p class="note">Side note inside the article.</p></article>
<footer>Footer links and copyright 2024</footer></body></html>"""


@dataclass
class Site:
    host: str
    port: int = 0
    hits: list[str] = field(default_factory=list)
    counter: int = 0
    private_base: str = ""

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8",
                 headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            site.hits.append(self.path)
            path = self.path.split("?")[0]
            if path == "/article":
                self.send(200, ARTICLE)
            elif path == "/doc.pdf":
                self.send(200, docs.pdf(["Annual statement", "Profits rose sharply"], title="Statement"),
                          "application/pdf")
            elif path == "/plain.txt":
                self.send(200, b"just some plain text\nsecond line", "text/plain; charset=utf-8")
            elif path == "/counter":
                site.counter += 1
                self.send(200, f"<html><head><title>Counter</title></head><body><p>Visit number "
                               f"{site.counter}</p></body></html>".encode())
            elif path == "/query":
                self.send(200, f"<html><head><title>Query</title></head><body><p>You asked for {self.path}"
                               f"</p></body></html>".encode())
            elif path == "/echo-headers":
                seen = "".join(f"<p>{k}: {v}</p>" for k, v in self.headers.items())
                self.send(200, f"<html><head><title>Headers</title></head><body>{seen}</body></html>".encode())
            elif path == "/redirect-private":
                self.send(302, b"", headers={"Location": site.private_base + "/secret"})
            elif path == "/redirect-ok":
                self.send(302, b"", headers={"Location": "/article"})
            elif path == "/slow":
                time.sleep(4)
                self.send(200, b"<html><body>late</body></html>")
            elif path == "/missing":
                self.send(404, b"<html><head><title>Not here</title></head><body><p>Gone</p></body></html>")
            elif path == "/secret":
                self.send(200, b"<html><body>private data</body></html>")
            else:
                self.send(404, b"no such page", "text/plain")

    return Handler


@contextmanager
def serve(host: str, private_base: str = "") -> Iterator[Site]:
    site = Site(host=host, private_base=private_base)
    server = ThreadingHTTPServer((host, 0), _handler(site))
    server.daemon_threads = True
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
