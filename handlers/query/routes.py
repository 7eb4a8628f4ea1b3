"""The query API's routes, declared once: the function serves them and the program (`infra/api.py`)
builds the REST API's resources and methods from them."""

from __future__ import annotations

GET_RESOURCES = ("/users", "/users/{email}", "/jobs", "/jobs/{jobId}")
"""The resources the function answers GET on, as API Gateway names them in the event's `resource`."""
