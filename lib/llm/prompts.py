"""The candidate prompt pool for Paper III's natural-text geometry, and its sampling.

No corpus can be downloaded here, so the project authors its own pool: five domains of 200
prompts each (math: templated arithmetic, algebra and proof sentences; code: line prefixes
drawn from the Python standard library's own source; technical prose: prefixes of standard
library docstrings; narrative: templated fiction and dialogue; knowledge: cloze questions).
`build_pool` is deterministic (a fixed seed; the standard library of the running Python); its
output is committed as data/prompts/pool.json, and the chapter reads the committed file.

Sets follow the paper's stratification (Paper III §4.2): next-token-entropy quintiles of the
candidates, 15 prompts per quintile, by a fixed seed; plus an un-stratified random set and
length-matched sets.

Used by: 07_llm_geometry (L1-L5, L8); spec paper2_3.md §3.4.
"""
import importlib
import inspect
import json

import torch

from lib import paths

POOL_PATH = paths.DATA / "prompts" / "pool.json"
DOMAINS = ("math", "code", "prose", "narrative", "knowledge")
PER_DOMAIN = 200
STDLIB_MODULES = ("json.encoder", "textwrap", "csv", "heapq", "bisect", "fractions", "statistics", "shlex",
                  "glob", "fnmatch", "calendar", "difflib", "argparse", "random", "string", "pathlib",
                  "dataclasses", "functools", "collections", "configparser")

MATH = ("{a} + {b} =", "The sum of {a} and {b} is", "{a} times {b} equals", "If x + {a} = {c}, then x =",
        "The square root of {sq} is", "{c} divided by {b} is", "The next prime number after {a} is",
        "The derivative of x^{p} with respect to x is", "A triangle has angles of {t1} and {t2} degrees, so the third angle is",
        "Let n be an integer. If n is even, then n + {odd} is", "Solve for y: {a}y = {ab}. The answer is y =",
        "The area of a square with side {b} is", "Since {a} is greater than {b}, the difference {a} - {b} is",
        "Suppose, for contradiction, that there are only {p} primes. Then", "By induction on n, assume the claim holds for n = {p}; we show it for n =",
        "The integral of {p}x^{q} dx is", "The remainder when {c} is divided by {b} is", "log base 2 of {pow2} is")
PEOPLE = ("Maria", "Tom", "the old fisherman", "Aunt Lucy", "the captain", "Elena", "the young doctor", "Samuel",
          "the girl with the red scarf", "Mr. Okafor", "the baker", "Nina")
PLACES = ("the harbour", "the kitchen", "the forest", "the train station", "the empty classroom", "the market",
          "the top of the hill", "the library", "the garden", "the bridge")
NARRATIVE = ("When {c} reached {p}, the door was", "\"Where have you been?\" {c} asked, staring at",
             "The rain had not stopped for three days, and {c} was beginning to",
             "{c} opened the letter slowly. It was from", "Late that night, {c} heard a noise coming from",
             "Nobody in the village had ever seen {c} so", "As the sun rose over {p}, {c} finally understood that",
             "\"I told you not to go to {p},\" said {c}. \"Now we have to", "{c} put down the cup and said, \"",
             "It was the last time {c} would ever walk through {p}, and", "Years later, {c} would remember the day at {p} when",
             "{c} laughed for the first time since the", "The smell of bread drifted across {p} while {c}")
COUNTRIES = ("France", "Germany", "Italy", "Spain", "Portugal", "Japan", "China", "India", "Brazil", "Canada",
             "Australia", "Egypt", "Kenya", "Mexico", "Argentina", "Norway", "Sweden", "Finland", "Poland", "Greece",
             "Turkey", "Russia", "Peru", "Chile", "Ireland", "Austria", "Hungary", "Vietnam", "Thailand", "Nigeria")
ELEMENTS = ("gold", "silver", "iron", "sodium", "potassium", "oxygen", "hydrogen", "carbon", "helium", "copper",
            "lead", "mercury", "nitrogen", "calcium", "zinc")
BOOKS = (("Pride and Prejudice", "Jane Austen"), ("Moby-Dick", "Herman Melville"), ("War and Peace", "Leo Tolstoy"),
         ("Hamlet", "William Shakespeare"), ("Don Quixote", "Miguel de Cervantes"), ("1984", "George Orwell"),
         ("The Odyssey", "Homer"), ("Frankenstein", "Mary Shelley"), ("Ulysses", "James Joyce"),
         ("The Great Gatsby", "F. Scott Fitzgerald"))
FACTS = ("Water boils at sea level at a temperature of", "The largest planet in the solar system is",
         "The speed of light is about", "The chemical formula of water is", "The first person to walk on the Moon was",
         "The longest river in Africa is the", "Photosynthesis converts sunlight into", "The human heart has four",
         "The tallest mountain on Earth is", "The Pacific is the largest", "The author of the theory of relativity was",
         "A year on Earth lasts about", "The freezing point of water in Fahrenheit is", "DNA stands for",
         "The smallest prime number is", "The Great Wall is located in", "Honey is made by",
         "The Mona Lisa was painted by", "The currency of the United Kingdom is the", "An octagon has",
         "The planet closest to the Sun is", "The Roman numeral for ten is", "Light travels faster than",
         "The main gas in Earth's atmosphere is", "Spiders have eight", "The opposite of hot is",
         "A baby dog is called a", "The day after Monday is", "Shakespeare was born in the town of",
         "The boiling point of water in Fahrenheit is")
