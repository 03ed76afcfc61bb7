"""The shared part of every subdivide algorithm: find the executable, stage the outputs,
run the command with progress and cancellation, report its messages, write the HTML
report, move the outputs into place, and load the layers styled."""
from __future__ import annotations

import os
import re

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingUtils,
    QgsSettings,
)

from . import reports
from .runner import (
    Cancelled,
    Completed,
    OutputExists,
    Staging,
    ToolNotFound,
    find_executable,
    run_tool,
)
from .sources import FileSource, parse_ogr_source

#: a format no layer has: asking for it makes Processing export the layer
EXPORT_ALWAYS = "export-to-gpkg"

#: the provider setting (Settings → Options → Processing → Providers → subdivide)
SETTING_EXECUTABLE = "SUBDIVIDE_EXECUTABLE"

HELP_FOOTER = ("<p>Runs the installed <code>subdivide</code> command (path: Settings → Options → Processing → "
               "Providers → subdivide). 設定 → オプション → プロセシング → プロバイダ → subdivide で実行ファイルを指定します。</p>"
               "<p>Outputs are written only when the command succeeds; cancelling leaves nothing. "
               "キャンセルすると出力は残りません。</p>")


def executable_setting() -> str:
    """The provider setting (ProcessingConfig when Processing is loaded, else QgsSettings)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig

        value = ProcessingConfig.getSetting(SETTING_EXECUTABLE)
        if value:
            return str(value)
    except Exception:  # noqa: BLE001, S110 (Processing plugin absent: fall back to the stored value)
        pass
    return str(QgsSettings().value(f"/Processing/Configuration/{SETTING_EXECUTABLE}", "") or "")


class SubdivideAlgorithm(QgsProcessingAlgorithm):
    """Subclasses set ID, NAME, HELP and implement ``define(config)`` and ``prepare_run``.

    ``prepare_run(parameters, context, feedback, staging)`` returns (args, finish) where
    ``finish(completed) -> dict`` builds the results after a successful run (it may write
    more files into the staging folder; they are committed afterwards)."""

    ID = ""
    NAME = ""
    HELP = ""
    #: exit statuses that are not failures (validate: 1 = errors found in the package)
    OK_STATUS = (0,)
    REPORT = "REPORT"
    #: show the command's standard output in the log (info prints JSON: summarised instead)
    ECHO_STDOUT = True
    REPLACE = "REPLACE"

    def createInstance(self):
        return type(self)()

    def name(self):
        return self.ID

    def displayName(self):
        return self.NAME

    def shortHelpString(self):
        return self.HELP + HELP_FOOTER

    def initAlgorithm(self, config=None):
        self.define(config)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.REPORT, "Report / 報告 (HTML)", "HTML files (*.html)", optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterBoolean(
            self.REPLACE, "Replace existing outputs / 既存の出力を置き換える", defaultValue=False))

    def define(self, config):
        raise NotImplementedError

    def prepare_run(self, parameters, context, feedback, staging):
        raise NotImplementedError

    # ------------------------------------------------------------------ running
    def processAlgorithm(self, parameters, context, feedback):
        try:
            exe = find_executable(executable_setting())
        except ToolNotFound as exc:
            raise QgsProcessingException(str(exc)) from None
        replace = self.parameterAsBool(parameters, self.REPLACE, context)
        report_path = self.parameterAsFileOutput(parameters, self.REPORT, context)
        try:
            with Staging(replace=replace) as staging:
                staged_report = staging.plan("report.html", report_path) if report_path else None
                args, finish = self.prepare_run(parameters, context, feedback, staging)
                completed = self.run_command(exe, args, feedback, staging)
                results = finish(completed)
                if staged_report:
                    reports.write_text(staged_report, reports.html_report(
                        self.NAME, command=[os.path.basename(exe), *map(staging.rewrite, args)],
                        text=staging.rewrite(completed.stdout), warnings=completed.warnings,
                        sections=results.pop("_sections", [])))
                    results[self.REPORT] = report_path
                results.pop("_sections", None)
                staging.commit()
        except OutputExists as exc:
            raise QgsProcessingException(str(exc)) from None
        except Cancelled:
            feedback.reportError("Cancelled: the subdivide command was ended and nothing was written. "
                                 "キャンセルしました（出力はありません）。", False)
            return {}
        self.load_layers(results, context)
        return results

    def run_command(self, exe: str, args, feedback, staging: Staging) -> Completed:
        feedback.pushCommandInfo(staging.rewrite(" ".join(reports._quote(a) for a in [exe, *args])))

        def on_progress(p):
            feedback.setProgressText(p.stage)
            if p.percent is not None:
                feedback.setProgress(p.percent)

        def on_text(kind, text):
            if kind == "warning":
                feedback.pushWarning(staging.rewrite(text))
            elif kind == "error":
                feedback.reportError(staging.rewrite(text), False)
            elif text.strip() and (kind != "stdout" or self.ECHO_STDOUT):
                feedback.pushConsoleInfo(staging.rewrite(text))

        completed = run_tool(exe, args, on_progress=on_progress, on_text=on_text, is_cancelled=feedback.isCanceled)
        if completed.returncode not in self.OK_STATUS:
            if completed.error is not None:
                raise QgsProcessingException(staging.rewrite(completed.error.text()))
            tail = staging.rewrite(completed.stderr.strip()[-2000:]) or "(no message)"
            raise QgsProcessingException(f"subdivide exited with status {completed.returncode}:\n{tail}")
        return completed

    # ------------------------------------------------------------------ inputs
    def townblock_source(self, parameters, name, context, feedback) -> FileSource:
        """A town-block input as a file the tool reads: the layer's own file when it is one
        (so the tool decodes the .dbf itself), else a temporary GeoPackage export."""
        path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, name, context, ["shp", "gpkg", "geojson", "json"], "gpkg", feedback)
        if not path:
            raise QgsProcessingException(f"no input layer for {name}")
        if path.startswith("/vsi"):
            parsed = parse_ogr_source("ogr", path)
            if parsed is None:   # not a zip the tool can read directly: export it
                path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                    parameters, name, context, [EXPORT_ALWAYS], "gpkg", feedback)
                return FileSource(path, layer or None)
            return parsed
        if path.lower().endswith(".gpkg") and layer:
            return FileSource(path, layer)
        return FileSource(path)

    def aux_source(self, parameters, name, context, feedback) -> str | None:
        """An optional auxiliary layer (points, outline, neighbours) as a single-layer file."""
        if parameters.get(name) in (None, ""):
            return None
        path = self.parameterAsCompatibleSourceLayerPath(parameters, name, context, ["geojson", "gpkg"],
                                                         "gpkg", feedback)
        return path or None

    # ------------------------------------------------------------------ layers
    def load_layers(self, results: dict, context: QgsProcessingContext) -> None:
        """Load the sub-area / town-block layers on completion, styled by sub-area."""
        from .styles import keep_post_processor

        project = context.project()
        for key, label in (("TOWNBLOCKS", "town-blocks 町丁・字"), ("SUBAREAS", "sub-areas 細分化エリア")):
            uri = results.get(key)
            if not uri:
                continue
            details = QgsProcessingContext.LayerDetails(f"{label} — {_short(uri)}", project, key,
                                                        QgsProcessingUtils.LayerHint.Vector)
            legend = results.get("SUBAREAS") if key == "TOWNBLOCKS" else None
            details.setPostProcessor(keep_post_processor(legend))
            context.addLayerToLoadOnCompletion(uri, details)


def _short(uri: str) -> str:
    path = uri.split("|")[0]
    return os.path.basename(path.rstrip("/")) or path


def safe_name(text: str, index: int) -> str:
    """An ASCII column-safe name for a raster (its file name, else raster<i>)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", text).strip("_")
    return name if name and not name[0].isdigit() else f"raster{index + 1}"


__all__ = ["SETTING_EXECUTABLE", "QgsProcessing", "SubdivideAlgorithm", "executable_setting"]
