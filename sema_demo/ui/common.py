"""Shared Streamlit controls: URL-bound state, presets, the α slider, notices, exports.

This package is the only place in ``sema_demo`` that imports Streamlit.

URL-bound state, the pattern every page follows::

    PARAMS = {"lr": Param(0.05, lo=1e-4, hi=1.0), "dataset": Param("moons", choices=DATASETS)}
    bind_url(PARAMS)                  # once per rerun, before any widget
    st.slider("Learning rate", key="lr", ...)   # widgets take their value from session state
    sync_url(PARAMS)                  # after the widgets: write non-default values to the URL

A shared link therefore reproduces a demo exactly; malformed, out-of-range or
hostile query values fall back to the default (or are clamped) with a notice,
never a traceback.
"""
from __future__ import annotations

import base64
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

MAX_QUERY_LENGTH = 200  # longer query values are ignored outright
# The shared frame's URL settings (projector mode, live speed: sema_demo.ui.display), kept in every
# page's link: sync_url writes them beside the page's own parameters.
FRAME_PARAMS: dict[str, "Param"] = {}
_PARAM_OWNERS = "url_param_owners"   # session key: {key: the parameter set (page) that bound it last}
_URL_NOTICES = "url_notices"  # session key: per page (its parameter names), {key: (value used, problem)}


@dataclass(frozen=True)
class Param:
    """One URL-bound control: its default and what values are allowed.

    The kind (bool, int, float, str, list) is taken from ``default``.  Numbers are
    clamped into [lo, hi]; strings and list items must be among ``choices``.
    """

    default: Any
    lo: float | None = None
    hi: float | None = None
    choices: Sequence[Any] | None = None

    def parse(self, raw: str) -> tuple[Any, str | None]:
        """(value, notice) for a raw query-string value; notice is None when it was fine."""
        if len(raw) > MAX_QUERY_LENGTH:
            return self.default, "was too long"
        d = self.default
        try:
            if isinstance(d, bool):
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = raw.lower() in ("true", "1")
            elif isinstance(d, int):
                number = float(raw)
                if not number.is_integer():
                    raise ValueError
                value = int(number)
            elif isinstance(d, float):
                value = float(raw)
                if not math.isfinite(value):
                    raise ValueError
            elif isinstance(d, (list, tuple)):
                value = [self._item(v) for v in raw.split(",") if v]
                if any(v is None for v in value):
                    raise ValueError
                return type(d)(value), None
            else:
                value = raw
        except (ValueError, TypeError):
            return self.default, "is not a valid value"
        if self.choices is not None and value not in self.choices:
            return self.default, "is not one of the choices"
        return self._clamp(value)

    def _item(self, raw: str) -> Any:
        kind = type(self.choices[0]) if self.choices else str
        try:
            item = kind(raw)
        except (TypeError, ValueError):
            return None
        return item if self.choices is None or item in self.choices else None

    def _clamp(self, value: Any) -> tuple[Any, str | None]:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.lo is not None and value < self.lo:
                return type(self.default)(self.lo), f"was below {self.lo} and was raised to it"
            if self.hi is not None and value > self.hi:
                return type(self.default)(self.hi), f"was above {self.hi} and was lowered to it"
        return value, None

    def encode(self, value: Any) -> str:
        if isinstance(value, (list, tuple)):
            return ",".join(str(v) for v in value)
        return str(value).lower() if isinstance(value, bool) else str(value)


