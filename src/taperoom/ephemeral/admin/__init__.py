"""The curator's page of the ephemeral app: ``/admin`` and its JSON API ``/admin/api/...``.

Only built when ``ADMIN_TOKEN`` is set (otherwise ``/admin`` and ``/admin/api/*``
do not exist: 404). ``session`` signs the page's session cookie and its CSRF
token, ``upload`` receives a multipart upload into a temp file, ``archive``
writes and reads backups, and ``curator`` holds the operations (upload, delete,
reset, wear model, backup, restore) over the store.
"""

from __future__ import annotations
