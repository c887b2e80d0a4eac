"""Run a list of calls with the OFFICIAL Taskcluster Python client; print the outcomes as JSON.

Runs inside the official client's own environment, never in the project's venv:

    .ci-work/clients/tc113/bin/python tests/client/official_scenario.py ROOT_URL STEPS_JSON

Each step is `{"method": NAME, "args": [...], "query": {...}, "credentials": [id, token] |
null, "authorizedScopes": [...] | null}`; each outcome `{"result": ...}` or
`{"error": {"status": ..., "code": ..., "message": ...}}`. No retries, as upstream's tests.
"""

import json
import sys

import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure


def run(root_url, step):
    options = {"rootUrl": root_url, "maxRetries": 0, "credentials": {}}
    if step["credentials"]:
        client_id, access_token = step["credentials"]
        options["credentials"] = {"clientId": client_id, "accessToken": access_token}
    if step["authorizedScopes"] is not None:
        options["authorizedScopes"] = step["authorizedScopes"]
    method = getattr(taskcluster.PurgeCache(options), step["method"])
    kwargs = {"query": step["query"]} if step["query"] else {}
    try:
        return {"result": method(*step["args"], **kwargs)}
    except (TaskclusterAuthFailure, TaskclusterRestFailure) as error:
        body = error.body if isinstance(error.body, dict) else {}
        return {
            "error": {"status": error.status_code, "code": body.get("code"), "message": str(error)}
        }


if __name__ == "__main__":
    json.dump([run(sys.argv[1], step) for step in json.loads(sys.argv[2])], sys.stdout)
