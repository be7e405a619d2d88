"""A static HTTP server standing in for the nginx and httpd images' own server.

Why: the process runtime pulls no images, so a container of image `nginx` or `httpd` with
neither command nor args would otherwise have nothing to run, and the commonest tutorial flow
(create a Deployment of nginx, expose it, port-forward, curl) and client e2e tests that expect
`<h1>Welcome to nginx!</h1>` from port 80 would fail. Run as a script (`python -I httpstatic.py
--flavor nginx --ip POD_IP --port 80 [--docroot DIR]`, stdlib only) as the container process,
through the shim, in the container's mount and UTS namespaces:

* listens on the pod IP only (every pod of the node listens on the same port at its own
  loopback address), HTTP/1.1 with keep-alive, a thread per connection, GET and HEAD;
* with `--docroot` (given when a volume is mounted over the image's document root) serves the
  files under it, `index.html` for a directory, 404 for what is missing; without it, the image's
  default page at `/` and `/index.html` and 404 elsewhere;
* writes one access-log line per request to stdout in nginx's "combined" format (so
  `kubectl logs` shows the traffic) and errors to stderr;
* exits 0 at once on SIGTERM, SIGINT and SIGQUIT (nginx's graceful stop).
"""

import argparse
import email.utils
import mimetypes
import os
import posixpath
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.time()
"""The default page's modification time: when this server started (the image's build, in kube)."""

SERVER_NAMES = {"nginx": "nginx", "httpd": "Apache"}

NGINX_DEFAULT = b"""<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
<style>
body { width: 40em; margin: 0 auto; font-family: sans-serif; }
</style>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>This web server is up and answering. Put your own content in place of this page
to publish it.</p>
<p>(Served by pykube's stand-in for the nginx image.)</p>
</body>
</html>
"""

HTTPD_DEFAULT = b"<html><body><h1>It works!</h1></body></html>\n"

DEFAULT_PAGES = {"nginx": NGINX_DEFAULT, "httpd": HTTPD_DEFAULT}

REASONS = {301: "Moved Permanently", 403: "Forbidden", 404: "Not Found", 405: "Not Allowed"}


def error_page(flavor: str, code: int) -> bytes:
    """The small HTML body each server sends with an error status."""
    reason = REASONS.get(code, "Error")
    if flavor == "nginx":
        return (f"<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
                "</body>\r\n</html>\r\n").encode()
    return (f"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{code} {reason}"
            f"</title>\n</head><body>\n<h1>{reason}</h1>\n</body></html>\n").encode()


def combined_time(now: float) -> str:
    """`27/Nov/2026:14:17:54 +0000`, nginx's `$time_local` (logged in UTC)."""
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    flavor = "nginx"
    docroot = ""
    log_lock = threading.Lock()

    def version_string(self) -> str:
        return SERVER_NAMES[self.flavor]

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def _other(self) -> None:
        self._send(405, error_page(self.flavor, 405), "text/html", head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other

    def _serve(self, *, head: bool) -> None:
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path) or "/"
        if not self.docroot:
            if path in ("/", "/index.html"):
                self._send(200, DEFAULT_PAGES[self.flavor], "text/html", head=head, mtime=STARTED)
            else:
                self._send(404, error_page(self.flavor, 404), "text/html", head=head)
            return
        clean = posixpath.normpath(path)
        if clean.startswith("/.."):  # normpath of an absolute path never climbs, but be sure
            self._send(404, error_page(self.flavor, 404), "text/html", head=head)
            return
        local = os.path.join(self.docroot, clean.lstrip("/"))
        if os.path.isdir(local):
            if not path.endswith("/"):
                self._send(301, error_page(self.flavor, 301), "text/html", head=head, location=path + "/")
                return
            local = os.path.join(local, "index.html")
            if not os.path.isfile(local):
                self._send(403, error_page(self.flavor, 403), "text/html", head=head)
                return
        try:
            with open(local, "rb") as f:
                body = f.read()
            mtime = os.path.getmtime(local)
        except IsADirectoryError:
            self._send(403, error_page(self.flavor, 403), "text/html", head=head)
            return
        except OSError:
            self._send(404, error_page(self.flavor, 404), "text/html", head=head)
            return
        ctype = mimetypes.guess_type(local)[0] or "application/octet-stream"
        self._send(200, body, ctype, head=head, mtime=mtime)

    def _send(self, code: int, body: bytes, ctype: str, *, head: bool, location: str = "",
              mtime: float | None = None) -> None:
        self.send_response_only(code)  # logged below, once the body's size is known
        self.send_header("Server", self.version_string())
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if mtime is not None:  # nginx's validators: Last-Modified and "<mtime hex>-<size hex>"
            self.send_header("Last-Modified", email.utils.formatdate(mtime, usegmt=True))
            self.send_header("ETag", f'"{int(mtime):x}-{len(body):x}"')
        if location:
            self.send_header("Location", location)
        self.end_headers()
        if not head:
            self.wfile.write(body)
        self.log_request(code, 0 if head else len(body))

    def log_request(self, code: object = "-", size: object = "-") -> None:
        """One "combined" line: addr - user [time] "request" status bytes "referer" "agent"."""
        headers = getattr(self, "headers", None)
        line = '%s - - [%s] "%s" %s %s "%s" "%s"\n' % (
            self.client_address[0], combined_time(time.time()), getattr(self, "requestline", ""),
            int(code) if isinstance(code, int) else code, size if isinstance(size, int) else 0,
            headers.get("Referer", "-") if headers else "-", headers.get("User-Agent", "-") if headers else "-")
        with self.log_lock:
            sys.stdout.write(line)
            sys.stdout.flush()

    def log_error(self, format: str, *args: object) -> None:
        sys.stderr.write("%s [error] %s\n" % (time.strftime("%Y/%m/%d %H:%M:%S"), format % args))
        sys.stderr.flush()


def _stop(signum: int, frame: object) -> None:
    sys.stdout.flush()
    os._exit(0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flavor", choices=sorted(SERVER_NAMES), required=True)
    parser.add_argument("--ip", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--docroot", default="")
    opts = parser.parse_args()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(sig, _stop)
    Handler.flavor = opts.flavor
    Handler.docroot = opts.docroot if opts.docroot and os.path.isdir(opts.docroot) else ""
    if opts.docroot and not Handler.docroot:
        sys.stderr.write(f"document root {opts.docroot} is missing: serving the default page\n")
    ThreadingHTTPServer.address_family = socket.AF_INET6 if ":" in opts.ip else socket.AF_INET
    try:
        server = ThreadingHTTPServer((opts.ip, opts.port), Handler)
    except OSError as exc:
        sys.stderr.write(f"{opts.flavor}: [emerg] bind() to {opts.ip}:{opts.port} failed "
                         f"({exc.errno}: {exc.strerror})\n")
        return 1
    server.daemon_threads = True
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
