"""A form generated from a frozen config dataclass (a net family's config, TrainConfig).

One editor per field, chosen by the field's type: spin boxes for numbers, a
check box for bools, a combo box for enums, a noise-spec line edit for
``NoiseConfig``. Each field's help (``metadata=help_text(...)`` in the dataclass,
read with :func:`aestudio.config.field_help`) becomes its tooltip, so the help text
lives in one place. ``values()`` gives a dict for
``from_dict``, so the config itself validates what the user typed.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import re
import typing
from typing import Any

from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from aestudio.config import NoiseConfig, field_help, noise_to_spec, parse_noise

logger = logging.getLogger(__name__)

NONE_TEXT = "none"  # shown by optional int fields at their "unset" value
INT_MAX = 1_000_000_000


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    args = typing.get_args(tp)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0], True
    return tp, False


def label_for(name: str) -> str:
    text = name.replace("_", " ")
    for short, long in (("lr", "learning rate"), ("kl", "KL"), ("amp", "mixed precision (AMP)"),
                        ("bf16", "bfloat16 on the CPU"), ("ema", "EMA decay")):
        text = re.sub(rf"\b{short}\b", long, text)
    text = re.sub(r" minutes$", " (minutes)", text)  # time_limit_minutes -> "Time limit (minutes)"
    return text[:1].upper() + text[1:]


class ConfigForm(QWidget):
    """Editors for the fields of ``cls`` (all, or only ``include``), minus ``exclude``."""

    def __init__(self, cls: type, *, include: typing.Sequence[str] | None = None,
                 exclude: typing.Collection[str] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.cls = cls
        self._layout = QFormLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._editors: dict[str, tuple[QWidget, Any, bool]] = {}
        hints = typing.get_type_hints(cls)
        comments = field_help(cls)
        by_name = {f.name: f for f in dataclasses.fields(cls)}
        names = list(include) if include is not None else list(by_name)
        defaults = cls()
        for name in names:
            if name in exclude or name not in by_name:
                continue
            tp, optional = _unwrap_optional(hints.get(name))
            editor = self._make_editor(tp, optional)
            if editor is None:
                continue
            editor.setObjectName(f"field_{name}")
            if name in comments:
                editor.setToolTip(comments[name])
            self._editors[name] = (editor, tp, optional)
            self._layout.addRow(label_for(name), editor)
            self._set(name, getattr(defaults, name))

    # -------------------------------------------------------------- editors

    @staticmethod
    def _make_editor(tp: Any, optional: bool) -> QWidget | None:
        if tp is bool:
            return QCheckBox()
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            box = QComboBox()
            for member in tp:
                box.addItem(str(member.value), member)
            return box
        if tp is int:
            spin = QSpinBox()
            spin.setRange(-1 if optional else 0, INT_MAX)
            if optional:
                spin.setSpecialValueText(NONE_TEXT)
            return spin
        if tp is float:
            # A line edit, not a spin box: learning rates span 1e-5..1 and people type "3e-4".
            edit = QLineEdit()
            edit.setValidator(QDoubleValidator())
            if optional:
                edit.setPlaceholderText(NONE_TEXT)
            return edit
        if tp is NoiseConfig:
            edit = QLineEdit()
            edit.setPlaceholderText("none, gaussian:0.1, gaussian:0-0.2, saltpepper:0.05, mask:0.3 …")
            return edit
        if tp is str:
            return QLineEdit()
        if typing.get_origin(tp) in (tuple, list):
            edit = QLineEdit()
            edit.setPlaceholderText("comma-separated")
            return edit
        logger.debug("no editor for field type %r", tp)
        return None

    def field_names(self) -> list[str]:
        return list(self._editors)

    def editor(self, name: str) -> QWidget:
        return self._editors[name][0]

    def _set(self, name: str, value: Any) -> None:
        editor, tp, optional = self._editors[name]
        if isinstance(editor, QCheckBox):
            editor.setChecked(bool(value))
        elif isinstance(editor, QComboBox):
            idx = editor.findData(value)
            editor.setCurrentIndex(max(idx, 0))
        elif isinstance(editor, QSpinBox):
            editor.setValue(-1 if value is None else int(value))
        elif tp is NoiseConfig:
            editor.setText(noise_to_spec(value) if isinstance(value, NoiseConfig) else str(value))
        elif isinstance(editor, QLineEdit):
            if value is None:
                editor.setText("")
            elif isinstance(value, (tuple, list)):
                editor.setText(", ".join(str(v) for v in value))
            elif tp is float:
                editor.setText(f"{float(value):g}")
            else:
                editor.setText(str(value))

    def set_row_visible(self, name: str, visible: bool) -> None:
        """Show or hide a field's row; a hidden field goes back to its default (it must not act unseen)."""
        if name not in self._editors:
            return
        self._layout.setRowVisible(self._editors[name][0], visible)
        if not visible:
            self._set(name, getattr(self.cls(), name))

    def insert_row_before(self, name: str, widget: QWidget) -> None:
        """Put ``widget`` on a row of its own just above field ``name`` (e.g. a check box revealing it)."""
        row, _role = self._layout.getWidgetPosition(self._editors[name][0])
        self._layout.insertRow(row, widget)

    def row_visible(self, name: str) -> bool:
        return name in self._editors and self._editors[name][0].isVisibleTo(self)

    def reset(self) -> None:
        """Every field back to the dataclass default."""
        defaults = self.cls()
        for name in self._editors:
            self._set(name, getattr(defaults, name))

    def set_values(self, values: dict[str, Any]) -> None:
        """Set the fields this form has; others are ignored (defaults may name other families' fields)."""
        for name, value in values.items():
            if name in self._editors:
                self._set(name, value)

    def values(self) -> dict[str, Any]:
        """Field values for ``from_dict(cls, ...)``; raises ValueError naming a bad field."""
        out: dict[str, Any] = {}
        for name, (editor, tp, optional) in self._editors.items():
            if isinstance(editor, QCheckBox):
                out[name] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[name] = editor.currentData()
            elif isinstance(editor, QSpinBox):
                v = editor.value()
                out[name] = None if optional and v < 0 else v
            elif tp is NoiseConfig:
                try:
                    out[name] = parse_noise(editor.text())
                except ValueError as exc:
                    raise ValueError(f"{label_for(name)}: {exc}") from None
            elif isinstance(editor, QLineEdit):
                text = editor.text().strip()
                if not text and optional:
                    out[name] = None
                elif tp is float:
                    try:
                        out[name] = float(text)
                    except ValueError:
                        raise ValueError(f"{label_for(name)}: {text!r} is not a number (e.g. 0.001 or 1e-3)") from None
                elif typing.get_origin(tp) in (tuple, list):
                    inner = (typing.get_args(tp) or (str,))[0]
                    conv = inner if inner in (int, float) else str
                    try:
                        out[name] = tuple(conv(p.strip()) for p in text.split(",") if p.strip())
                    except ValueError:
                        raise ValueError(f"{label_for(name)}: {text!r} is not a comma-separated list of numbers") from None
                else:
                    out[name] = text
        return out

    def build(self, **fixed: Any) -> Any:
        """The config instance, with ``fixed`` fields (not shown in the form) applied."""
        from aestudio.config import from_dict

        return from_dict(self.cls, {**fixed, **self.values()})
