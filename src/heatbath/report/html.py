"""HTML building blocks of report.html: one self-contained page, inline CSS, no JavaScript.

Everything user-controlled (names, config text, notes) goes through `escape`, so a run name or a
config value can never break the page or inject markup.
"""

from __future__ import annotations

from html import escape

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #555; }
table { border-collapse: collapse; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td.zflag { color: #b00; font-weight: bold; }
.warn { color: #b00; }
.notes li { color: #8a4b00; }
figure { display: inline-block; margin: 0.4em 1em 0.8em 0; vertical-align: top; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: 0.8em; overflow-x: auto;
      font-size: 0.85em; }
"""


def section(title: str, *parts: str) -> str:
    """An <h2> section; `parts` are already-escaped HTML fragments."""
    return f"<section>\n<h2>{escape(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def figure(data_uri: str, caption: str = "") -> str:
    caption_html = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return (f'<figure><img src="{data_uri}" alt="{escape(caption or "plot")}">'
            f"{caption_html}</figure>")


def paragraph(text: str, css_class: str = "") -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<p{attribute}>{escape(text)}</p>"


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def bullet_list(items: list[str], css_class: str = "") -> str:
    attribute = f' class="{css_class}"' if css_class else ""
    return f"<ul{attribute}>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def page(title: str, body: list[str]) -> str:
    """The whole document: doctype, inline CSS, body fragments in order."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")
