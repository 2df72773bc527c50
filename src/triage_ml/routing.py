"""Whether the routes setting sends the categories the data holds anywhere but the default queue.

The routes map the demo's categories; a user's own data with other category
names is all routed to ``default_route``, and nothing else would say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def uncovered_categories(categories: Iterable[str], routes: Mapping[str, str]) -> list[str]:
    """The categories no route names, sorted."""
    return sorted({str(c) for c in categories} - set(routes))


def route_warnings(
    categories: Iterable[str], routes: Mapping[str, str], default_route: str
) -> list[str]:
    """One warning when the routes leave some or all of ``categories`` to the default route.

    Args:
        categories: the categories of the labeled tickets (or of the model).
        routes: the ``routes`` setting, category to team.
        default_route: where an unrouted category goes.

    Returns:
        No warning when every category has a route (or there are none), else one line
        naming the uncovered categories.
    """
    known = sorted({str(c) for c in categories})
    missing = uncovered_categories(known, routes)
    if not missing:
        return []
    how_many = "none" if len(missing) == len(known) else f"{len(known) - len(missing)}"
    return [
        f"the routes setting covers {how_many} of the {len(known)} categories: "
        f"{', '.join(missing)} go to '{default_route}' (set `routes` in the config file)"
    ]