KNOWLEDGE = ("The capital of {country} is", "The chemical symbol for {element} is", "The novel {book} was written by",
             "{country} is a country in the continent of", "The official language of {country} is",
             "The currency of {country} is the", "The population of {country} is about",
             "The atomic number of {element} is", "The author of {book} is", "The largest city in {country} is")


def _choice(seq, gen):
    return seq[torch.randint(len(seq), (1,), generator=gen).item()]


def _int(lo, hi, gen):
    return torch.randint(lo, hi + 1, (1,), generator=gen).item()


def _math(gen) -> str:
    a, b, p = _int(2, 99, gen), _int(2, 30, gen), _int(2, 9, gen)
    return _choice(MATH, gen).format(a=a, b=b, c=a * b + _int(0, b - 1, gen), sq=_int(2, 30, gen) ** 2, p=p,
                                     q=p - 1, odd=2 * _int(1, 20, gen) + 1, t1=_int(20, 80, gen), t2=_int(20, 80, gen),
                                     ab=a * b, pow2=2 ** p)


def _narrative(gen) -> str:
    text = _choice(NARRATIVE, gen).format(c=_choice(PEOPLE, gen), p=_choice(PLACES, gen))
    return text[0].upper() + text[1:]


def _knowledge(gen) -> str:
    if torch.rand(1, generator=gen).item() < 0.25:
        return _choice(FACTS, gen)
    return _choice(KNOWLEDGE, gen).format(country=_choice(COUNTRIES, gen), element=_choice(ELEMENTS, gen),
                                          book=_choice(BOOKS, gen)[0])


def _prefix(text: str, gen, min_words: int = 3) -> str | None:
    """A prefix of `text` ending at a word boundary, dropping at least one word."""
    words = text.split(" ")
    if len(words) <= min_words:
        return None
    return " ".join(words[:_int(min_words, len(words) - 1, gen)])


def _stdlib_lines(kind: str) -> list[str]:
    out = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        if kind == "code":
            out += [ln.strip() for ln in inspect.getsource(module).splitlines()
                    if 25 <= len(ln.strip()) <= 90 and not ln.strip().startswith(("#", '"', "'"))]
        else:
            for _, obj in sorted(vars(module).items()):
                doc = inspect.getdoc(obj) if (inspect.isfunction(obj) or inspect.isclass(obj)) else None
                if doc and getattr(obj, "__module__", None) == module.__name__:
                    first = " ".join(doc.split("\n\n")[0].split())
                    if 40 <= len(first) <= 240:
                        out.append(first)
    return sorted(set(out))


def build_pool(seed: int = 0) -> list[dict]:
    """The candidate pool, PER_DOMAIN unique prompts per domain: [{"id", "domain", "text"}]."""
    gen = torch.Generator().manual_seed(seed)
    sources = {"code": _stdlib_lines("code"), "prose": _stdlib_lines("prose")}
    pool = []
    for domain in DOMAINS:
        seen, tries = set(), 0
        while len(seen) < PER_DOMAIN:
            tries += 1
            if tries > 100 * PER_DOMAIN:
                raise RuntimeError(f"cannot draw {PER_DOMAIN} distinct {domain} prompts")
            if domain in sources:
                text = _prefix(_choice(sources[domain], gen), gen)
            else:
                text = {"math": _math, "narrative": _narrative, "knowledge": _knowledge}[domain](gen)
            if text and text not in seen:
                seen.add(text)
                pool.append({"id": f"{domain}-{len(seen) - 1:03d}", "domain": domain, "text": text})
    return pool


def write_pool(pool: list[dict]) -> None:
    POOL_PATH.parent.mkdir(parents=True, exist_ok=True)
    POOL_PATH.write_text(json.dumps(pool, indent=1) + "\n")


def load_pool() -> list[dict]:
    return json.loads(POOL_PATH.read_text())


def stratified(candidates: torch.Tensor, entropy: torch.Tensor, per_quintile: int, generator: torch.Generator) -> torch.Tensor:
    """Paper III's sampling: split `candidates` (indices) into next-token-entropy quintiles and
    draw `per_quintile` from each, without replacement. Returns indices, quintile by quintile."""
    order = candidates[torch.argsort(entropy[candidates], stable=True)]
    picked = []
    for q in range(5):
        band = order[q * len(order) // 5:(q + 1) * len(order) // 5]
        if len(band) < per_quintile:
            raise ValueError(f"quintile {q} has {len(band)} candidates, fewer than {per_quintile}")
        picked.append(band[torch.randperm(len(band), generator=generator)[:per_quintile]])
    return torch.cat(picked)


def random_subset(candidates: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    return candidates[torch.randperm(len(candidates), generator=generator)[:n]]
