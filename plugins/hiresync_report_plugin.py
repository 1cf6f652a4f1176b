"""The HR report inside the Airflow UI: a FastAPI app mounted in the api-server at /hr-report and a
navigation entry "HR 报表".

A plugin's endpoints are NOT protected by Airflow's authentication (a mounted app inherits no
dependency of the core API): every request here resolves the user itself with the core API's own
dependency (`GetUserDep`: the auth manager decodes the JWT from the Authorization header or the UI's
cookie) and then applies the role matrix of policy.yaml `report_access:`. No user: 401; a user not
in the matrix, or a department user asking for another department: 403.
"""

from __future__ import annotations

from datetime import date

from airflow.api_fastapi.core_api.security import GetUserDep
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

app = FastAPI(title="HireSync HR report", docs_url=None, redoc_url=None, openapi_url=None)


def _day(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"{name}: not a date (rule: YYYY-MM-DD)") from None


@app.get("/", response_class=HTMLResponse)
def hr_report(user: GetUserDep, department: str | None = Query(None),
              start: str | None = Query(None, alias="from"), end: str | None = Query(None, alias="to")) -> Response:
    from hiresync.config.settings import Settings
    from hiresync.report.access import AccessDenied, viewer_for
    from hiresync.report.render import build, to_html

    settings = Settings.from_env()
    try:
        viewer = viewer_for(settings, user.get_name())
        report = build(settings, viewer, _day("from", start), _day("to", end), department or None)
    except AccessDenied as exc:
        raise HTTPException(status_code=403, detail=str(exc)) from None
    # no caching: the page may hold candidates' names (HR's view)
    return HTMLResponse(to_html(report), headers={"Cache-Control": "no-store"})


class HireSyncReportPlugin(AirflowPlugin):
    name = "hiresync_report"
    fastapi_apps = [{"app": app, "url_prefix": "/hr-report", "name": "HireSync HR report"}]
    external_views = [{"name": "HR 报表", "href": "/hr-report/", "destination": "nav", "category": "browse",
                       "url_route": "hr-report"}]
