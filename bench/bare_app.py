"""A bare Litestar app: the framework floor for `POST /calculator/add` on the same server stack.

No auth, no dependency injection, no domain code: it parses `a` and `b` from the query and
returns a small JSON object, as the real endpoint does. Run by bench/run.py with uvicorn:
`python -m uvicorn bare_app:app` from bench/.
"""

from litestar import Litestar, post


@post("/calculator/add", status_code=200)
async def add(a: float, b: float) -> dict[str, str | float]:
    """Add the two query numbers."""
    return {"operation": "add", "result": a + b}


app = Litestar(route_handlers=[add])
