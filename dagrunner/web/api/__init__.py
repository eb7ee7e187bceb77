"""The REST API's routers, one module per resource; `app.create_app` mounts each under /api/v1."""

#: The modules whose `router` is mounted, in the order the OpenAPI document lists them.
ROUTER_MODULES = (
    "auth",
    "users",
    "dags",
    "runs",
    "task_instances",
    "audit",
    "approvals",
    "pools",
    "assets",
    "dead_letters",
)
