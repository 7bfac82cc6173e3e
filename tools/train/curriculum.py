"""Short warm-up samples that teach the retrieval mechanisms the six tasks need, before the long ones.

The study's prompts are 2,048 tokens and more, and most of their tokens carry no signal: a random
key-value haystack, filler sentences. A model trained on them alone learned the answer format but
never the jump from a key to its value (tiny-tasks-4k's first card: NIAH 0.00, VT 0.00). These
samples keep each task's surface (the same sentences, questions and `<answer>` lines) but shrink
the instructions to one line and the context to a few hundred characters, so that most tokens of a
batch sit in answers that need the lookup: key -> value (NIAH), value -> variable -> variable (VT),
chapter -> location / character / item and item -> the item bought before it (the story tasks),
and under them all, finding an earlier copy of a string and continuing it (plain repeats) or
returning what came before it (reverse lookups: VT's names stand before the value or name they
are assigned, so its answers copy backwards; each answer restates the value it looks up, as the
VT completions of train.py do).

Writes JSON lines {"task", "prompt", "completion"} as the app's task CLI does; seeded.
"""

import argparse
import json
import random
import re
from pathlib import Path

KV_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
STORY_DATA = "story.ts"  # src/tasks/data/story.ts, copied beside this file by pack.sh
FILLER = [
    "The grass is green.", "The sky is blue.", "The river runs to the sea.", "The bell rings at noon.",
    "Clouds drift over the hills.", "The road is long and quiet.", "The moon rises after dusk.",
    "A dog sleeps by the door.", "The clock ticks on the wall.", "Rain taps on the window.",
]


def story_lists(path: Path) -> dict:
    """The app's story data: its comma-separated vocabularies (`NAME = list(`...`)`) and its
    sentence templates (`NAME = ['...', ...]`), so warm-up chapters read like the task's."""
    text = path.read_text()
    lists = {}
    for name, body in re.findall(r"export const (\w+): readonly string\[\] = list\(`([^`]*)`\)", text):
        lists[name] = [w.strip() for w in body.split(",") if w.strip()]
    for name, body in re.findall(r"export const (\w+): readonly string\[\] = \[(.*?)\];", text, re.S):
        lists[name] = [json.loads(f'"{t}"') if q == '"' else t.replace("\\'", "'")
                       for q, t in re.findall(r"""(['"])((?:\\.|(?!\1).)*)\1,?""", body)]
    return lists


def prompt(intro: str, tag: str, question: str, context: str) -> str:
    return (f"{intro}\n\n<{tag}>\n{question}\n</{tag}>\n\n<context>\n{context}\n</context>\n\n"
            f"<{tag}_repeated>\n{question}\n</{tag}_repeated>\n\nAnswer inside <answer> tags.")


def distinct_names(rng: random.Random, count: int) -> list:
    """`count` different five-letter uppercase names, in the order drawn (a set's order changes with
    Python's hash seed, and the samples must not)."""
    names = []
    while len(names) < count:
        name = "".join(rng.choices(UPPER, k=5))
        if name not in names:
            names.append(name)
    return names


def kv_string(rng: random.Random, groups: int) -> str:
    return "-".join("".join(rng.choices(KV_ALPHABET, k=8)) for _ in range(groups))


def copy(rng: random.Random) -> dict:
    """Random keys, then the same keys again, in order or shuffled: every character of the second
    list after a key's first one is predictable only by finding that key earlier (an induction
    head), the circuit that the lookups of the other samples are built on."""
    if rng.random() < 0.5:
        keys = [kv_string(rng, rng.choice([1, 2, 4])) for _ in range(rng.randint(2, 12))]
    else:  # VT's names: uppercase letters are in no other lookup, so their matching is learned here
        keys = ["".join(rng.choices(UPPER, k=5)) for _ in range(rng.randint(2, 12))]
    again = rng.sample(keys, len(keys)) if rng.random() < 0.5 else keys
    return {"task": "warmup_copy", "prompt": "Repeat the keys.\n" + "\n".join(keys) + "\nAgain:\n",
            "completion": "\n".join(again)}


def reverse(rng: random.Random) -> dict:
    """Names bound to values, then values asked for: each answer is the name written before its
    value, the backward copy of VT's every hop (find "= VAR X." and return the name before it)."""
    names = distinct_names(rng, rng.randint(2, 10))
    count = len(names)
    numeric = rng.random() < 1 / 3  # VT's later hops look names up, its first one a number
    values = ([str(v) for v in rng.sample(range(10000, 100000), count)] if numeric
              else ["VAR " + "".join(rng.choices(UPPER, k=5)) for _ in range(count)])
    lines = [f"VAR {n} = {v}." for n, v in zip(names, values)]
    asked = rng.sample(range(count), rng.randint(1, min(3, count)))
    question = "Which variables are assigned " + ", ".join(values[i] for i in asked) + "?"
    # Each name follows the value it answers, as train.py's VT completions do.
    answer = " ".join(f"{values[i].removeprefix('VAR ')} {names[i]}" for i in asked)
    return {"task": "warmup_reverse_" + ("numbers" if numeric else "names"),
            "prompt": prompt("Name the variable of each value.", "question", question, " ".join(lines)),
            "completion": "<answer>\n" + answer + "\n</answer>"}