def bind_url(params: Mapping[str, Param]) -> None:
    """Fill session state from the URL (first visit) or the defaults; call before widgets.

    Keys already in session state (the user moved a widget, or a preset set it) win.
    Query values that cannot be used are replaced and reported in one notice, which stays
    while the replaced values do: a page that reruns itself at once (a run that finishes,
    a fragment asking for a full rerun) would otherwise wipe it before anyone read it.
    """
    notices = st.session_state.setdefault(_URL_NOTICES, {}).setdefault(tuple(params), {})
    # Pages share one session state and some share names (lr, alpha, noise …): a value another
    # page left under a key is that page's, not this one's, so it is bound again here.
    owners = st.session_state.setdefault(_PARAM_OWNERS, {})
    page = tuple(params)
    for key, param in params.items():
        mine = owners.get(key, page) == page
        owners[key] = page
        if key in st.session_state and mine:
            continue
        notices.pop(key, None)
        raw = st.query_params.get(key)
        if raw is None:
            st.session_state[key] = param.default
            continue
        value, problem = param.parse(raw)
        st.session_state[key] = value
        if problem:
            notices[key] = (value, problem)
    shown = [f"`{key}` {problem}; using {params[key].encode(value)}" for key, (value, problem) in notices.items()
             if st.session_state.get(key) == value]
    if shown:
        st.warning("Some settings in the link could not be used: " + "; ".join(shown) + ".")


def sync_url(params: Mapping[str, Param]) -> None:
    """Write the current values that differ from the defaults into the URL; drop the rest."""
    wanted = {}
    for key, param in {**FRAME_PARAMS, **params}.items():
        value = st.session_state.get(key, param.default)
        if value != param.default:
            wanted[key] = param.encode(value)
    if dict(st.query_params) != wanted:
        st.query_params.from_dict(wanted)


def preset_buttons(presets: Mapping[str, Mapping[str, Any]], help_texts: Mapping[str, str] | None = None,
                   on_apply: Callable[[], None] | None = None) -> None:
    """A row of buttons; each sets several controls at once (before the widgets redraw)."""
    def apply(values: Mapping[str, Any]) -> None:
        for key, value in values.items():
            st.session_state[key] = value
        if on_apply is not None:
            on_apply()

    cols = st.columns(len(presets))
    for col, (name, values) in zip(cols, presets.items()):
        col.button(name, on_click=apply, args=(values,), width="stretch",
                   help=(help_texts or {}).get(name), key=f"preset::{name}")


# EMA momentum α choices: log-spaced in 1 − α so the slider moves through horizons evenly.
ALPHA_CHOICES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999)
ALPHA_HELP = ("α is the EMA *decay*: after every optimizer step φ ← α·φ + (1 − α)·θ. "
              "0.99 keeps 99 % of the old average and remembers about 1/(1 − α) = 100 steps. "
              "α = 0 makes the average equal the live weights.")


def format_alpha(alpha: float) -> str:
    if alpha == 0:
        return "0 (no averaging)"
    return f"{alpha:g} (≈ {1 / (1 - alpha):,.0f} steps)"


def alpha_slider(key: str, label: str = "EMA momentum α (decay)", choices: Sequence[float] = ALPHA_CHOICES,
                 container=st) -> float:
    """The EMA momentum control: log-spaced values, each shown with its horizon in steps."""
    return container.select_slider(label, options=list(choices), key=key, format_func=format_alpha,
                                   help=ALPHA_HELP)


REGIME_ICONS = {"helps": "✅", "hurts": "⚠️", "ties": "🟰", "diverges": "💥"}


def horizon_warning(alpha: float, switch_interval_steps: int | None, container=st, *, model=None,
                    batch_size: float | None = None, steps: int | None = None):
    """Say where this (EMA horizon, switch interval, noise) sits on the theory map: does SEMA help,
    hurt or tie EMA there?  Computed (``theory.regime``), never a fixed rule of thumb.

    ``model``: the Theory page's own NQM (its α and K are used as they are).  Other pages pass
    only α and K (optionally the batch size and run length); they get the lab's default noisy
    quadratic, and the caption says so.  Returns the Regime (None when nothing is shown)."""
    from sema_demo import theory

    if alpha <= 0 or not switch_interval_steps:
        return None
    if model is not None:
        found, where = theory.regime(model), "Theory map at this setting"
    else:
        found = theory.regime_at(alpha, switch_interval_steps, batch_size=batch_size, steps=steps)
        where = (f"Theory map (the lab's noisy quadratic, batch {found.cfg.batch_size:g}, not this page's "
                 "network)")
    warning = found.lag_warning()
    icon = "⚠️" if warning else REGIME_ICONS[found.verdict]
    container.caption(f"{icon} {warning + ' ' if warning else ''}{where}: {found.sentence()}")
    return found


