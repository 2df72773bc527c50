"""The ticket events API: helpdesks send tickets as they happen and get triage back.

``triage-ml api serve`` runs it (FastAPI on uvicorn) over the workspace's store,
settings and champion. Tickets, corrections and closes it receives are the rows
batch ingest writes, so retraining and the monitor see them like any other.
"""
