"""A local S3-compatible server for the tests: moto's WSGI app on 127.0.0.1, one request at a time.

moto checks a conditional put (If-None-Match / If-Match) and then writes, without holding a lock in
between, so two racing conditional puts can both succeed under its threaded server. Serving its app
behind one lock makes each request atomic, as S3's conditional writes are: the tests then measure
quarry, not moto.

    python s3server.py PORT_FILE     # listens on a free port, writes it to PORT_FILE, serves until killed
"""

import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


class OneAtATime:
    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            # The body is read whole inside the lock: a response is never interleaved with another request.
            return list(self.app(environ, start_response))


def main():
    port_file = sys.argv[1]
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_port))
    import os

    os.replace(port_file + ".tmp", port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
