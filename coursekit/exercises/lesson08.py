"""Checks for lesson 8, the capstone: tune on a budget, register, promote only if better.

Rules the checks read from the store and the registry:

- an *attempt* is a run tagged ``source = tuning-panel`` in the capstone experiment
  (one ``Tuner.train_and_log`` call), whatever its status, deleted or not;
- a *round* is the attempts between two registrations of capstone attempts: the budget
  is ``BUDGET`` attempts per round, so running the notebook again starts a new round;
- the registered version must come from the round's best attempt with
  ``maxDepth <= MAX_DEPTH_LIMIT``, tagged ``test_auc`` and described;
- ``champion`` moves to the new version only if its run's AUC is strictly higher than the
  old champion's; the loser of the comparison carries ``challenger``.

Registry reads go through lesson 7's helpers, so they also suit Unity Catalog: versions are listed without
``order_by`` and sorted here; tags, aliases and descriptions come from ``get_model_version`` and ``get_registered_model``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlflow.entities import Run, ViewType
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import experiment_runs, in_experiment
from coursekit.exercises.lesson07 import (
    CHALLENGER,
    CHAMPION,
    MODEL_NAME,
    TIE,
    alias_case_mistake,
    auc_tag_problem,
    model_aliases,
    registered_versions,
    resolve_version,
    version_run,
)
from coursekit.exercises.verdicts import run_id_problem, run_in
from coursekit.settings import experiment_name
from coursekit.tuning import ATTEMPT_TAG, SOURCE, SOURCE_TAG, ForestParams

if TYPE_CHECKING:
    import pandas as pd

EXPERIMENT = experiment_name("lesson-08-capstone")
BUDGET = 6
MAX_DEPTH_LIMIT = 8


def attempts(client: MlflowClient | None = None) -> list[Run]:
    """Every attempt of the capstone, oldest first, deleted ones included (deleting does not refund the budget)."""
    return experiment_runs(
        EXPERIMENT, client, filter_string=f"tags.{SOURCE_TAG} = '{SOURCE}'",
        run_view_type=ViewType.ALL, max_results=10_000, order_by=["attributes.start_time ASC"],
    )


def capstone_versions(client: MlflowClient | None = None) -> list[ModelVersion]:
    """Versions of the course model registered from a capstone attempt, oldest first."""
    client = client or MlflowClient()
    ids = {run.info.run_id for run in attempts(client)}
    return [v for v in registered_versions(client) if v.run_id in ids]


def round_of(moment_ms: float, client: MlflowClient | None = None) -> list[Run]:
    """The attempts of the round that contains ``moment_ms``: after the registration before it, up to the next one."""
    client = client or MlflowClient()
    created = [int(v.creation_timestamp) for v in capstone_versions(client)]
    start = max((t for t in created if t < moment_ms), default=0)
    end = min((t for t in created if t >= moment_ms), default=math.inf)
    return [run for run in attempts(client) if start < run.info.start_time <= end]


def attempts_this_round(client: MlflowClient | None = None) -> pd.DataFrame:
    """The attempts since your last capstone registration, best AUC first; ``len()`` is what the budget counts."""
    import pandas as pd

    rows = [
        {
            "attempt": int(run.data.tags.get(ATTEMPT_TAG, 0)), "run_name": run.info.run_name,
            **{k: run.data.params.get(k) for k in ForestParams.__dataclass_fields__},
            "AUC": run.data.metrics.get("AUC", math.nan), "status": run.info.status, "run_id": run.info.run_id,
        }
        for run in round_of(math.inf, client)
    ]
    board = pd.DataFrame(rows, columns=["attempt", "run_name", *ForestParams.__dataclass_fields__, "AUC", "status", "run_id"])
    board["maxDepth"] = pd.to_numeric(board["maxDepth"]).astype("Int64")
    return board.sort_values(["AUC", "attempt"], ascending=[False, True], na_position="last").reset_index(drop=True)


def _depth(run: Run) -> int:
    return int(run.data.params.get("maxDepth", "0"))


def judge_attempt(run: Run, client: MlflowClient | None = None) -> CheckResult | None:
    """Budget, constraint and "best allowed attempt of its round" for one attempt; None when all hold."""
    client = client or MlflowClient()
    if run.data.tags.get(SOURCE_TAG) != SOURCE:
        return incorrect(
            f"Run '{run.info.run_name}' is not a tuning attempt (only tuner.train_and_log runs are): "
            "the baseline and hand-made runs are not candidates."
        )
    if run.info.status != "FINISHED":
        return incorrect(f"Attempt '{run.info.run_name}' ended as {run.info.status}: pick an attempt that finished.")
    in_round = round_of(run.info.start_time, client)
    if len(in_round) > BUDGET:
        return incorrect(
            f"Over budget: {len(in_round)} attempts in this round, and the budget is {BUDGET}. The store counts every "
            "tuner.train_and_log call since your previous capstone registration (deleted runs too): plan before you "
            "train. Register your best to close this round, then try again within the budget."
        )
    if _depth(run) > MAX_DEPTH_LIMIT:
        return incorrect(
            f"Constraint violated: '{run.info.run_name}' has maxDepth {_depth(run)}, above {MAX_DEPTH_LIMIT}. Params are "
            f"strings: '{_depth(run)}' <= '{MAX_DEPTH_LIMIT}' is true as text, so convert with astype(int) before comparing."
        )
    if "AUC" not in run.data.metrics:
        return incorrect(f"Attempt '{run.info.run_name}' has no AUC metric: train it with tuner.train_and_log.")
    allowed = [r for r in in_round if r.info.status == "FINISHED" and _depth(r) <= MAX_DEPTH_LIMIT and "AUC" in r.data.metrics]
    top = max(allowed, key=lambda r: r.data.metrics["AUC"])
    auc = run.data.metrics["AUC"]
    if not auc >= top.data.metrics["AUC"] - TIE:
        return incorrect(
            f"'{run.info.run_name}' has AUC {auc:.3f}, but '{top.info.run_name}' reaches "
            f"{top.data.metrics['AUC']:.3f} in the same round with maxDepth {_depth(top)}: take the best allowed attempt."
        )
    return None


def _capstone_version(answer: object, client: MlflowClient) -> tuple[ModelVersion, Run] | CheckResult:
    """The registered version and its run, if it is this round's best allowed capstone attempt; else the verdict."""
    version = resolve_version(answer, client)
    if isinstance(version, CheckResult):
        return version
    run = version_run(version, client)
    if run is None or not in_experiment(run, EXPERIMENT, client) or run.data.tags.get(SOURCE_TAG) != SOURCE:
        return incorrect(
            f"Version {version.version} does not come from a capstone attempt (a tuner.train_and_log run in "
            f"{EXPERIMENT!r}): register the model of your best attempt in this lesson."
        )
    problem = judge_attempt(run, client)
    return problem if problem else (version, run)


