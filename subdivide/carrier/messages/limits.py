"""What subdivided delivery can and cannot promise (ROAMING.md; MESSAGES.md §7, §10), and
the spill figures stated as "people outside the sub-area who will also receive it".

:data:`DELIVERY_LIMITS` is the short text for the council report and the message sheet
(Japanese and English, each with its source); :func:`spill_reach` turns a spill report
into one row per sub-area and distance.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    topic: str
    ja: str
    en: str
    source: str


DELIVERY_LIMITS: tuple[Limit, ...] = (
    Limit("not stored",
          "緊急速報メールは蓄積されません。圏外・電波の弱い場所・通話中・機内モード・海外ローミング中・解約/休止中の端末には届かず、後から届くこともありません。",
          "Messages are not stored: a handset out of range, in a weak-signal spot, in a call, in airplane mode, on "
          "international roaming or on a cancelled/suspended contract does not receive them, now or later "
          "(VoLTE handsets do receive during packet sessions).",
          "MESSAGES.md §7 (G§12 p.26)"),
    Limit("spill",
          "携帯電話の基地局の電波は行政界に沿わないため、細分化区域の外(実証実験では境界から約1.6〜3.3 km)にも届きます。"
          "区域内でも隣の区域のメールを受け取る人がいます。",
          "Cells do not follow boundaries: a sub-area's message also reaches people outside it (1.6–3.3 km past "
          "the boundary in the 2017 trial), and people inside receive some of the neighbours' messages.",
          "MESSAGES.md §10 (G§12; S §2, §5)"),
    Limit("per carrier",
          "細分化区域のエリアは携帯電話会社ごとに設定・管理され、はみ出し方も会社ごとに異なります。運用開始前の区域には送信できません。",
          "Each carrier sets up and manages the sub-area footprint separately, so spill differs by carrier; a "
          "sub-area cannot be used before its operation starts.",
          "MESSAGES.md §10 (S §6, App. A)"),
    Limit("JAPAN roaming",
          "通信障害時の事業者間ローミング(JAPANローミング)中は、救済事業者の網の放送が届きます。発動までに数時間かかることがあり、その間のメールは届きません。",
          "During JAPAN roaming a handset receives the host carrier's broadcast. Activation can take hours "
          "(printed step maxima add up to about 4.5 h); messages sent before it are lost for the affected "
          "carrier's users.",
          "ROAMING.md §3.2, §7"),
    Limit("handset × network",
          "報告書が挙げる受信できない組合せ: KDDI・ソフトバンク・楽天モバイルのAndroid端末がドコモ網にローミング中"
          "(ドコモの標準ID配信開始まで)、一部のKDDI Android端末(災害・避難情報は2023年上期以降の機種かつ5G SA対応SIMのみ鳴動)。"
          "iOS 18.5以降は全組合せで受信を確認。iOS 18.5未満、緊急通報のみローミング(「圏外」表示)中の受信は不明です。",
          "Combinations the reports name as not receiving 災害・避難情報: KDDI/SoftBank/Rakuten Android handsets on "
          "docomo's network (until docomo's standard-ID broadcast is live); some KDDI Android handsets on any host "
          "(only models from 2023 H1 with a 5G SA SIM sound). iOS 18.5 or later: confirmed for all combinations. "
          "iOS below 18.5 and emergency-only roaming (shown as 「圏外」): unknown.",
          "ROAMING.md §5.1–5.2"),
    Limit("other channels",
          "これらの人には、防災行政無線・ホームページ・SNS・テレビ・ラジオ・00000JAPAN などでも伝えてください。",
          "Reach these people through other channels too: 防災行政無線, the website, SNS, TV, radio, 00000JAPAN "
          "Wi-Fi.",
          "ROAMING.md §7.3 (R1; G§9)"),
)


def limits_records() -> list[dict]:
    return [{"topic": x.topic, "ja": x.ja, "en": x.en, "source": x.source} for x in DELIVERY_LIMITS]


def spill_reach(report) -> "pd.DataFrame":  # noqa: F821
    """Per sub-area × distance L: people outside the sub-area who will also receive its
    messages (other sub-areas of the municipality; neighbouring municipalities when the
    spill report has them), from a :class:`subdivide.analysis.spill.SpillReport`
    (town-block population)."""
    import pandas as pd

    t = report.totals
    t = t[t["population_source"] == "townblocks"]
    ex = report.exposure[report.exposure["population_source"] == "townblocks"]
    rows = []
    for r in t.itertuples(index=False):
        e = ex[(ex["distance_km"] == r.distance_km) & (ex["from_subarea"] == r.subarea)]
        names = "、".join(f"{n}({round(p):,}人)" for n, p in zip(e["to_name"], e["population"]) if round(p) > 0)
        muni_pop = getattr(r, "municipalities_population", float("nan"))
        rows.append({"subarea": int(r.subarea), "distance_km": float(r.distance_km),
                     "population": int(r.population),
                     "also_receive_other_subareas": int(round(r.out_population)),
                     "also_receive_neighbour_municipalities": (None if pd.isna(muni_pop) else int(round(muni_pop))),
                     "reached_subareas": names})
    return pd.DataFrame(rows)


def reach_sentence(subarea_name: str, distance_km: float, others: int, neighbours: int | None) -> str:
    """「大迫地域へのメールは、区域外の約2,073人にも届きます …」 from numbers; the name is data.
    Without neighbouring municipalities' figures the sentence says they are not counted."""
    if neighbours is None:
        return (f"{subarea_name}へのメールは、区域外の約{others:,}人にも届きます"
                f"(はみ出し{distance_km:g} kmの場合。市町村内の他の区域のみ、近隣市町村は含まず)")
    return (f"{subarea_name}へのメールは、区域外の約{others + neighbours:,}人にも届きます"
            f"(はみ出し{distance_km:g} kmの場合。うち近隣市町村 約{neighbours:,}人)")
