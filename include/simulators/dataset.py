"""Deterministic, vendor-neutral facts about Chinese AI interviews.

Everything comes from one ``random.Random(seed)``: the same arguments always give the same data,
whatever else the process does with the global random state or the clock. Vendor simulators turn
these facts into their own wire format (and add their own defects).
"""

from __future__ import annotations

import heapq
import random
import string
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

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
    return ID_CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS)) % 11]


def id_is_valid(value: str) -> bool:
    return len(value) == 18 and value[:17].isdigit() and id_check_char(value[:17]) == value[17]


def verdict(score: float) -> tuple[str, str]:
    """(recommendation, result) for an overall score: >= 70 pass, 60-70 pending, < 60 fail."""
    if score >= 70:
        return "recommend", "pass"
    if score >= 60:
        return "hold", "pending"
    return "reject", "fail"


@dataclass(frozen=True, slots=True)
class Candidate:
    seq: int                 # 1-based; vendors format it into their own id
    candidate_id: str
    name: str
    gender: str              # "M" | "F", consistent with the ID's 17th digit
    birth_date: date
    id_card: str
    mobile: str              # 11 digits, canonical
    mobile_written: str      # as a candidate typed it: plain, "+86 138 1234 5678" or "138-1234-5678"
    email: str


@dataclass(frozen=True, slots=True)
class DimensionScore:
    code: str
    name: str
    score: float
    comment: str


@dataclass(frozen=True, slots=True)
class InterviewResult:
    seq: int
    result_id: str
    candidate: Candidate
    position: Position
    started_at: datetime      # Asia/Shanghai
    finished_at: datetime     # Asia/Shanghai
    total_score: float
    dimensions: tuple[DimensionScore, ...]
    comment: str
    recommendation: str
    result: str
    video_url: str
    video_expires_at: datetime  # Asia/Shanghai, finished_at + 30 days
    report_url: str
    updated_at: datetime      # UTC
    version: int = 1


