"""VT's answers as the embedded model learns them, and the attention targets of their lookups.

Pure Python (no torch), so the project's tests check it against the app's own VT generator
(tests/unit/train-vt-answers.test.ts):

    python3 vt_answers.py SAMPLES.jsonl [COPY_CHARS]

prints one JSON line a sample: its traced completion and targets (COPY_CHARS: train.py --copy-chars).

`traced_completion` is the completion train.py trains on. `supervision_targets` names, for each
head that train.py --lookup-weight supervises (lookup_attention.py), the query tokens and the token
span each should attend to. Tokens are the character tokenizer's: BOS, then one token a character,
so character i of the prompt is token i + 1 and the completion's characters follow the prompt's.
"""

import json
import re
import sys

VT_VALUE = re.compile(r"resolve to the value (\d+)\?")


def traced_completion(sample: dict) -> str:
    """The gold completion the model learns. VT's is rewritten as the hops it follows: the value it
    traces, then each name after the value or name it is assigned (`<answer>\n12345 NAME1 NAME1
    NAME2 NAME2 NAME3 ...`). Each name is then looked up from the word written just before it, the
    way the reverse lookups of curriculum.py answer (`value name value name`), never from the
    question far back or from a name the answer has just produced as a lookup's result. The VT
    scorer reads the set of names, so the score is the same; the model card says the model
    writes it."""
    if sample["task"] not in ("ruler_vt", "warmup_vt"):
        return sample["completion"]
    value = VT_VALUE.search(sample["prompt"])
    head, tail = "<answer>\n", "\n</answer>"
    if value is None or not (sample["completion"].startswith(head) and sample["completion"].endswith(tail)):
        raise ValueError(f"a {sample['task']} sample without its value or answer tags")
    names = sample["completion"][len(head):-len(tail)].split()
    hops = [value.group(1)] + [f"{name} {name}" for name in names[:-1]] + names[-1:]
    return head + " ".join(hops) + tail


# An assignment in a prompt's context; the task's instructions quote examples without the period.
STATEMENT = re.compile(r"VAR ([A-Z]{5}) = (?:VAR ([A-Z]{5})|(\d+))\.")
ANSWER_WORD = re.compile(r"\b(?:[A-Z]{5}|\d+)\b")
NAME_LENGTH = 5  # VT's names are five capitals, as the two patterns above read them
SUMMARY_TOKENS = 2  # a statement's last value character and its period
NAME_OFFSET = len("VAR ")


def statements(prompt: str) -> list:
    """(token start, token end, assigned name, assigned value or name) of every assignment in the
    prompt; tokens are characters after BOS, so a character's token is its index + 1."""
    return [(m.start() + 1, m.end() + 1, m.group(1), m.group(2) or m.group(3)) for m in STATEMENT.finditer(prompt)]


def lookups(prompt: str, completion: str) -> list:
    """(query token, statement start, statement end, by name) for each name of the completion that
    is looked up: a name written right after the value or name its statement assigns it (by name
    when that is a name, not a number). `completion` is the text the row holds after the prompt
    (its tokens follow the prompt's BOS and characters)."""
    assigned = {name: (start, end, source) for start, end, name, source in statements(prompt)}
    first_completion_token = len(prompt) + 1
    found, previous, seen = [], None, set()
    for word in ANSWER_WORD.finditer(completion):
        name = word.group()
        statement = assigned.get(name)
        if statement is not None and statement[2] == previous and name not in seen:
            seen.add(name)
            found.append((first_completion_token + word.start() - 1, statement[0], statement[1], int(not previous.isdigit())))
        previous = name
    return found


def supervision_targets(prompt: str, completion: str, copy_chars: int = 1) -> dict:
    """Each supervised head's (query token, span start, span end) list, and, for the lookup, relookup
    and copy lists, whether each target's lookup is by name (`by_name`, one list a role, aligned).
    The copy head is pointed at the first `copy_chars` characters of each looked-up name: from the
    token before each character as the answer writes it, onto that character in the statement. The
    relookup is the lookup again from the name's first written character: a name's second character
    cannot be told from another name's that starts alike by the characters before it, only by the
    statement (tools/train/README.md, session 20)."""
    found = lookups(prompt, completion)
    per_lookup = [by_name for *_, by_name in found]
    copies = [(query + j, start + NAME_OFFSET + j, start + NAME_OFFSET + j + 1, by_name)
              for query, start, _, by_name in found for j in range(copy_chars)]
    return {
        "carry": [(query, start + NAME_OFFSET, start + NAME_OFFSET + 1)
                  for start, end, _, _ in statements(prompt) for query in range(end - SUMMARY_TOKENS, end)],
        "lookup": [(query, end - SUMMARY_TOKENS, end) for query, _, end, _ in found],
        "relookup": [(query + 1, end - SUMMARY_TOKENS, end) for query, _, end, _ in found],
        "copy": [copy[:3] for copy in copies],
        "by_name": {"lookup": per_lookup, "relookup": per_lookup, "copy": [copy[3] for copy in copies]},
    }


def main() -> None:
    copy_chars = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    with open(sys.argv[1]) as f:
        for line in f:
            sample = json.loads(line)
            completion = traced_completion(sample)
            print(json.dumps({"completion": completion,
                              "targets": supervision_targets(sample["prompt"], completion, copy_chars)}))


if __name__ == "__main__":
    main()
