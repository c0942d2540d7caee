"""Figures drawn to files and arrays, without pyplot.

matplotlib is imported only where a figure is drawn, never when a module
loads: ``python -m train`` and ``python -m export`` start without it, and a
program (a notebook) that imports ``ir2net_tf`` keeps its own backend, since
a ``Figure`` on an Agg canvas needs no global backend (``matplotlib.use``).
"""

import logging


def figure(**kwargs):
    """A ``matplotlib.figure.Figure(**kwargs)`` on its own Agg canvas:
    ``savefig`` and ``canvas.buffer_rgba()`` work; nothing to close."""
    # The first import of matplotlib on a machine builds its font cache and
    # logs "generated new fontManager" at INFO, which absl's handler (our
    # commands) prints: one-time housekeeping, nothing about the run.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.WARNING)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    drawn = Figure(**kwargs)
    FigureCanvasAgg(drawn)
    return drawn
