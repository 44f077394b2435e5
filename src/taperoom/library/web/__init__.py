"""The library's own web page (``GET /``): templates and static files."""