def niah(rng: random.Random) -> dict:
    groups = rng.choice([1, 2, 4, 4, 4])
    used = set()

    def fresh() -> str:
        while True:
            s = kv_string(rng, groups)
            if s not in used:
                used.add(s)
                return s

    pairs = [(fresh(), fresh()) for _ in range(rng.randint(4, 16))]
    asked = rng.sample(pairs, rng.randint(1, 4))
    context = " ".join(f"The value for key {k} is: {v}." for k, v in pairs)
    question = f"Extract the values for the following keys: {', '.join(k for k, _ in asked)}"
    lines = [f"{i + 1}. The answer for {k} is {v}." for i, (k, v) in enumerate(asked)]
    return {"task": "warmup_niah", "prompt": prompt("Find the values of the keys.", "questions", question, context),
            "completion": "<answer>\n" + "\n".join(lines) + "\n</answer>"}


def vt(rng: random.Random) -> dict:
    chains, hops = rng.randint(1, 8), rng.choice([0, 1, 1, 2, 2, 3, 4, 4])
    names = distinct_names(rng, chains * (hops + 1))
    values = rng.sample(range(10000, 100000), chains)
    statements, chain_of = [], []
    for c in range(chains):
        chain = names[c * (hops + 1):(c + 1) * (hops + 1)]
        chain_of.append(chain)
        statements.append([f"VAR {chain[0]} = {values[c]}."] +
                          [f"VAR {v} = VAR {chain[i]}." for i, v in enumerate(chain[1:])])
    # Interleave the chains in order, with filler between: each statement after the one it copies.
    items = []
    pending = [list(s) for s in statements]
    while any(pending):
        chain = rng.choice([p for p in pending if p])
        items.append(chain.pop(0))
        if rng.random() < 0.5:
            items.append(rng.choice(FILLER))
    value = values[0]
    question = (f"Which variables resolve to the value {value}? A variable resolves to {value} if it is "
                f"assigned {value} directly, or assigned another variable that resolves to {value}.")
    return {"task": "warmup_vt",
            "prompt": prompt("Track the variable assignments.", "question", question, " ".join(items)),
            "completion": "<answer>\n" + " ".join(chain_of[0]) + "\n</answer>"}


def story(rng: random.Random, lists: dict) -> list:
    """A few short chapters in the task's own sentences (arrival, encounter, purchase), and one
    retrieval and one multi-hop sample about them."""
    chapters = rng.randint(2, 6)
    places = rng.sample(lists["LOCATIONS"], chapters)
    people = rng.sample(lists["CHARACTERS"], chapters)
    items, seen = [], set()
    while len(items) < chapters:
        item = " ".join([rng.choice(lists["ITEM_ADJECTIVES"]), rng.choice(lists["ITEM_MATERIALS"]),
                         rng.choice(lists["ITEM_KINDS"])])
        if item not in seen:
            seen.add(item)
            items.append(item)
    text = []
    for c in range(chapters):
        article = "an" if items[c][0] in "aeiou" else "a"
        fill = {"hero": "Arion", "place": places[c], "who": people[c], "item": f"{article} {items[c]}"}
        line = [rng.choice(lists["ARRIVAL"]), rng.choice(lists["ENCOUNTER"]), rng.choice(lists["TALK"]),
                rng.choice(lists["BUY"]), rng.choice(lists["FAREWELL"])]
        text.append(f"Chapter {c + 1}:\n" + " ".join(re.sub(r"\{(\w+)\}", lambda m: fill[m.group(1)], t)
                                                    for t in line))
    context = "\n\n".join(text)
    intro = "Answer from the story."
    kinds = [("location", "which specific location did the protagonist visit?", places),
             ("character", "which character did the protagonist meet?", people),
             ("item", "which specific item did the protagonist acquire?", items)]
    questions, answers = [], []
    for i in range(rng.randint(1, 6)):
        c = rng.randrange(chapters)
        _, ask, gold = rng.choice(kinds)
        questions.append(f"{i + 1}. In Chapter {c + 1}, {ask}")
        answers.append(f"{i + 1}. {gold[c]}")
    retrieval = {"task": "warmup_story_retrieval",
                 "prompt": prompt(intro, "questions", "\n".join(questions), context),
                 "completion": "<answer>\n" + "\n".join(answers) + "\n</answer>"}
    later = rng.randrange(1, chapters)
    multihop = {"task": "warmup_story_multihop",
                "prompt": prompt(intro, "question", "What was the last item that the protagonist acquired "
                                 f"before acquiring the {items[later]}?", context),
                "completion": f"<answer>\n{items[later - 1]}\n</answer>"}
    return [retrieval, multihop]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, required=True, help="samples of each warm-up task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--story-data", default=str(Path(__file__).with_name(STORY_DATA)))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    lists = story_lists(Path(args.story_data))
    with open(args.out, "w") as f:
        for _ in range(args.samples):
            for sample in [copy(rng), *(reverse(rng) for _ in range(4)), niah(rng),
                           *(vt(rng) for _ in range(3)), *story(rng, lists)]:
                f.write(json.dumps(sample) + "\n")


if __name__ == "__main__":
    main()
