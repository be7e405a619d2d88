"""A validating admission webhook as an operator would run it in a pod: stdlib only.

It listens with TLS on $POD_IP:8443 (certificate and key PEMs from $TLS_CRT / $TLS_KEY) and
refuses ConfigMaps labelled deny=true; everything else is allowed.
"""

import json
import os
import ssl
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        obj = request.get("object") or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        response = {"uid": request["uid"], "allowed": labels.get("deny") != "true"}
        if not response["allowed"]:
            response["status"] = {"message": f"denied by the in-cluster webhook at {self.path}"}
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    directory = tempfile.mkdtemp()
    for name in ("TLS_CRT", "TLS_KEY"):
        with open(os.path.join(directory, name), "w") as f:
            f.write(os.environ[name])
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(os.path.join(directory, "TLS_CRT"), os.path.join(directory, "TLS_KEY"))
    server = ThreadingHTTPServer((os.environ["POD_IP"], 8443), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("serving", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
