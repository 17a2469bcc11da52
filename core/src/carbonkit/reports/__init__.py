"""Reports on finished (or killed) runs, and estimates for runs that were not measured.

Modules:

- :mod:`~carbonkit.reports.aggregate`: read run logs, count each device once per job and host,
  add the runs up, group them (``carbonkit report``);
- :mod:`~carbonkit.reports.statement`: a carbon impact statement for a paper's appendix
  (``carbonkit statement``);
- :mod:`~carbonkit.reports.html`: one self-contained HTML page with tables and inline SVG plots
  (``carbonkit report --html``);
- :mod:`~carbonkit.reports.estimate`: the what-if calculator (``carbonkit estimate``);
- :mod:`~carbonkit.reports.sci`: the Software Carbon Intensity, ``(E x I + M) / R``.

Nothing here is imported by ``import carbonkit``; numpy is not needed.
"""

from __future__ import annotations

__all__: list[str] = []
