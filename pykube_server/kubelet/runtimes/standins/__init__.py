"""Built-in stand-ins for the servers of images the process runtime cannot pull.

Why: a container with neither `command` nor `args` runs its image's entrypoint, which the
process runtime does not have. For the web-server images tutorials and client e2e tests use
most (nginx, httpd) a small static HTTP server (`httpstatic.py`) behaves as the image's would:
the same port, document root, default page and access log. `standin_for` is the pure choice
from an image reference; `standin_argv` is the command line the container runs.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

HTTPSTATIC = Path(__file__).with_name("httpstatic.py")


@dataclass(frozen=True)
class StandIn:
    flavor: str
    """`nginx` or `httpd`: the server's name, default page and error pages."""
    port: int
    """The port the image's server listens on."""
    docroot: str
    """The image's document root, which a volume may be mounted over."""


NGINX = StandIn("nginx", 80, "/usr/share/nginx/html")
NGINX_UNPRIVILEGED = StandIn("nginx", 8080, "/usr/share/nginx/html")
HTTPD = StandIn("httpd", 80, "/usr/local/apache2/htdocs")

BY_NAME = {"nginx": NGINX, "nginx-unprivileged": NGINX_UNPRIVILEGED, "httpd": HTTPD}


def image_name(image: str) -> str:
    """The last path component of an image reference, without tag or digest:
    `docker.io/library/nginx:1.27@sha256:...` -> `nginx`, `localhost:5000/httpd` -> `httpd`."""
    return image.rsplit("/", 1)[-1].split("@", 1)[0].split(":", 1)[0]


def standin_for(image: str) -> StandIn | None:
    """The stand-in for an image whose last path component is `nginx` or `httpd` (and
    `nginx-unprivileged`, nginxinc's image listening on 8080), or None. Only the name decides:
    any registry, namespace, tag or digest; `nginx-slim` and the like get none."""
    return BY_NAME.get(image_name(image))


def covers_docroot(standin: StandIn, mount_paths: Iterable[str]) -> bool:
    """Whether a volume is mounted at the document root or above it. Only then is the
    directory the container's: mount points are made on the host (see `mountpoints.py`), so an
    empty docroot left there by another pod must not hide the default page."""
    for path in mount_paths:
        path = posixpath.normpath(path)
        if path == standin.docroot or path == "/" or standin.docroot.startswith(path + "/"):
            return True
    return False


def standin_argv(standin: StandIn, ip: str, mount_paths: Iterable[str]) -> list[str]:
    """The container's command line: the static server on the pod IP at the image's port."""
    argv = [sys.executable, "-I", str(HTTPSTATIC), "--flavor", standin.flavor, "--ip", ip,
            "--port", str(standin.port)]
    if covers_docroot(standin, mount_paths):
        argv += ["--docroot", standin.docroot]
    return argv
