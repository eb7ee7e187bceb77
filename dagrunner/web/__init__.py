"""The api-server (#14): a REST API under /api/v1 and the web UI, in one FastAPI app.

`app.create_app` builds it; `deps` holds what every endpoint shares (the metadata DB, the signed-in user and
their role, pagination); `api/` has one router per resource; `static/` is the UI, plain files shipped in the
package (no Node build). The endpoints call the same library functions as the CLI, so a change made here is
audited exactly like one made there, with the user as the actor.
"""
