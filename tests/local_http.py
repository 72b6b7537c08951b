"""A throw-away HTTP server on 127.0.0.1 for the download tests (no test uses the internet)."""

import contextlib
import functools
import http.server
import socket
import threading


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder without logging each request to stderr (tests read stderr)."""

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory, handler=QuietHandler):
    """Serve ``directory`` on 127.0.0.1; yields the base URL, e.g. ``http://127.0.0.1:40123``."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_url(name="file"):
    """A URL on 127.0.0.1 where nothing listens: connecting fails at once, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/{name}"
