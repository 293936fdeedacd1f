"""A case's checklist files and the hashes that bind an approval to their content.

Rule: the checklist of a case is three files in its ``ethics/`` folder — ``checklist.yaml``
(the definition), ``answers.yaml`` and ``review.yaml`` — read and validated here only. The
content hash covers the definition, every answer (value, rationale, author) and the sha256
of every evidence file; timestamps are left out so that re-saving changes nothing. Item
checks here (blocking answers, metric checks, evidence on disk) only read.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import UserError
from idsp.files import atomic_write, inside, read_limited

from legal_ethics.canonical import sha256_file, sha256_of
from legal_ethics.schema import (
    Answer,
    Answers,
    ChecklistDefinition,
    ChecklistItem,
    MetricCheck,
    ReviewRecord,
)
from legal_ethics.storage import dump_yaml, read_model

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

ETHICS_DIR = "ethics"
CHECKLIST_FILE = "checklist.yaml"
ANSWERS_FILE = "answers.yaml"
REVIEW_FILE = "review.yaml"
LOCK_FILE = ".lock"


def ethics_dir(case: CaseFile) -> Path:
    return Path(case.root) / ETHICS_DIR


def checklist_path(case: CaseFile) -> Path:
    return ethics_dir(case) / CHECKLIST_FILE


def lock_path(case: CaseFile) -> Path:
    return ethics_dir(case) / LOCK_FILE


def has_checklist(case: CaseFile) -> bool:
    return checklist_path(case).is_file()


def load_definition(case: CaseFile) -> ChecklistDefinition:
    path = checklist_path(case)
    if not path.is_file():
        raise UserError(
            "this case has no checklist yet", where=str(path),
            fix="Run `idsp ethics init` in the case folder",
        )
    return read_model(ChecklistDefinition, path, what="checklist definition")


def load_answers(case: CaseFile) -> Answers:
    path = ethics_dir(case) / ANSWERS_FILE
    if not path.exists():
        return Answers(case_id=case.id)
    return read_model(Answers, path, what="answers file")


def load_review(case: CaseFile) -> ReviewRecord:
    path = ethics_dir(case) / REVIEW_FILE
    if not path.exists():
        return ReviewRecord(case_id=case.id)
    return read_model(ReviewRecord, path, what="review record")


_HEADERS = {
    CHECKLIST_FILE: "# Checklist definition built by `idsp ethics init` from case.yaml.\n"
    "# Reviewers approve this content; any edit needs a new approval.\n",
    ANSWERS_FILE: "# Answers, written by `idsp ethics answer`. Editing by hand voids approvals.\n",
    REVIEW_FILE: "# Submissions and signed decisions, written by `idsp ethics submit|approve|reject|revoke`.\n",
}


def save(case: CaseFile, name: str, model) -> Path:
    path = ethics_dir(case) / name
    data = model.model_dump(mode="json", exclude_none=True)
    atomic_write(path, _HEADERS.get(name, "") + dump_yaml(data))
    return path


# --- hashes ----------------------------------------------------------------------------


def answer_content(answer: Answer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {
        "value": answer.value,
        "rationale": answer.rationale,
        "author": answer.author,
        "evidence": [{"path": e.path, "sha256": e.sha256} for e in answer.evidence],
    }


def definition_sha256(defn: ChecklistDefinition) -> str:
    return sha256_of(defn.model_dump(mode="json"))


def item_hashes(defn: ChecklistDefinition, answers: Answers) -> dict[str, str]:
    out = {}
    for item in defn.items:
        out[item.key] = sha256_of(
            {"item": item.model_dump(mode="json"), "answer": answer_content(answers.answers.get(item.key))}
        )
    return out


def evidence_hashes(answers: Answers) -> dict[str, str]:
    return {e.path: e.sha256 for a in answers.answers.values() for e in a.evidence}


def content_sha256(defn: ChecklistDefinition, answers: Answers) -> str:
    keys = {i.key for i in defn.items}
    return sha256_of(
        {
            "definition": defn.model_dump(mode="json"),
            "answers": {k: answer_content(a) for k, a in sorted(answers.answers.items()) if k in keys},
        }
    )


# --- checks that read files ------------------------------------------------------------


def use_items(defn: ChecklistDefinition) -> set[str]:
    """Keys of the items of phase "use": judged on what runs under a development approval produce."""
    return {i.key for i in defn.items if i.phase == "use"}


def evidence_problems(case: CaseFile, answers: Answers, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Evidence files that are missing or changed since they were attached (answers in
    ``skip`` left out)."""
    problems = []
    for key, answer in sorted(answers.answers.items()):
        if key in skip:
            continue
        for ev in answer.evidence:
            path = inside(case.root, ev.path)
            if path is None:
                problems.append(f"evidence file {ev.path} of answer {key} lies outside the case folder (a link or "
                                "'..' leaves it); reviewers can only rely on files inside the case: answer "
                                f"{key} again with a file inside it")
                continue
            if not path.is_file():
                problems.append(f"evidence file {ev.path} of answer {key} is missing")
                continue
            now = sha256_file(path)
            if now != ev.sha256:
                problems.append(
                    f"evidence file {ev.path} of answer {key} changed after it was attached "
                    f"(sha256 {ev.sha256[:12]}… -> {now[:12]}…); answer {key} again to attach it"
                )
    return problems


