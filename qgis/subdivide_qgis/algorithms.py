"""The subdivide algorithms: info, plan by attribute, plan automatically, spill, package,
validate, map. Each builds a command line (:mod:`.commands`), runs it through
:class:`.base.SubdivideAlgorithm`, and returns files, layers and an HTML report."""
from __future__ import annotations

import json
import os
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from . import commands as cmd
from . import reports
from .base import SubdivideAlgorithm, safe_name

POLYGONS = [QgsProcessing.TypeVectorPolygon]
POINTS = [QgsProcessing.TypeVectorPoint]
GPKG_FILTER = "GeoPackage (*.gpkg *.GPKG)"
SPILL_ENCODINGS = ("utf-8-sig", "cp932")
PACKAGE_ENCODINGS = ("utf-8", "cp932")


def _text(alg, parameters, name, context) -> str | None:
    value = alg.parameterAsString(parameters, name, context)
    return value.strip() if value and value.strip() else None


def _number(parameters, name, alg, context) -> float | None:
    if parameters.get(name) in (None, ""):
        return None
    return alg.parameterAsDouble(parameters, name, context)


def _plan_file(alg, parameters, context) -> str:
    path = alg.parameterAsFile(parameters, "PLAN", context)
    if not path or not os.path.isfile(path):
        raise QgsProcessingException(f"plan GeoPackage not found: {path}\nfix: make one with "
                                     "“Plan by attribute” or “Plan automatically”")
    return path


class _ReadsTownBlocks(SubdivideAlgorithm):
    """The town-block input and its reading options (info and plans)."""

    def define_input(self):
        self.addParameter(QgsProcessingParameterFeatureSource(
            "INPUT", "Town-blocks / 町丁・字 (e-Stat 小地域 layer or file)", POLYGONS))
        self.addParameter(QgsProcessingParameterString(
            "MUNI", "Municipality code / 市区町村コード (e.g. 03205; for a prefecture-wide file)", optional=True))
        self.addParameter(QgsProcessingParameterString(
            "ENCODING", "Text encoding of the .dbf (default: .cpg, else CP932)", optional=True))
        self.addParameter(QgsProcessingParameterCrs(
            "CRS", "CRS of the file when its .prj is missing or wrong", optional=True))

    def reading(self, parameters, context) -> cmd.Reading:
        crs = self.parameterAsCrs(parameters, "CRS", context) if parameters.get("CRS") else None
        return cmd.Reading(muni=_text(self, parameters, "MUNI", context),
                           encoding=_text(self, parameters, "ENCODING", context),
                           crs=crs.authid() if crs is not None and crs.isValid() else None)


class InfoAlgorithm(_ReadsTownBlocks):
    ID = "info"
    NAME = "1 Info — 町丁・字ファイルの確認"
    HELP = ("<p>Describes a town-block file: layout, text encoding, CRS, records and town-blocks, population, "
            "households, area, repairs and dropped rows (<code>subdivide info</code>).</p>"
            "<p>町丁・字ファイルの内容（文字コード、座標系、件数、人口・世帯、面積、修復・除外）を表示します。</p>")
    ECHO_STDOUT = False

    def define(self, config):
        self.define_input()
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_JSON", "Info (JSON)", "JSON files (*.json)", optional=True, createByDefault=False))
        for key, label in (("BLOCKS", "town-blocks"), ("RECORDS", "records in the file"),
                           ("POPULATION", "population 人口"), ("HOUSEHOLDS", "households 世帯")):
            self.addOutput(QgsProcessingOutputNumber(key, label))
        self.addOutput(QgsProcessingOutputString("MUNI_CODES", "municipality codes"))

    def prepare_run(self, parameters, context, feedback, staging):
        source = self.townblock_source(parameters, "INPUT", context, feedback)
        json_path = self.parameterAsFileOutput(parameters, "OUTPUT_JSON", context)
        staged_json = staging.plan("info.json", json_path) if json_path else None

        def finish(done):
            info = json.loads(done.stdout)
            if staged_json:
                Path(staged_json).write_text(done.stdout, encoding="utf-8")
            totals = info.get("totals") or {}
            feedback.pushInfo(f"{info.get('records_in')} records → {info.get('blocks_out')} town-blocks; "
                              f"population {totals.get('population')}, households {totals.get('households')}")
            done.stdout = ""     # the report shows the JSON as a table
            return {"BLOCKS": info.get("blocks_out"), "RECORDS": info.get("records_in"),
                    "POPULATION": totals.get("population"), "HOUSEHOLDS": totals.get("households"),
                    "MUNI_CODES": ",".join(info.get("muni_codes") or []),
                    **({"OUTPUT_JSON": json_path} if json_path else {}),
                    "_sections": [reports.mapping_table(info, "info")]}

        return cmd.info_args(source, self.reading(parameters, context)), finish


