"""Puts the portal on the API's app: its pages, sign-in, live updates and its own static assets."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tenantry.portal import auth_routes, lifecycle_routes, live, routes

STATIC = Path(__file__).parent / "static"


def install_portal(app: FastAPI) -> None:
    """Every asset is served from here (no CDN): a stylesheet and a few lines of script of our own."""
    app.include_router(auth_routes.router)
    app.include_router(routes.router)
    app.include_router(lifecycle_routes.router)
    app.include_router(live.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