class BestAllowedAttempt(Exercise):
    """q1: the best attempt of the round within the budget and with maxDepth <= MAX_DEPTH_LIMIT."""

    key = "q1"
    title = f"Best attempt with maxDepth ≤ {MAX_DEPTH_LIMIT}, within {BUDGET} attempts"
    hints = (
        "attempts_this_round() lists this round's attempts, best AUC first, with maxDepth as a number.",
        "Keep the rows with maxDepth <= MAX_DEPTH_LIMIT, take the first one's run_id. With mlflow.search_runs, "
        "params.maxDepth is text: convert with .astype(int) first.",
    )
    solution_code = """
board = attempts_this_round()
allowed = board[(board["maxDepth"] <= MAX_DEPTH_LIMIT) & (board["status"] == "FINISHED")]
best_run_id = allowed.iloc[0]["run_id"]
"""

    def evaluate(self, best_run_id: object = None) -> CheckResult:
        problem = run_id_problem(best_run_id, "best_run_id", "set it to the run_id of your best allowed attempt.",
                                 "take one run_id string, e.g. allowed.iloc[0]['run_id'].")
        if problem:
            return problem
        client = MlflowClient()
        if not attempts(client):
            return not_attempted(f"No attempt in {EXPERIMENT!r} yet: train with tuner.train_and_log(ForestParams(...)).")
        run = run_in(EXPERIMENT, str(best_run_id), f"the capstone's attempts are in {EXPERIMENT!r}.", client)
        if isinstance(run, CheckResult):
            return run
        problem = judge_attempt(run, client)
        if problem:
            return problem
        used = len(round_of(run.info.start_time, client))
        return correct(
            f"'{run.info.run_name}' (AUC {run.data.metrics['AUC']:.3f}, maxDepth {_depth(run)}) is the best allowed "
            f"attempt of this round; you used {used} of {BUDGET} attempts."
        )


