"""The Processing provider ``subdivide`` and its setting (the path of the executable)."""
from __future__ import annotations

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import ALGORITHMS
from .base import SETTING_EXECUTABLE

HERE = os.path.dirname(__file__)


class SubdivideProvider(QgsProcessingProvider):
    def id(self):
        return "subdivide"

    def name(self):
        return "subdivide (緊急速報メール 細分化)"

    def longName(self):
        return self.name()

    def icon(self):
        return QIcon(os.path.join(HERE, "icon.svg"))

    def load(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:   # Processing plugin absent: the setting is read from QgsSettings
            return super().load()
        ProcessingConfig.settingIcons[self.name()] = self.icon()
        ProcessingConfig.addSetting(Setting(
            self.name(), SETTING_EXECUTABLE,
            "subdivide executable / 実行ファイル (empty: find it on the PATH)", "", valuetype=Setting.FILE))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        try:
            from processing.core.ProcessingConfig import ProcessingConfig

            ProcessingConfig.removeSetting(SETTING_EXECUTABLE)
        except ImportError:
            pass

    def loadAlgorithms(self):
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
