"""The one place the Krita adapter imports Qt from.

Krita 5 embeds PyQt5, Krita 6 PyQt6. Everything else in the adapter imports Qt names from here
and uses only *scoped* enum names (``Qt.AlignmentFlag.AlignCenter``), which both bindings
accept, so the adapter runs unchanged on either.
"""

from __future__ import annotations

import sys

# Krita loads its own binding (its ``krita`` package imports PyQt's QtCore) before any plug-in.
# Follow it: a system Python with both PyQt5 and PyQt6 installed must not mix Qt 5 and Qt 6 in
# one process (Krita 5 would get PyQt6 widgets it cannot dock, or crash).
if "PyQt5.QtCore" in sys.modules and "PyQt6.QtCore" not in sys.modules:  # Krita 5
    from PyQt5 import QtCore, QtGui, QtWidgets

    QT_MAJOR = 5
else:
    try:  # Krita 6
        from PyQt6 import QtCore, QtGui, QtWidgets

        QT_MAJOR = 6
    except ImportError:  # Krita 5
        from PyQt5 import QtCore, QtGui, QtWidgets

        QT_MAJOR = 5

Qt = QtCore.Qt
QByteArray = QtCore.QByteArray
QObject = QtCore.QObject
QProcess = QtCore.QProcess
QProcessEnvironment = QtCore.QProcessEnvironment
QTimer = QtCore.QTimer
QElapsedTimer = QtCore.QElapsedTimer
pyqtSignal = QtCore.pyqtSignal

QImage = QtGui.QImage
QPixmap = QtGui.QPixmap

QCheckBox = QtWidgets.QCheckBox
QComboBox = QtWidgets.QComboBox
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QFileDialog = QtWidgets.QFileDialog
QFormLayout = QtWidgets.QFormLayout
QFrame = QtWidgets.QFrame
QGroupBox = QtWidgets.QGroupBox
QHBoxLayout = QtWidgets.QHBoxLayout
QLabel = QtWidgets.QLabel
QLineEdit = QtWidgets.QLineEdit
QProgressBar = QtWidgets.QProgressBar
QPushButton = QtWidgets.QPushButton
QRadioButton = QtWidgets.QRadioButton
QScrollArea = QtWidgets.QScrollArea
QSizePolicy = QtWidgets.QSizePolicy
QSlider = QtWidgets.QSlider
QVBoxLayout = QtWidgets.QVBoxLayout
QWidget = QtWidgets.QWidget
QApplication = QtWidgets.QApplication