def plain(text: str) -> str:
    """User text (a CSV cell or header, a file's contents) for a Streamlit markdown string such
    as ``st.error``, shown exactly as it was written.  It goes inside a code span, where
    markdown makes nothing of it: no link, no image the browser would fetch, no HTML, LaTeX
    or colour directive.  The fence is longer than any run of backticks in the text."""
    text = " ".join(str(text).splitlines())
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    return f"{fence} {text} {fence}"       # CommonMark drops one space on each side


def what_to_notice(markdown: str, container=st) -> None:
    container.info("**What to notice**\n\n" + markdown, icon="👀")


def inline_image(data: bytes, mime: str = "image/jpeg") -> str:
    """An image as a ``data:`` URL for ``st.image``: it travels inside the message that shows it.

    Bytes given to ``st.image`` are served as a media file, which the server deletes as soon as a
    newer picture replaces it; a browser still fetching the old one (a slow laptop, a busy
    server) would get a 404 and log an error on every frame of an animation or live run.
    """
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def figure_webp(fig, dpi: int = 200) -> bytes:
    """A matplotlib figure as a lossless WebP picture (sharp lines, fewer bytes than its PNG)."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="rgba", dpi=dpi)
    width, height = (round(v) for v in fig.get_size_inches() * dpi)
    out = io.BytesIO()
    # method 0: the fastest lossless encoding (methods 1-6 saved a third of the bytes for 3-10x the time)
    Image.frombuffer("RGBA", (width, height), raw.getbuffer()).convert("RGB").save(out, format="WEBP", lossless=True,
                                                                                   method=0)
    return out.getvalue()


def figure_downloads(fig, stem: str, container=st) -> None:
    """PNG and SVG download buttons for a matplotlib figure."""
    cols = container.columns(2)
    for col, fmt in zip(cols, ("png", "svg")):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight")
        col.download_button(f"⬇ {fmt.upper()}", buf.getvalue(), file_name=f"{stem}.{fmt}",
                            mime="image/png" if fmt == "png" else "image/svg+xml", key=f"dl::{stem}.{fmt}",
                            width="stretch")


def csv_download(frame, stem: str, label: str = "⬇ CSV", container=st) -> None:
    """A download button for a pandas DataFrame as CSV."""
    container.download_button(label, frame.to_csv(index=False).encode(), file_name=f"{stem}.csv",
                              mime="text/csv", key=f"dl::{stem}.csv")


def active_preset(presets: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The preset whose values all match the current controls (None once the user moved one away).

    Derived from the controls themselves, so a shared link or a hand-made setting equal to a
    preset counts as that preset, and a page's computed sentence can answer its question."""
    for name, values in presets.items():
        if all(st.session_state.get(k) == v for k, v in values.items()):
            return name
    return None


def follow_tab(url_key: str, widget_key: str, tabs: Mapping[str, str]) -> None:
    """Keep a URL parameter (``url_key``: a key of ``tabs``) and an ``st.tabs(key=widget_key)``
    (its label) in step; call after bind_url, before the tabs.

    A link opens its tab (``url_key`` set by bind_url, no tab state yet); a click on a tab reruns
    the page (``on_change="rerun"``) with the new label in ``widget_key``, which then sets
    ``url_key`` for sync_url to write."""
    state = st.session_state
    if state.get(widget_key) in tabs.values():
        state[url_key] = next(k for k, label in tabs.items() if label == state[widget_key])
    else:
        state[widget_key] = tabs[state.get(url_key, next(iter(tabs)))]
