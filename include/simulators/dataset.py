"""Deterministic, vendor-neutral facts about Chinese AI interviews.

Everything comes from one ``random.Random(seed)``: the same arguments always give the same data,
whatever else the process does with the global random state or the clock. Vendor simulators turn
these facts into their own wire format (and add their own defects).
"""

from __future__ import annotations

import heapq
import random
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from itertools import combinations
from operator import mul
from statistics import NormalDist
from typing import TypeVar

try:
    from zoneinfo import ZoneInfo

    SHANGHAI = ZoneInfo("Asia/Shanghai")
except Exception:  # no tz database on the host; China has had no DST since 1991
    SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"
REGION_CODES = ("110101", "110105", "310115", "310104", "440305", "440106", "330106", "320102",
                "510107", "420106", "500103", "610113")

# (character, pinyin). Compound surnames keep names of 3-4 characters in the mix.
SURNAMES = (("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
            ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
            ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"),
            ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"), ("郑", "zheng"),
            ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("许", "xu"),
            ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"), ("欧阳", "ouyang"),
            ("司马", "sima"))
GIVEN_MALE = (("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
              ("勇", "yong"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
              ("浩", "hao"), ("宇", "yu"), ("鹏", "peng"), ("俊", "jun"), ("斌", "bin"),
              ("志", "zhi"), ("文", "wen"), ("博", "bo"), ("轩", "xuan"), ("晨", "chen"))
GIVEN_FEMALE = (("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
                ("艳", "yan"), ("婷", "ting"), ("雪", "xue"), ("慧", "hui"), ("颖", "ying"),
                ("琳", "lin"), ("欣", "xin"), ("梅", "mei"), ("玲", "ling"), ("佳", "jia"),
                ("怡", "yi"), ("萍", "ping"), ("倩", "qian"), ("悦", "yue"), ("雨", "yu"))
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "158", "159", "166", "173", "177", "180", "181",
                   "182", "185", "186", "187", "188", "189", "191", "199")
EMAIL_DOMAINS = ("qq.com", "163.com", "example.com")


@dataclass(frozen=True, slots=True)
class Position:
    code: str
    title: str
    department: str
    business_unit: str


POSITIONS = (
    Position("P-RD-001", "后端开发工程师", "研发中心", "智能制造事业部"),
    Position("P-RD-002", "前端开发工程师", "研发中心", "智能制造事业部"),
    Position("P-RD-003", "嵌入式软件工程师", "研发中心", "智能制造事业部"),
    Position("P-RD-004", "算法工程师", "研发中心", "数字科技事业部"),
    Position("P-QA-001", "测试工程师", "质量管理部", "智能制造事业部"),
    Position("P-MF-001", "工艺工程师", "生产制造部", "智能制造事业部"),
    Position("P-SC-001", "供应链计划专员", "供应链管理部", "智能制造事业部"),
    Position("P-SA-001", "销售代表", "销售部", "零售事业部"),
    Position("P-SA-002", "大客户经理", "销售部", "零售事业部"),
    Position("P-MK-001", "市场专员", "市场部", "零售事业部"),
    Position("P-CS-001", "客户服务专员", "客户服务中心", "零售事业部"),
    Position("P-HR-001", "招聘专员", "人力资源部", "集团职能中心"),
    Position("P-FN-001", "财务分析师", "财务部", "集团职能中心"),
)

# code -> (Chinese name, comments for high / middle / low scores)
DIMENSIONS: dict[str, tuple[str, tuple[str, str, str]]] = {
    "logic": ("逻辑思维", ("思路清晰，论证层次分明", "回答基本有条理，偶有跳跃", "论述缺乏条理，因果关系不清")),
    "communication": ("沟通表达", ("表达流畅，重点突出", "表达基本清楚，略显拘谨", "表达不够清晰，需多次追问")),
    "expertise": ("专业知识", ("专业基础扎实，案例具体", "掌握核心知识，深度一般", "专业知识储备不足")),
    "teamwork": ("团队协作", ("乐于协作，能主动推动团队目标", "具备基本协作意识", "更倾向独立工作，协作经历较少")),
    "resilience": ("抗压能力", ("面对追问从容冷静", "压力下表现基本稳定", "压力情境下明显紧张")),
    "learning": ("学习能力", ("主动学习新知识，迁移能力强", "能够按要求学习新技能", "学习主动性有待加强")),
    "stability": ("情绪稳定性", ("情绪平稳，自我调节能力好", "情绪总体平稳", "情绪波动较明显")),
}

_OPENINGS = ("候选人整体表现优秀，", "候选人综合素质较好，", "候选人整体表现一般，", "候选人整体表现欠佳，")
_CLOSINGS = ("建议进入下一轮面试。", "建议结合复试进一步考察。", "暂不建议进入下一轮。")

NOV_2026 = datetime(2026, 11, 1, tzinfo=SHANGHAI)


def id_check_char(first17: str) -> str:
    """GB 11643-1999 check character (ISO 7064 MOD 11-2)."""
    return ID_CHECK_CHARS[sum(map(mul, map(int, first17), ID_WEIGHTS)) % 11]


def _fast_check_char(first17: str) -> str:
    # Same result as id_check_char, ~10x faster: the weights are 2**(17-i) mod 11 and 13 == 2
    # (mod 11), so the weighted sum is 2 * (the digits read in base 13) mod 11.
    return ID_CHECK_CHARS[2 * int(first17, 13) % 11]


def id_is_valid(value: str) -> bool:
    return len(value) == 18 and value[:17].isdigit() and id_check_char(value[:17]) == value[17]


def verdict(score: float) -> tuple[str, str]:
    """(recommendation, result) for an overall score: >= 70 pass, 60-70 pending, < 60 fail."""
    if score >= 70:
        return "recommend", "pass"
    if score >= 60:
        return "hold", "pending"
    return "reject", "fail"


@dataclass(slots=True)
class Candidate:
    seq: int                 # 1-based; vendors format it into their own id
    candidate_id: str
    name: str
    gender: str              # "M" | "F", consistent with the ID's 17th digit
    birth_date: date
    id_card: str
    mobile: str              # 11 digits, canonical
    mobile_written: str      # as typed: plain, "+86 138 1234 5678" or "138-1234-5678"
    email: str


@dataclass(slots=True)
class DimensionScore:
    code: str
    name: str
    score: float
    comment: str


@dataclass(slots=True)
class Evaluation:
    total_score: float        # 0-100, one decimal
    dimensions: tuple[DimensionScore, ...]
    comment: str              # AI comment in Chinese
    recommendation: str       # recommend | hold | reject
    result: str               # pass | pending | fail


@dataclass(slots=True)
class InterviewResult:
    seq: int
    result_id: str
    candidate: Candidate
    position: Position
    started_at: datetime      # Asia/Shanghai
    finished_at: datetime     # Asia/Shanghai
    evaluation: Evaluation
    video_url: str
    video_expires_at: datetime  # Asia/Shanghai, finished_at + 30 days
    report_url: str
    updated_at: datetime      # UTC
    version: int = 1


class InterviewDataset:
    """Generates interview results one by one; ``results(count)`` is the whole deterministic stream.

    About 5% of candidates come back for a second interview (another position), so a candidate id
    can appear in two results.
    """

    def __init__(self, seed: int = 7, *, result_prefix: str = "R-", candidate_prefix: str = "C-",
                 video_base: str = "https://video.aiview.example/v/",
                 report_base: str = "https://report.aiview.example/r/",
                 retake_rate: float = 0.05) -> None:
        self.seed = seed
        self.result_prefix = result_prefix
        self.candidate_prefix = candidate_prefix
        self.video_base = video_base
        self.report_base = report_base
        self.retake_rate = retake_rate

    def results(self, count: int) -> Iterator[InterviewResult]:
        rng = random.Random(self.seed)
        # (due result index, candidate seq, candidate, first result): a retake comes a little later
        pending: list[tuple[int, int, Candidate, InterviewResult]] = []
        n_candidates = 0
        for i in range(count):
            if pending and pending[0][0] <= i:
                _, _, cand, first = heapq.heappop(pending)
                yield self._result(rng, i + 1, cand, first)
                continue
            n_candidates += 1
            cand = self._candidate(rng, n_candidates)
            res = self._result(rng, i + 1, cand, None)
            if rng.random() < self.retake_rate:
                heapq.heappush(pending, (i + 1 + _below(rng, 300), cand.seq, cand, res))
            yield res

    # Hot path (100k results in a few seconds): every draw is one rng.random() call (C code)
    # indexing a tuple; randint/choice/gauss are pure Python and several times slower.
    def _candidate(self, rng: random.Random, seq: int) -> Candidate:
        r = rng.random
        male = r() < 0.5
        surname, surname_py = SURNAMES[int(r() * len(SURNAMES))]
        pool = GIVEN_MALE if male else GIVEN_FEMALE
        n = len(pool)
        if r() < 0.45:
            g = pool[int(r() * n)]
            name, given_py = surname + g[0], g[1]
        else:
            g1, g2 = pool[int(r() * n)], pool[int(r() * n)]
            name, given_py = surname + g1[0] + g2[0], g1[1] + g2[1]
        birth = date.fromordinal(_BIRTH_FIRST + int(r() * _BIRTH_SPAN))
        # The 17th digit is odd for men and even for women.
        order = int(r() * 100) * 10 + 2 * int(r() * 5) + (1 if male else 0)
        first17 = (f"{REGION_CODES[int(r() * len(REGION_CODES))]}"
                   f"{birth.year}{birth.month:02d}{birth.day:02d}{order:03d}")
        mobile = f"{MOBILE_PREFIXES[int(r() * len(MOBILE_PREFIXES))]}{int(r() * 10**8):08d}"
        return Candidate(seq, f"{self.candidate_prefix}{seq:06d}", name, "M" if male else "F",
                         birth, first17 + _fast_check_char(first17), mobile,
                         _written_mobile(rng, mobile), _email(rng, surname_py, given_py, birth))

    def _result(self, rng: random.Random, seq: int, cand: Candidate,
                first: InterviewResult | None) -> InterviewResult:
        r = rng.random
        if first is None:
            position = POSITIONS[int(r() * len(POSITIONS))]
            # AI interviews are taken between 08:00 and 21:00 local time, any day of November.
            started = NOV_2026 + _DAYS[int(r() * 30)] + _MINUTES[480 + int(r() * 780)]
        else:
            position = _pick(rng, [p for p in POSITIONS if p is not first.position])
            started = _retake_start(rng, first.finished_at)
        finished = started + _MINUTES[15 + int(r() * 31)]
        updated = (finished + _MINUTES[2 + int(r() * 9)]).astimezone(timezone.utc)

        ability = 72.0 + 12.0 * _BELL[int(r() * 1024)]
        scores: dict[str, float] = {}
        sets = _DIMENSION_SETS[int(r() * 3)]
        for code in sets[int(r() * len(sets))]:
            x = ability + 8.0 * _BELL[int(r() * 1024)]
            scores[code] = round(100.0 if x > 100.0 else 0.0 if x < 0.0 else x, 1)
        total = _clamp(sum(scores.values()) / len(scores) + 2.0 * _BELL[int(r() * 1024)])
        result_id = f"{self.result_prefix}{seq:08d}"
        return InterviewResult(
            seq=seq, result_id=result_id, candidate=cand, position=position,
            started_at=started, finished_at=finished, evaluation=evaluation(total, scores),
            video_url=f"{self.video_base}{rng.getrandbits(96):024x}",
            video_expires_at=finished + _DAYS[30],
            report_url=f"{self.report_base}{result_id}", updated_at=updated,
        )


def evaluation(total: float, scores: dict[str, float]) -> Evaluation:
    """Comments, verdict and AI comment consistent with the given scores."""
    dims = tuple([DimensionScore(code, _DIM_NAMES[code], s,
                                 _DIM_COMMENTS[code][0 if s >= 80 else 1 if s >= 60 else 2])
                  for code, s in scores.items()])
    recommendation, result = verdict(total)
    return Evaluation(total, dims, _ai_comment(total, dims), recommendation, result)


def rescored_evaluation(total: float, scores: dict[str, float], rng: random.Random) -> Evaluation:
    """A re-score: every score moved by the same delta (3-15 points), the total changed for sure."""
    while True:
        delta = round(rng.choice((-1, 1)) * rng.uniform(3, 15), 1)
        new_total = _clamp(total + delta)
        if new_total != total:
            break
    return evaluation(new_total, {code: _clamp(s + delta) for code, s in scores.items()})


def rescored(res: InterviewResult, rng: random.Random, updated_at: datetime) -> InterviewResult:
    """A later version of ``res`` with a changed, internally consistent evaluation."""
    ev = res.evaluation
    new = rescored_evaluation(ev.total_score, {d.code: d.score for d in ev.dimensions}, rng)
    return replace(res, evaluation=new, updated_at=updated_at.astimezone(timezone.utc),
                   version=res.version + 1)


_T = TypeVar("_T")
# Every 4-, 5- and 6-dimension subset of the pool, grouped by size: a pick is one random() call.
_DIMENSION_SETS = [list(combinations(DIMENSIONS, k)) for k in (4, 5, 6)]
_DIM_NAMES = {code: name for code, (name, _) in DIMENSIONS.items()}
_DIM_COMMENTS = {code: comments for code, (_, comments) in DIMENSIONS.items()}
_MINUTES = tuple(timedelta(minutes=m) for m in range(24 * 60))
_DAYS = tuple(timedelta(days=d) for d in range(31))
# 1024 quantiles of a standard normal: one table lookup per bell-shaped draw.
_BELL = tuple(NormalDist().inv_cdf((k + 0.5) / 1024) for k in range(1024))
_BIRTH_FIRST = date(1980, 12, 1).toordinal()   # ages 20-45 throughout November 2026
_BIRTH_SPAN = date(2006, 11, 1).toordinal() - _BIRTH_FIRST + 1


def _below(rng: random.Random, n: int) -> int:
    return int(rng.random() * n)


def _pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    return seq[int(rng.random() * len(seq))]


def _ai_comment(total: float, dims: tuple[DimensionScore, ...]) -> str:
    ranked = sorted(dims, key=lambda d: (-d.score, d.code))
    opening = _OPENINGS[0 if total >= 85 else 1 if total >= 70 else 2 if total >= 60 else 3]
    closing = _CLOSINGS[0 if total >= 70 else 1 if total >= 60 else 2]
    return (f"{opening}{ranked[0].name}和{ranked[1].name}方面表现突出，"
            f"{ranked[-1].name}方面仍有提升空间。{closing}")


def _clamp(score: float) -> float:
    return round(min(100.0, max(0.0, score)), 1)


def _retake_start(rng: random.Random, first_finished: datetime) -> datetime:
    day = first_finished.replace(hour=0, minute=0) + timedelta(days=1 + _below(rng, 5))
    start = day + timedelta(minutes=8 * 60 + _below(rng, 13 * 60))
    if start.month != 11:  # keep every interview within November: same-day second session
        start = first_finished + timedelta(minutes=30 + _below(rng, 61))
    return start


def _written_mobile(rng: random.Random, mobile: str) -> str:
    style = rng.random()
    if style < 0.5:
        return mobile
    if style < 0.8:
        return f"+86 {mobile[:3]} {mobile[3:7]} {mobile[7:]}"
    return f"{mobile[:3]}-{mobile[3:7]}-{mobile[7:]}"


def _email(rng: random.Random, surname_py: str, given_py: str, birth: date) -> str:
    style = rng.random()
    if style < 0.35:
        local = f"{surname_py}.{given_py}"
    elif style < 0.55:
        local = f"{given_py}{surname_py}{birth.year % 100:02d}"
    elif style < 0.7:
        local = f"{surname_py.capitalize()}.{given_py.capitalize()}"
    elif style < 0.85:
        local = f"{surname_py}{given_py}{1 + _below(rng, 999)}"
    else:
        local = "".join(_pick(rng, string.ascii_lowercase) for _ in range(6 + _below(rng, 5)))
    if style < 0.85 and rng.random() < 0.1:
        local = local.upper()  # some candidates type their address in capitals
    return f"{local}@{_pick(rng, EMAIL_DOMAINS)}"