class _MakesPlan(_ReadsTownBlocks):
    """Plan outputs: the GeoPackage (loaded as styled layers), the block list CSV."""

    def define_outputs(self):
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Plan / 細分化案 (GeoPackage)",
                                                                GPKG_FILTER))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_CSV", "Town-block list / 町丁・字の割当 (CSV)", "CSV files (*.csv)", optional=True,
            createByDefault=False))
        self.addOutput(QgsProcessingOutputVectorLayer("SUBAREAS", "sub-areas 細分化エリア",
                                                      QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputVectorLayer("TOWNBLOCKS", "town-blocks 町丁・字",
                                                      QgsProcessing.TypeVectorPolygon))

    def stage_outputs(self, parameters, context, staging):
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if not out.lower().endswith(".gpkg"):
            out += ".gpkg"
        csv_out = self.parameterAsFileOutput(parameters, "OUTPUT_CSV", context)
        return out, str(staging.plan("plan.gpkg", out)), csv_out, (
            str(staging.plan("blocks.csv", csv_out)) if csv_out else None)

    @staticmethod
    def plan_results(out, csv_out) -> dict:
        return {"OUTPUT": out, "SUBAREAS": f"{out}|layername=subareas",
                "TOWNBLOCKS": f"{out}|layername=townblocks", **({"OUTPUT_CSV": csv_out} if csv_out else {})}


class PlanByAttributeAlgorithm(_MakesPlan):
    ID = "planbyattribute"
    NAME = "2a Plan by attribute — 属性で細分化（旧市町村など）"
    HELP = ("<p>One sub-area per value of a column, e.g. the 旧市町村 column (<code>subdivide plan --by</code>). "
            "Sub-areas are named 「●●地域」.</p><p>列の値（旧市町村など）ごとに細分化エリアを作ります。</p>")

    def define(self, config):
        self.define_input()
        self.addParameter(QgsProcessingParameterField("FIELD", "Column / 列 (e.g. OLD_MUNI)", parentLayerParameterName="INPUT"))
        self.define_outputs()

    def prepare_run(self, parameters, context, feedback, staging):
        source = self.townblock_source(parameters, "INPUT", context, feedback)
        column = (self.parameterAsFields(parameters, "FIELD", context) or [None])[0]
        out, staged, csv_out, staged_csv = self.stage_outputs(parameters, context, staging)
        args = cmd.plan_by_attribute_args(source, column, staged, reading=self.reading(parameters, context),
                                          export_csv=staged_csv)
        return args, lambda done: self.plan_results(out, csv_out)


class PlanAutoAlgorithm(_MakesPlan):
    ID = "planauto"
    NAME = "2b Plan automatically — 自動で細分化"
    HELP = ("<p>Contiguous sub-areas found automatically for each k in the range, ranked; the best (or the "
            "picked k) is written (<code>subdivide plan --auto</code>). Constraints: a floor on each "
            "sub-area's unreached core share at the spill distance, an area floor; objectives: similar "
            "attributes / hazard rasters, compactness, following the 旧市町村 column (penalty or nesting).</p>"
            "<p>k の範囲で連続した細分化案を自動で作り、候補を順位付けします。長く掛かる場合はキャンセルできます。</p>")

    def define(self, config):
        self.define_input()
        num = QgsProcessingParameterNumber
        self.addParameter(num("K_MIN", "Fewest sub-areas k / 最小エリア数", num.Integer, 2, minValue=1, maxValue=14))
        self.addParameter(num("K_MAX", "Most sub-areas k / 最大エリア数", num.Integer, 6, minValue=1, maxValue=14))
        self.addParameter(num("MIN_CORE", "Unreached core-share floor per sub-area (0–1, e.g. 0.5)", num.Double, 0.0,
                              minValue=0.0, maxValue=1.0))
        self.addParameter(num("SPILL_KM", "Spill distance L (km)", num.Double, 2.0, minValue=0.1, maxValue=20.0))
        self.addParameter(num("MIN_AREA_KM2", "Area floor per sub-area (km²)", num.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterField("ATTRIBUTES", "Columns to keep similar (e.g. FLOOD_M)",
                                                      parentLayerParameterName="INPUT",
                                                      type=QgsProcessingParameterField.Numeric,
                                                      allowMultiple=True, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers("RASTERS", "Hazard rasters (zonal mean per block)",
                                                               QgsProcessing.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterField("FOLLOW_OLD", "旧市町村 column to follow",
                                                      parentLayerParameterName="INPUT", optional=True))
        self.addParameter(QgsProcessingParameterBoolean("NEST", "Sub-areas must nest inside the 旧市町村", False))
        self.addParameter(num("OLD_PENALTY", "Penalty for crossing a 旧市町村 boundary", num.Double, 2.0, minValue=0.0))
        self.addParameter(num("COMPACTNESS", "Compactness weight (empty: the tool's default)", num.Double,
                              optional=True, minValue=0.0))
        self.addParameter(num("SEED", "Random seed", num.Integer, 0, minValue=0))
        self.addParameter(num("RESTARTS", "Spanning trees per k (empty: default)", num.Integer, optional=True,
                              minValue=1))
        self.addParameter(num("PICK", "Write the candidate with this k (empty: the best)", num.Integer,
                              optional=True, minValue=1, maxValue=14))
        self.define_outputs()
        self.addParameter(QgsProcessingParameterFileDestination(
            "CANDIDATES", "Candidates / 候補一覧 (CSV)", "CSV files (*.csv)", optional=True, createByDefault=True))

    def options(self, parameters, context) -> cmd.AutoOptions:
        ints = {k: self.parameterAsInt(parameters, k, context) for k in ("K_MIN", "K_MAX", "SEED")}
        rasters = tuple((safe_name(Path(lay.source()).stem, i), lay.source())
                        for i, lay in enumerate(self.parameterAsLayerList(parameters, "RASTERS", context)))
        opt = lambda k: (None if parameters.get(k) in (None, "") else self.parameterAsInt(parameters, k, context))
        return cmd.AutoOptions(
            k_min=ints["K_MIN"], k_max=ints["K_MAX"], seed=ints["SEED"],
            min_core=self.parameterAsDouble(parameters, "MIN_CORE", context),
            spill_km=self.parameterAsDouble(parameters, "SPILL_KM", context),
            min_area_km2=self.parameterAsDouble(parameters, "MIN_AREA_KM2", context),
            attributes=tuple(self.parameterAsFields(parameters, "ATTRIBUTES", context) or ()), rasters=rasters,
            follow_old=(self.parameterAsFields(parameters, "FOLLOW_OLD", context) or [None])[0],
            nest=self.parameterAsBool(parameters, "NEST", context),
            old_penalty=self.parameterAsDouble(parameters, "OLD_PENALTY", context),
            compactness=_number(parameters, "COMPACTNESS", self, context),
            restarts=opt("RESTARTS"), pick=opt("PICK"))

    def prepare_run(self, parameters, context, feedback, staging):
        try:
            options = self.options(parameters, context)
            options.k_text()
        except ValueError as exc:
            raise QgsProcessingException(f"{exc}\nfix: set the fewest k at or below the most") from None
        source = self.townblock_source(parameters, "INPUT", context, feedback)
        out, staged, csv_out, staged_csv = self.stage_outputs(parameters, context, staging)
        cand = self.parameterAsFileOutput(parameters, "CANDIDATES", context)
        staged_cand = str(staging.plan("candidates.csv", cand)) if cand else None
        args = cmd.plan_auto_args(source, staged, options, reading=self.reading(parameters, context),
                                  candidates_csv=staged_cand, export_csv=staged_csv)

        def finish(done):
            res = self.plan_results(out, csv_out)
            if cand:
                res["CANDIDATES"] = cand
                res["_sections"] = [reports.csv_table(staged_cand, "candidates / 候補")]
            return res

        return args, finish


class SpillAlgorithm(SubdivideAlgorithm):
    ID = "spill"
    NAME = "3 Spill — 電波のはみ出し（2〜3 km）"
    HELP = ("<p>Broadcast spill of a plan at the spill distances (the trial measured 1.6–3.3 km): unreached "
            "shares, core population, exposure between sub-areas, optional office points "
            "(<code>subdivide spill</code>). Writes spill_*.csv and spill.json into the folder.</p>"
            "<p>各細分化エリアの電波のはみ出し（未到達率・隣接エリアへの影響）を計算します。</p>")

    def define(self, config):
        self.addParameter(QgsProcessingParameterFile("PLAN", "Plan / 細分化案 (GeoPackage)", extension="gpkg"))
        self.addParameter(QgsProcessingParameterString("DISTANCES", "Spill distances L (km)", "2,2.5,3"))
        self.addParameter(QgsProcessingParameterNumber("TARGET", "Target unreached share (0–1)",
                                                       QgsProcessingParameterNumber.Double, 0.5, minValue=0.01,
                                                       maxValue=1.0))
        self.addParameter(QgsProcessingParameterFeatureSource("POINTS", "Points to check (e.g. offices / 庁舎)",
                                                              POINTS, optional=True))
        self.addParameter(QgsProcessingParameterField("POINT_NAME", "Name column of the points",
                                                      parentLayerParameterName="POINTS", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource("NEIGHBOURS", "Neighbouring municipalities (outlines)",
                                                              POLYGONS, optional=True))
        self.addParameter(QgsProcessingParameterEnum("ENCODING", "CSV encoding", list(SPILL_ENCODINGS),
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Spill report folder"))
        for name in cmd.SPILL_FILES:
            self.addOutput(QgsProcessingOutputString(name.split(".")[0].upper(), name))

    def prepare_run(self, parameters, context, feedback, staging):
        plan = _plan_file(self, parameters, context)
        folder = self.parameterAsString(parameters, "OUTPUT", context)
        staged = staging.plan_folder("spill", folder, cmd.SPILL_FILES)
        encoding = SPILL_ENCODINGS[self.parameterAsEnum(parameters, "ENCODING", context)]
        args = cmd.spill_args(plan, str(staged), distances=self.parameterAsString(parameters, "DISTANCES", context),
                              target=self.parameterAsDouble(parameters, "TARGET", context),
                              points=self.aux_source(parameters, "POINTS", context, feedback),
                              point_name=(self.parameterAsFields(parameters, "POINT_NAME", context) or [None])[0],
                              neighbours=self.aux_source(parameters, "NEIGHBOURS", context, feedback),
                              encoding=encoding)

        def finish(done):
            res = {"OUTPUT": folder, **{n.split(".")[0].upper(): os.path.join(folder, n) for n in cmd.SPILL_FILES}}
            res["_sections"] = [reports.csv_table(staged / n, n, encoding=encoding)
                                for n in cmd.SPILL_FILES if n.endswith(".csv") and (staged / n).exists()]
            return res

        return args, finish


class PackageAlgorithm(SubdivideAlgorithm):
    ID = "package"
    NAME = "4 Package — 携帯電話事業者への提出パッケージ"
    HELP = ("<p>The carriers' submission package (zip): town-block and sub-area Shapefiles (CP932), "
            "GeoPackage, area-code lists, spill summary, review map, manifest (<code>subdivide package</code>). "
            "Its sub-area and town-block layers are loaded styled.</p>"
            "<p>携帯電話事業者に提出するパッケージ（zip）を作ります。</p>")

    def define(self, config):
        self.addParameter(QgsProcessingParameterFile("PLAN", "Plan / 細分化案 (GeoPackage)", extension="gpkg"))
        self.addParameter(QgsProcessingParameterFile("PROFILE", "Carrier profile (TOML; empty: default)",
                                                     extension="toml", optional=True))
        self.addParameter(QgsProcessingParameterEnum("CSV_ENCODING", "List encoding", list(PACKAGE_ENCODINGS),
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean("SPILL", "Include the spill summary", True))
        self.addParameter(QgsProcessingParameterBoolean("MAP", "Include the review map", True))
        self.addParameter(QgsProcessingParameterBoolean("OFFLINE_MAP", "Review map opens offline", True))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Package (zip)", "Zip files (*.zip)"))
        for key, label in (("SUBAREAS", "sub-areas 細分化エリア"), ("TOWNBLOCKS", "town-blocks 町丁・字")):
            self.addOutput(QgsProcessingOutputVectorLayer(key, label, QgsProcessing.TypeVectorPolygon))

    def prepare_run(self, parameters, context, feedback, staging):
        plan = _plan_file(self, parameters, context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        if not out.lower().endswith(".zip"):
            out += ".zip"
        staged = staging.plan("package.zip", out)
        args = cmd.package_args(plan, str(staged), profile=_text(self, parameters, "PROFILE", context),
                                csv_encoding=PACKAGE_ENCODINGS[self.parameterAsEnum(parameters, "CSV_ENCODING", context)],
                                spill=self.parameterAsBool(parameters, "SPILL", context),
                                review_map=self.parameterAsBool(parameters, "MAP", context),
                                offline_map=self.parameterAsBool(parameters, "OFFLINE_MAP", context))
        return args, lambda done: {"OUTPUT": out, "SUBAREAS": cmd.vsizip(out, cmd.PACKAGE_GPKG, "subareas"),
                                   "TOWNBLOCKS": cmd.vsizip(out, cmd.PACKAGE_GPKG, "townblocks")}


class ValidateAlgorithm(SubdivideAlgorithm):
    ID = "validate"
    NAME = "5 Validate — パッケージの検証（事業者側）"
    HELP = ("<p>What a carrier runs on a package it receives (<code>subdivide validate</code>). STATUS is 0 when "
            "clean and 1 when the package has errors (the findings are in the log and the report).</p>"
            "<p>受け取ったパッケージを検証します（STATUS 0: 問題なし、1: エラーあり）。</p>")
    OK_STATUS = (0, 1)

    def define(self, config):
        self.addParameter(QgsProcessingParameterFile("PACKAGE", "Package (zip)", extension="zip"))
        self.addParameter(QgsProcessingParameterFile("PROFILE", "Carrier profile (TOML; empty: default)",
                                                     extension="toml", optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource("OUTLINE", "Municipal outline (gaps and overlaps)",
                                                              POLYGONS, optional=True))
        self.addParameter(QgsProcessingParameterString("SPILL_KM", "Spill distances (km; empty: the package's)",
                                                       optional=True))
        self.addParameter(QgsProcessingParameterNumber("TARGET_SHARE", "Unreached share target (empty: 0.5)",
                                                       QgsProcessingParameterNumber.Double, optional=True,
                                                       minValue=0.01, maxValue=1.0))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT_JSON", "Validation report (JSON)",
                                                                "JSON files (*.json)"))
        self.addOutput(QgsProcessingOutputNumber("STATUS", "status (0 clean, 1 errors)"))
        self.addOutput(QgsProcessingOutputString("VERDICT", "verdict"))

    def prepare_run(self, parameters, context, feedback, staging):
        package = self.parameterAsFile(parameters, "PACKAGE", context)
        json_out = self.parameterAsFileOutput(parameters, "OUTPUT_JSON", context)
        staged = staging.plan("validation.json", json_out)
        args = cmd.validate_args(package, str(staged), profile=_text(self, parameters, "PROFILE", context),
                                 outline=self.aux_source(parameters, "OUTLINE", context, feedback),
                                 spill_km=_text(self, parameters, "SPILL_KM", context),
                                 target_share=_number(parameters, "TARGET_SHARE", self, context))

        def finish(done):
            lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
            if done.returncode:
                feedback.reportError(lines[-1] if lines else "the package has errors", False)
            return {"STATUS": done.returncode, "VERDICT": lines[-1] if lines else "", "OUTPUT_JSON": json_out}

        return args, finish


class MapAlgorithm(SubdivideAlgorithm):
    ID = "map"
    NAME = "6 Map — 審議用地図（HTML）"
    HELP = ("<p>The council-review map of a plan: one interactive HTML file with sub-areas, town-blocks, "
            "spill layers and points (<code>subdivide map</code>).</p><p>審議用の地図（HTML）を作ります。</p>")

    def define(self, config):
        self.addParameter(QgsProcessingParameterFile("PLAN", "Plan / 細分化案 (GeoPackage)", extension="gpkg"))
        self.addParameter(QgsProcessingParameterEnum("BASEMAP", "Basemap (地理院タイル)", list(cmd.BASEMAPS),
                                                     defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean("OFFLINE", "Opens without internet (inline scripts)", False))
        self.addParameter(QgsProcessingParameterString("DISTANCES", "Spill distances L (km)", "2,2.5,3"))
        self.addParameter(QgsProcessingParameterFeatureSource("POINTS", "Points (e.g. offices / 庁舎)", POINTS,
                                                              optional=True))
        self.addParameter(QgsProcessingParameterField("POINT_NAME", "Name column of the points",
                                                      parentLayerParameterName="POINTS", optional=True))
        self.addParameter(QgsProcessingParameterString("TITLE", "Title / 見出し", optional=True))
        self.addParameter(QgsProcessingParameterString("NOTE", "Note / 注記", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination("OUTPUT", "Map (HTML)", "HTML files (*.html)"))

    def prepare_run(self, parameters, context, feedback, staging):
        plan = _plan_file(self, parameters, context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        staged = staging.plan("map.html", out)
        args = cmd.map_args(plan, str(staged), basemap=cmd.BASEMAPS[self.parameterAsEnum(parameters, "BASEMAP", context)],
                            offline=self.parameterAsBool(parameters, "OFFLINE", context),
                            distances=self.parameterAsString(parameters, "DISTANCES", context),
                            points=self.aux_source(parameters, "POINTS", context, feedback),
                            point_name=(self.parameterAsFields(parameters, "POINT_NAME", context) or [None])[0],
                            title=_text(self, parameters, "TITLE", context),
                            note=_text(self, parameters, "NOTE", context))
        return args, lambda done: {"OUTPUT": out}


ALGORITHMS = (InfoAlgorithm, PlanByAttributeAlgorithm, PlanAutoAlgorithm, SpillAlgorithm, PackageAlgorithm,
              ValidateAlgorithm, MapAlgorithm)