class RegisterAndDescribe(Exercise):
    """q2: the best allowed attempt's model registered as a version, tagged ``test_auc`` and described."""

    key = "q2"
    title = "Register it, tag it, describe it"
    hints = (
        "Log the attempt's model into its run with signature=signature_of(model) and registered_model_name=MODEL_NAME.",
        "Then set_model_version_tag(..., 'test_auc', f'{auc:.3f}') and update_model_version(..., description=...).",
    )
    solution_code = """
model = servable(best_run_id)
with mlflow.start_run(run_id=best_run_id):
    info = spark_flavor.log_model(model, "rf_model", pip_requirements=PIP_REQUIREMENTS, signature=signature_of(model),
                                  registered_model_name=MODEL_NAME)
new_version = client.get_model_version(MODEL_NAME, info.registered_model_version)
auc = client.get_run(best_run_id).data.metrics["AUC"]
client.set_model_version_tag(MODEL_NAME, new_version.version, "test_auc", f"{auc:.3f}")
client.update_model_version(MODEL_NAME, new_version.version, description="Capstone: best attempt with maxDepth <= 8.")
"""

    def evaluate(self, new_version: object = None) -> CheckResult:
        if is_blank(new_version):
            return not_attempted("new_version is still blank: set it to the ModelVersion you registered.")
        client = MlflowClient()
        found = _capstone_version(new_version, client)
        if isinstance(found, CheckResult):
            return found
        version, run = found
        tag_problem = auc_tag_problem(version, run)
        if tag_problem:
            return incorrect(tag_problem)
        if not (version.description or "").strip():
            return incorrect(
                f"Version {version.version} has no description: say what it is, with "
                "client.update_model_version(MODEL_NAME, version, description=...)."
            )
        return correct(f"Version {version.version} ← '{run.info.run_name}', tagged and described.")


class ChampionDecision(Exercise):
    """q3: the whole capstone, read back from the store and the registry, ending with the alias decision."""

    key = "q3"
    title = "Compare with the champion and decide"
    hints = (
        "Score the champion (models:/NAME@champion) and your version (models:/NAME/<version>) on test_rows.",
        "Better: champion -> your version, challenger -> the old champion. Not better: challenger -> your version.",
    )
    solution_code = """
old_champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
champion_auc = evaluator.evaluate(spark_flavor.load_model(f"models:/{MODEL_NAME}@champion").transform(test_rows))
new_auc = evaluator.evaluate(spark_flavor.load_model(f"models:/{MODEL_NAME}/{new_version.version}").transform(test_rows))
if new_auc > champion_auc + TIE:
    client.set_registered_model_alias(MODEL_NAME, "champion", new_version.version)
    client.set_registered_model_alias(MODEL_NAME, "challenger", old_champion.version)
else:
    client.set_registered_model_alias(MODEL_NAME, "challenger", new_version.version)
"""

    def evaluate(self, new_version: object = None) -> CheckResult:
        if is_blank(new_version):
            return not_attempted("new_version is still blank: pass the version you registered in exercise 2.")
        client = MlflowClient()
        found = _capstone_version(new_version, client)
        if isinstance(found, CheckResult):
            return found
        version, run = found
        aliases = model_aliases(client) or {}
        mistake = alias_case_mistake(aliases, CHAMPION) or alias_case_mistake(aliases, CHALLENGER)
        if mistake:
            return mistake
        return self._decision(int(version.version), aliases, client)

    @staticmethod
    def _decision(number: int, aliases: dict[str, int], client: MlflowClient) -> CheckResult:
        champion, challenger = aliases.get(CHAMPION), aliases.get(CHALLENGER)
        if champion is None:
            return incorrect("The model has no champion: run the cell of step 3, which makes a baseline champion if needed.")
        if champion == challenger:
            return incorrect(f"Both aliases point at version {champion}: the loser of the comparison carries 'challenger'.")
        if number not in (champion, challenger):
            return incorrect(
                f"Version {number} carries neither alias: compare it with the champion (version {champion}), then move "
                "'champion' to it if it is better, or give it 'challenger' if it is not."
            )
        aucs = {}
        for n in (champion, challenger):
            if n is not None:
                run = version_run(client.get_model_version(MODEL_NAME, str(n)), client)
                aucs[n] = run.data.metrics.get("AUC", math.nan) if run else math.nan
        if number == champion:
            if challenger is None:
                return incorrect(
                    f"'champion' moved to version {number}, but the old champion carries no alias: give it 'challenger' "
                    "so the comparison is on record and rolling back is one call."
                )
            if not aucs[number] > aucs[challenger] + TIE:
                return incorrect(
                    f"Alias moved although not better: version {number} (AUC {aucs[number]:.3f}) does not beat the old "
                    f"champion, version {challenger} (AUC {aucs[challenger]:.3f}). Move 'champion' back."
                )
            return correct(
                f"Promoted: version {number} (AUC {aucs[number]:.3f}) beat version {challenger} "
                f"(AUC {aucs[challenger]:.3f}), which stays one alias away."
            )
        if aucs[number] > aucs[champion] + TIE:
            return incorrect(
                f"Alias not moved although better: version {number} (AUC {aucs[number]:.3f}) beats the champion, "
                f"version {champion} (AUC {aucs[champion]:.3f}). Promote it."
            )
        return correct(
            f"Kept: the champion, version {champion} (AUC {aucs[champion]:.3f}), is at least as good as version {number} "
            f"(AUC {aucs[number]:.3f}), which is now the challenger."
        )


q1 = BestAllowedAttempt()
q2 = RegisterAndDescribe()
q3 = ChampionDecision()