class InterviewDataset:
    """Generates interview results one by one; ``results()`` is the whole deterministic stream.

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

    def results(self, count: int):
        rng = random.Random(self.seed)
        # (due result index, candidate seq, candidate, first result): retakes come a little later
        pending: list[tuple[int, int, Candidate, InterviewResult]] = []
        n_candidates = 0
        for i in range(count):
            if pending and pending[0][0] <= i:
                _, _, cand, first = heapq.heappop(pending)
                yield self._result(rng, i + 1, cand, first)
                continue
            n_candidates += 1
            cand = self.candidate(rng, n_candidates)
            res = self._result(rng, i + 1, cand, None)
            if rng.random() < self.retake_rate:
                heapq.heappush(pending, (i + rng.randint(1, 300), cand.seq, cand, res))
            yield res

    # -- candidates -------------------------------------------------------------------------
    def candidate(self, rng: random.Random, seq: int) -> Candidate:
        gender = "M" if rng.random() < 0.5 else "F"
        surname, surname_py = rng.choice(SURNAMES)
        pool = GIVEN_MALE if gender == "M" else GIVEN_FEMALE
        given = [rng.choice(pool) for _ in range(1 if rng.random() < 0.45 else 2)]
        name = surname + "".join(c for c, _ in given)
        given_py = "".join(p for _, p in given)
        # Ages 20-45 throughout November 2026.
        birth = date.fromordinal(rng.randint(date(1980, 12, 1).toordinal(),
                                             date(2006, 11, 1).toordinal()))
        order = rng.randint(0, 99) * 10 + rng.randrange(1 if gender == "M" else 0, 10, 2)
        first17 = f"{rng.choice(REGION_CODES)}{birth:%Y%m%d}{order:03d}"
        mobile = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        return Candidate(seq, f"{self.candidate_prefix}{seq:06d}", name, gender, birth,
                         first17 + id_check_char(first17), mobile, _written_mobile(rng, mobile),
                         _email(rng, surname_py, given_py, birth))

    # -- results ----------------------------------------------------------------------------
    def _result(self, rng: random.Random, seq: int, cand: Candidate,
                first: InterviewResult | None) -> InterviewResult:
        if first is None:
            position = rng.choice(POSITIONS)
            started = _random_start(rng)
        else:
            position = rng.choice([p for p in POSITIONS if p is not first.position])
            started = _retake_start(rng, first.finished_at)
        finished = started + timedelta(minutes=rng.randint(15, 45))
        updated = (finished + timedelta(minutes=rng.randint(2, 10))).astimezone(timezone.utc)

        ability = rng.gauss(72, 12)
        codes = rng.sample(list(DIMENSIONS), rng.randint(4, 6))
        scores = [_clamp(ability + rng.gauss(0, 8)) for _ in codes]
        total = _clamp(sum(scores) / len(scores) + rng.gauss(0, 2))
        result_id = f"{self.result_prefix}{seq:08d}"
        token = f"{rng.getrandbits(96):024x}"
        return _scored(InterviewResult(
            seq=seq, result_id=result_id, candidate=cand, position=position,
            started_at=started, finished_at=finished, total_score=0.0, dimensions=(),
            comment="", recommendation="", result="",
            video_url=f"{self.video_base}{token}",
            video_expires_at=finished + timedelta(days=30),
            report_url=f"{self.report_base}{result_id}", updated_at=updated,
        ), dict(zip(codes, scores)), total)


def rescored(res: InterviewResult, rng: random.Random, updated_at: datetime) -> InterviewResult:
    """A later version of ``res``: every score moved by the same non-zero delta, verdict and
    comment recomputed so the new version is internally consistent."""
    total = res.total_score
    while True:
        delta = round(rng.choice((-1, 1)) * rng.uniform(3, 15), 1)
        new_total = _clamp(res.total_score + delta)
        if new_total != total:
            break
    scores = {d.code: _clamp(d.score + delta) for d in res.dimensions}
    return _scored(replace(res, updated_at=updated_at.astimezone(timezone.utc),
                           version=res.version + 1), scores, new_total)


def _scored(res: InterviewResult, scores: dict[str, float], total: float) -> InterviewResult:
    dims = tuple(DimensionScore(code, DIMENSIONS[code][0], s, DIMENSIONS[code][1][_band(s)])
                 for code, s in scores.items())
    recommendation, result = verdict(total)
    return replace(res, total_score=total, dimensions=dims, comment=_ai_comment(total, dims),
                   recommendation=recommendation, result=result)


def _band(score: float) -> int:
    return 0 if score >= 80 else 1 if score >= 60 else 2


def _ai_comment(total: float, dims: tuple[DimensionScore, ...]) -> str:
    ranked = sorted(dims, key=lambda d: (-d.score, d.code))
    opening = _OPENINGS[0 if total >= 85 else 1 if total >= 70 else 2 if total >= 60 else 3]
    closing = _CLOSINGS[0 if total >= 70 else 1 if total >= 60 else 2]
    return (f"{opening}{ranked[0].name}和{ranked[1].name}方面表现突出，"
            f"{ranked[-1].name}方面仍有提升空间。{closing}")


def _clamp(score: float) -> float:
    return round(min(100.0, max(0.0, score)), 1)


def _random_start(rng: random.Random) -> datetime:
    # Candidates take AI interviews between 08:00 and 21:00 local time, any day of November.
    return NOV_2026 + timedelta(days=rng.randrange(30), minutes=8 * 60 + rng.randrange(13 * 60))


def _retake_start(rng: random.Random, first_finished: datetime) -> datetime:
    day = first_finished.replace(hour=0, minute=0) + timedelta(days=rng.randint(1, 5))
    start = day + timedelta(minutes=8 * 60 + rng.randrange(13 * 60))
    if start.month != 11:  # keep every interview within November: same-day second session
        start = first_finished + timedelta(minutes=rng.randint(30, 90))
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
        local = f"{given_py}{surname_py}{birth:%y}"
    elif style < 0.7:
        local = f"{surname_py.capitalize()}.{given_py.capitalize()}"  # some vendors keep case
    elif style < 0.85:
        local = f"{surname_py}{given_py}{rng.randint(1, 999)}"
    else:
        local = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(6, 10)))
    if style < 0.85 and rng.random() < 0.1:
        local = local.upper()
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"
