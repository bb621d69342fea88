#!/usr/bin/env python3
"""moto's server, as the tests use it.

Two additions, both outside moto's AWS wire protocol handling:
* ECR tokens expire 12 hours from now (moto stamps 2015-01-01, which a correct cache never stores).
* Requests signed with a 12-digit access key id run in the account of that number, and are
  counted per key and operation at GET /_lava_test/calls?key=<access key id>, so each test has
  its own account and can see exactly which AWS calls a program made.

Usage: moto_server.py PORT   (listens on 127.0.0.1 only)
"""
import json
import re
import sys
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta
from urllib.parse import parse_qs

import moto.ecr.responses as ecr_responses
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

TOKEN_LIFE = timedelta(hours=12)


class _Now12h(datetime):
    """datetime(2015, 1, 1) inside moto's ECR responses becomes now + 12 hours."""

    def __new__(cls, *args, **kwargs):
        if args[:3] == (2015, 1, 1):
            n = datetime.now() + TOKEN_LIFE
            return datetime(n.year, n.month, n.day, n.hour, n.minute, n.second)
        return datetime.__new__(datetime, *args, **kwargs)


ecr_responses.datetime = _Now12h

CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
ACCOUNT_KEY = re.compile(r"^\d{12}$")
calls = defaultdict(lambda: defaultdict(int))
lock = threading.Lock()


def operation(environ):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(length)
        import io

        environ["wsgi.input"] = io.BytesIO(body)
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    return environ.get("REQUEST_METHOD", "?") + " " + environ.get("PATH_INFO", "")


def middleware(app):
    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_lava_test/calls":
            key = parse_qs(environ.get("QUERY_STRING", "")).get("key", [""])[0]
            with lock:
                body = json.dumps(dict(calls.get(key, {}))).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/_lava_test/ping":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]
        m = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if m:
            key = m.group(1)
            if ACCOUNT_KEY.match(key):
                environ["HTTP_X_MOTO_ACCOUNT_ID"] = key
            op = operation(environ)
            with lock:
                calls[key][op] += 1
        return app(environ, start_response)

    return wrapped


def main():
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, middleware(app), threaded=True)


if __name__ == "__main__":
    main()
