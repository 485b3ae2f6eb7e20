"""What every chapter notebook starts with: ``page = Page()`` (settings, inputs, style) and the
few ways a chapter puts something on the page (a line, a table, a figure, an absent input)."""

from __future__ import annotations

from pathlib import Path

from cxrbench.book import style, tables
from cxrbench.book.inputs import Inputs, discover
from cxrbench.book.settings import BookSettings, load


def _display(obj) -> None:
    from IPython.display import display

    display(obj)


def _md(text: str) -> None:
    from IPython.display import Markdown

    _display(Markdown(text))


class Page:
    def __init__(self, settings: BookSettings | None = None, inputs: Inputs | None = None):
        self.settings = settings or load()
        self.inputs = inputs or discover(self.settings.inputs)
        style.apply()

    @property
    def publication(self) -> bool:
        return self.settings.publication

    def text(self, markdown: str) -> None:
        _md(markdown)

    def absent(self, what: str, how: str) -> None:
        """The one line a chapter shows when its inputs are not there."""
        _md(f"*Not in these inputs: {what}. {how}*")

    def table(self, frame, name: str, caption: str | None = None, raw=None) -> None:
        _display(tables.show(frame, name, self.settings, caption, raw))

    def figure(self, fig, name: str, caption: str) -> list[Path]:
        """Save ``fig`` (PNG + PDF, the figure folder) and show the saved PNG with its caption."""
        import matplotlib.pyplot as plt
        from IPython.display import Image

        paths = style.save(fig, name, self.settings.figures)
        width_in = fig.get_size_inches()[0]
        plt.close(fig)
        _display(Image(filename=str(paths[0]), width=int(width_in * 150)))
        _md(f"**Figure {name}.** {caption}")
        return paths

    def image(self, path: Path, caption: str, width: int = 360) -> bool:
        """An image of a study (an attention overlay): shown only outside publication mode."""
        from IPython.display import Image

        from cxrbench.book.publication import images_allowed

        if not images_allowed(self.publication) or not Path(path).is_file():
            return False
        _display(Image(filename=str(path), width=width))
        _md(caption)
        return True
