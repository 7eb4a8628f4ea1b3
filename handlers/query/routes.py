"""The query API's routes and the headers of its answers, declared once: the function serves them and
the program (`infra/api.py`) builds the REST API's resources, methods and gateway responses from them."""

from __future__ import annotations

GET_RESOURCES = ("/users", "/users/{email}", "/jobs", "/jobs/{jobId}")
"""The resources the function answers GET on, as API Gateway names them in the event's `resource`."""

# Every answer may carry personal data (a user, a page of users) or be an error about a request
# that did: no cache, the browser's or a proxy's, may keep it (`no-store`), and no browser may read
# its JSON as another type (`nosniff`: a cell sniffed as HTML would run). OWASP's REST Security
# Cheat Sheet asks for both on every API response:
# https://cheatsheetseries.owasp.org/cheatsheets/REST_Security_Cheat_Sheet.html#security-headers
PRIVATE_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
"""On every answer: the function's own (`handlers/query/app.py`) and API Gateway's (`infra/api.py`)."""
