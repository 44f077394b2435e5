"""Every documented path of an app answers a method it lacks with a 405 listing them all."""

from __future__ import annotations

import re

import httpx

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


def assert_405s_list_the_documented_methods(client: httpx.Client) -> int:
    """For each path of ``/openapi.json``, send each standard method it does not document
    (path parameters filled with ``1``) and check the 405's ``Allow`` names at least
    every documented method of the path. Returns the number of requests checked."""
    spec = client.get("/openapi.json").json()
    paths = {path: {m.upper() for m in item} & (METHODS | {"HEAD"})
             for path, item in spec["paths"].items()}
    patterns = {path: re.compile(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
                for path in paths}
    checked = 0
    for path, documented in paths.items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        for method in sorted(METHODS - documented):
            if any(method in paths[other] and patterns[other].match(concrete)
                   for other in paths if other != path):
                continue  # another route takes it (``/settings/{key}`` for ``categories``)
            r = client.request(method, concrete)
            assert r.status_code == 405, (method, path, r.status_code, r.text)
            allow = {m.strip() for m in r.headers["allow"].split(",")}
            assert documented <= allow, (method, path, allow, documented)
            checked += 1
    return checked