_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_path(data: Any, path: str) -> Any:
    node = data
    for name, index in _PATH_TOKEN.findall(path):
        if name:
            if not isinstance(node, dict) or name not in node:
                raise KeyError(name)
            node = node[name]
        else:
            if not isinstance(node, list) or int(index) >= len(node):
                raise KeyError(f"[{index}]")
            node = node[int(index)]
    return node


_OPS = {
    ">=": lambda a, b: a >= b, ">": lambda a, b: a > b, "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


@dataclass(frozen=True)
class MetricResult:
    value: float | None
    ok: bool
    detail: str


def evaluate_metric(case: CaseFile, metric: MetricCheck) -> MetricResult:
    """Read the artefact and compare; never raises for a bad artefact, says why instead."""
    path = inside(case.root, metric.artifact)
    if path is None:
        return MetricResult(None, False, f"artefact {metric.artifact} lies outside the case folder")
    if not path.is_file():
        return MetricResult(None, False, f"artefact {metric.artifact} does not exist (run the pipeline first)")
    try:
        data = json.loads(read_limited(path, what=f"artefact {metric.artifact}", kind="json").decode("utf-8"))
        raw = json_path(data, metric.path)
        value = float(raw)
    except json.JSONDecodeError as exc:
        return MetricResult(None, False, f"artefact {metric.artifact} is not JSON (line {exc.lineno})")
    except KeyError as exc:
        return MetricResult(None, False, f"artefact {metric.artifact} has no {metric.path} (missing {exc})")
    except (TypeError, ValueError):
        return MetricResult(None, False, f"{metric.path} in {metric.artifact} is not a number")
    except UserError as exc:  # not a regular file, or too large
        return MetricResult(None, False, exc.message)
    if math.isnan(value):
        return MetricResult(value, False, f"{metric.path} in {metric.artifact} is NaN")
    ok = _OPS[metric.op](value, metric.threshold)
    verdict = "meets" if ok else "fails"
    return MetricResult(value, ok, f"{metric.path} = {value:g} {verdict} {metric.op} {metric.threshold:g}")


def item_problems(
    case: CaseFile, defn: ChecklistDefinition, answers: Answers, skip: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """Why blocking items do not yet allow a run, and answers that lack a rationale (items
    in ``skip`` left out: for a development run, the items of phase "use")."""
    problems = []
    for item in defn.items:
        if item.key in skip:
            continue
        answer = answers.answers.get(item.key)
        problems.extend(_item_problems(case, item, answer, defn, answers))
    return problems


def justification_problem(item: ChecklistItem, answer: Answer | None) -> str | None:
    """Why ``answer`` is not (yet) a justification entry for a failed metric check, or None."""
    label = f"{item.key} ({item.title})"
    if answer is None or answer.value in (None, ""):
        return f"answer item {label} with the justification"
    if item.pass_values and answer.value not in item.pass_values:
        return f"item {label} is answered {answer.value!r}; a justification needs one of {', '.join(item.pass_values)}"
    if not answer.rationale.strip():
        return f"item {label} needs a rationale"
    if item.required_evidence and not answer.evidence:
        return f"item {label} needs evidence ({', '.join(item.required_evidence)})"
    return None


def _item_problems(case: CaseFile, item: ChecklistItem, answer: Answer | None, defn=None, answers=None) -> list[str]:
    label = f"{item.key} ({item.title})"
    if answer is None or answer.value in (None, ""):
        return [f"blocking item {label} is not answered (responsible: {item.responsible_role})"] if item.blocking else []
    out = []
    value = answer.value
    if isinstance(value, str) and value in item.justification_required_for and not answer.rationale.strip():
        out.append(f"item {label} is answered {value!r} without a rationale")
    if item.required_evidence and not answer.evidence and value != "nvt":
        out.append(f"item {label} needs evidence ({', '.join(item.required_evidence)}) and has none")
    if not item.blocking:
        return out
    if item.answer_type == "choice" and item.pass_values and value not in item.pass_values:
        out.append(f"blocking item {label} is answered {value!r}; a run needs one of {', '.join(item.pass_values)}")
    elif item.answer_type == "yes_no" and item.expected is not None and value is not item.expected:
        out.append(f"blocking item {label} is answered {_yes_no(value)}; a run needs {_yes_no(item.expected)}")
    elif item.answer_type == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if item.minimum is not None and not number >= item.minimum:
            out.append(f"blocking item {label} is {value}, below the minimum {item.minimum:g}")
        if item.maximum is not None and not number <= item.maximum:
            out.append(f"blocking item {label} is {value}, above the maximum {item.maximum:g}")
    elif item.answer_type == "metric_check" and item.metric is not None:
        result = evaluate_metric(case, item.metric)
        target = defn.item(item.metric.justify_with) if defn is not None and item.metric.justify_with else None
        if not result.ok and target is not None and result.value is not None:
            # A review trigger: the failure is allowed once a justification entry stands.
            why = justification_problem(target, answers.answers.get(target.key) if answers else None)
            if why:
                out.append(f"metric check {label} triggers a justification: {result.detail}; {why}")
        elif not result.ok:
            out.append(f"metric check {label} fails: {result.detail}")
    return out


def _yes_no(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, repr(value))
