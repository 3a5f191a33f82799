"""Checks for lesson 7, "Model versioning: prepare for the registry".

The checks read the model registry of the learner's store: the registered model ``pima-diabetes-rf``, its versions,
their tags and descriptions, the aliases, and (through each version's ``run_id``) the runs that produced them. Running
the lesson again adds versions, so every check judges the latest state: for example "champion" must point at a version
whose run has the best AUC of all versions. Reads suit Unity Catalog too (no ``order_by``; listings without tags or
aliases): listings give versions and run ids; ``get_registered_model``/``get_model_version`` give tags and aliases.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.store.entities.paged_list import PagedList
from mlflow.tracking import MlflowClient

from coursekit.exercises.checks import CheckResult, Exercise, correct, incorrect, is_blank, not_attempted
from coursekit.exercises.store import best_run_by_metric, in_experiment, similar_keys
from coursekit.exercises.verdicts import not_a_result, same_param
from coursekit.settings import experiment_name, model_name

EXPERIMENT = experiment_name("lesson-07-registry")
MODEL_NAME = model_name("pima-diabetes-rf")
MODEL_PATH = "rf_model"
CHAMPION = "champion"
CHALLENGER = "challenger"
TASK_TAG = "task"
TASK = "binary-classification"
AUC_TAG = "test_auc"
AUC_TOLERANCE = 1e-4  # a loaded model scored again vs the AUC its run logged
TAG_TOLERANCE = 5e-4  # test_auc is written with three decimals
TIE = 1e-9


def every_page(search: Callable[..., PagedList[Any]], *args: object) -> list[Any]:
    """All results of a registry search, page after page (a server may cap a page below what was asked)."""
    found: list[Any] = []
    token: str | None = None
    while page := search(*args, page_token=token):
        found.extend(page)
        if not (token := page.token):
            break
    return found


def registered_versions(client: MlflowClient | None = None, name: str = MODEL_NAME) -> list[ModelVersion]:
    """Every version of the registered model, oldest first, sorted here (empty if the model does not exist)."""
    client = client or MlflowClient()
    return sorted(every_page(client.search_model_versions, f"name = '{name}'"), key=lambda v: int(v.version))


def model_aliases(client: MlflowClient | None = None, name: str = MODEL_NAME) -> dict[str, int] | None:
    """Alias -> version number, or None if the model does not exist (search_model_versions leaves aliases empty)."""
    try:
        model = (client or MlflowClient()).get_registered_model(name)
    except MlflowException:
        return None
    return {alias: int(version) for alias, version in model.aliases.items()}


def version_run(version: ModelVersion, client: MlflowClient | None = None) -> Run | None:
    """The run a version was registered from (its lineage), or None."""
    try:
        return (client or MlflowClient()).get_run(version.run_id) if version.run_id else None
    except MlflowException:
        return None


def version_aucs(client: MlflowClient | None = None, name: str = MODEL_NAME) -> dict[int, float]:
    """Version number -> AUC logged by the run behind it (versions without a run or AUC are left out)."""
    client = client or MlflowClient()
    runs = {int(v.version): version_run(v, client) for v in registered_versions(client, name)}
    return {n: run.data.metrics["AUC"] for n, run in runs.items() if run is not None and "AUC" in run.data.metrics}


def missing_model(client: MlflowClient | None = None) -> CheckResult:
    """The verdict when the lesson's registered model does not exist (naming a look-alike if there is one)."""
    names = [m.name for m in every_page((client or MlflowClient()).search_registered_models)]
    near = similar_keys(MODEL_NAME, names)
    if near:
        return incorrect(f"Found a registered model {near[0]!r}, but the course's model is {MODEL_NAME!r}: registry names "
                         "are exact, so these are two different models. Register with name=MODEL_NAME.")
    return not_attempted(f"No registered model {MODEL_NAME!r} yet: run the registration cells of step 3.")


def alias_case_mistake(aliases: Mapping[str, int], wanted: str) -> CheckResult | None:
    """An "incorrect" naming an alias like ``Champion`` when ``champion`` is wanted, else None."""
    near = similar_keys(wanted, aliases)
    if wanted not in aliases and near:
        return incorrect(f"Found alias {near[0]!r}, but the lesson uses {wanted!r}: aliases are case-sensitive and exact.")
    return None


def resolve_version(answer: object, client: MlflowClient | None = None) -> ModelVersion | CheckResult:
    """The registry's copy of the version the learner passed, or an "incorrect" saying what they passed instead."""
    if isinstance(answer, str):
        what = "a run id" if len(answer) == 32 and answer.isalnum() else f"the string {answer!r}"
        return incorrect(f"That is {what}, not a model version: register the run's model with "
                         "mlflow.register_model(f'runs:/{run_id}/rf_model', MODEL_NAME) and keep the ModelVersion it returns.")
    if hasattr(answer, "registered_model_version") and hasattr(answer, "model_uri"):  # log_model's ModelInfo
        if answer.registered_model_version is None:
            return incorrect("That ModelInfo is a logged model that was never registered: call mlflow.register_model.")
        answer = ModelVersion(MODEL_NAME, answer.registered_model_version, 0, run_id=answer.run_id)
    if hasattr(answer, "latest_versions") or not (hasattr(answer, "name") and hasattr(answer, "version")):
        return incorrect(f"Got a {type(answer).__name__}: pass one model version, the object mlflow.register_model returns.")
    if str(answer.name) != MODEL_NAME:
        why = "registry names are exact" if similar_keys(MODEL_NAME, [str(answer.name)]) else "use name=MODEL_NAME"
        return incorrect(f"That version belongs to the model {answer.name!r}, but the course's model is {MODEL_NAME!r}: {why}.")
    try:
        stored = (client or MlflowClient()).get_model_version(MODEL_NAME, str(answer.version))
    except MlflowException:
        return incorrect(f"Version {answer.version} of {MODEL_NAME!r} is not in the registry (deleted?): register again.")
    if getattr(answer, "run_id", None) and stored.run_id != answer.run_id:
        return incorrect(f"Version {answer.version} of {MODEL_NAME!r} comes from another run: was yours registered under another name?")
    return stored


class RegisterBest(Exercise):
    """q1: register the model of the experiment's best run as a new version."""

    key = "q1"
    title = "Register the best run's model"
    hints = (
        "First find the best run (lesson 1: search_runs ordered by metrics.AUC DESC), then register its rf_model.",
        'mlflow.register_model(f"runs:/{best_run_id}/rf_model", MODEL_NAME) returns the new ModelVersion.',
    )
    solution_code = """
best = mlflow.search_runs(experiment_names=[EXPERIMENT], order_by=["metrics.AUC DESC"], max_results=1)
best_run_id = best.loc[0, "run_id"]
best_version = mlflow.register_model(f"runs:/{best_run_id}/rf_model", MODEL_NAME)
"""

    def evaluate(self, best_version: object = None) -> CheckResult:
        if is_blank(best_version):
            return not_attempted("best_version is still blank: set it to what mlflow.register_model returns.")
        client = MlflowClient()
        version = resolve_version(best_version, client)
        if isinstance(version, CheckResult):
            return version
        run = version_run(version, client)
        if run is None:
            return incorrect(f"Version {version.version} has no run behind it, so nobody can trace it: register from runs:/<run_id>/rf_model.")
        if not in_experiment(run, EXPERIMENT, client):
            return incorrect(f"Version {version.version} comes from a run in another experiment: pick the best run of {EXPERIMENT!r}.")
        retired = not_a_result(run)
        if retired:
            return retired
        if not str(version.source).rstrip("/").endswith(MODEL_PATH):
            return incorrect(f"Version {version.version} was registered from {version.source!r}; register the run's {MODEL_PATH!r} model.")
        best = best_run_by_metric(EXPERIMENT, "AUC", client)
        auc, top = run.data.metrics.get("AUC", float("nan")), best.data.metrics["AUC"] if best else float("nan")
        if not auc >= top - TIE:
            return incorrect(f"Version {version.version} comes from run '{run.info.run_name}' with AUC {auc:.3f}, but the best "
                             f"run of the experiment has AUC {top:.3f}: order by metrics.AUC DESC and take the first row.")
        count = len(registered_versions(client))
        if count < 2:
            return incorrect("The model has only this one version: run the cell of step 3 that registers the baseline too.")
        return correct(f"Version {version.version} ← run '{run.info.run_name}' (AUC {auc:.3f}); the model has {count} versions.")


class DescribeAndTag(Exercise):
    """q2: a description and a ``task`` tag on the model, a ``test_auc`` tag on every version."""

    key = "q2"
    title = "Describe the model, tag its versions"
    hints = (
        "Model-level: client.update_registered_model(MODEL_NAME, description=...) and client.set_registered_model_tag.",
        "Version-level: loop over client.search_model_versions(...); for each, read its run's AUC "
        'and call client.set_model_version_tag(MODEL_NAME, v.version, "test_auc", f"{auc:.3f}").',
    )
    solution_code = """
client.update_registered_model(MODEL_NAME, description="Random forest that flags diabetes from 7 measurements.")
client.set_registered_model_tag(MODEL_NAME, "task", "binary-classification")
for v in client.search_model_versions(f"name = '{MODEL_NAME}'"):
    auc = client.get_run(v.run_id).data.metrics["AUC"]
    client.set_model_version_tag(MODEL_NAME, v.version, "test_auc", f"{auc:.3f}")
"""

    def evaluate(self) -> CheckResult:
        client = MlflowClient()
        try:
            model = client.get_registered_model(MODEL_NAME)
        except MlflowException:
            return missing_model(client)
        versions = [client.get_model_version(MODEL_NAME, v.version) for v in registered_versions(client)]  # tags too
        version_tags = {int(v.version): v.tags for v in versions}
        if not model.description and not model.tags and not any(version_tags.values()):
            return not_attempted("The model has no description or tags yet: un-comment the lines, fill in the blanks, run the cell.")
        if (model.description or "").strip() in ("", "____"):
            described = [v.version for v in versions if (v.description or "").strip()]
            where = f"Version {described[0]} has a description, but the registered model itself has none" if described else (
                "The registered model has no description")
            return incorrect(f"{where}: client.update_registered_model(MODEL_NAME, description=...).")
        if model.tags.get(TASK_TAG) != TASK:
            near = similar_keys(TASK_TAG, model.tags)
            on_version = next((n for n, tags in version_tags.items() if TASK_TAG in tags), None)
            if near:
                return incorrect(f"Found model tag {near[0]!r}, but the exercise asks for {TASK_TAG!r}: tag keys are exact.")
            if TASK_TAG in model.tags:
                return incorrect(f"Model tag {TASK_TAG} is {model.tags[TASK_TAG]!r}; the exercise asks for {TASK!r}.")
            if on_version is not None:
                return incorrect(f"{TASK_TAG!r} is a tag of version {on_version}, but it describes the whole model: set_registered_model_tag.")
            return incorrect(f"The model has no tag {TASK_TAG!r}: client.set_registered_model_tag(MODEL_NAME, {TASK_TAG!r}, {TASK!r}).")
        for version in versions:
            problem = auc_tag_problem(version, version_run(version, client), model.tags)
            if problem:
                return incorrect(problem)
        return correct("The model page shows your description; the versions table shows test_auc next to each version.")


def auc_tag_problem(version: ModelVersion, run: Run | None, model_tags: Mapping[str, str] | None = None) -> str | None:
    """What is wrong with the version's ``test_auc`` tag compared with its run's AUC, or None."""
    if run is None or "AUC" not in run.data.metrics:
        return None
    auc, tags, number = run.data.metrics["AUC"], version.tags, version.version
    if AUC_TAG not in tags:
        near = similar_keys(AUC_TAG, tags)
        if near:
            return f"Version {number} has tag {near[0]!r}; the exercise asks for {AUC_TAG!r} (tag keys are exact)."
        if AUC_TAG in (model_tags or {}):
            return f"{AUC_TAG!r} is a tag of the registered model, but each version has its own AUC: set_model_version_tag."
        return f"Version {number} has no tag {AUC_TAG!r}: tag every version, also those registered after your loop ran."
    try:
        value = float(tags[AUC_TAG])
    except ValueError:
        value = math.nan
    if not abs(value - auc) <= TAG_TOLERANCE:
        return (
            f"Version {number}'s {AUC_TAG} is {tags[AUC_TAG]!r}, but its run logged AUC {auc:.3f}: "
            'read the AUC from client.get_run(v.run_id) and write it as f"{auc:.3f}".'
        )
    return None


class ChampionAuc(Exercise):
    """q3: load ``models:/pima-diabetes-rf@champion`` with the Spark flavour and score it on the test rows."""

    key = "q3"
    title = "Load the champion by alias and score it"
    hints = (
        'The URI of an alias is f"models:/{MODEL_NAME}@champion"; spark_flavor.load_model (mlflow.spark.load_model) '
        "returns a PipelineModel.",
        "champion_auc = evaluator.evaluate(champion_model.transform(test_rows)): the model takes the seven plain columns.",
    )
    solution_code = """
champion_model = spark_flavor.load_model(f"models:/{MODEL_NAME}@champion")
champion_auc = evaluator.evaluate(champion_model.transform(test_rows))
"""

    def evaluate(self, champion_auc: object = None) -> CheckResult:
        if is_blank(champion_auc):
            return not_attempted("champion_auc is still blank: set it to the AUC of the model loaded by its alias.")
        if isinstance(champion_auc, bool) or not isinstance(champion_auc, numbers.Real):
            return incorrect(f"champion_auc is a {type(champion_auc).__name__}, not a number: pass what evaluator.evaluate(...) returns.")
        value = float(champion_auc)
        if not math.isfinite(value) or not 0.0 <= value <= 1.0:
            return incorrect(f"champion_auc is {value}, outside 0…1: pass the evaluator's AUC unchanged.")
        client = MlflowClient()
        aliases = model_aliases(client)
        if aliases is None:
            return missing_model(client)
        if CHAMPION not in aliases:
            return alias_case_mistake(aliases, CHAMPION) or incorrect("No version has the alias 'champion' yet: run the cell of step 6.")
        aucs = version_aucs(client)
        number = aliases[CHAMPION]
        if number not in aucs:
            return incorrect(f"The champion (version {number}) has no run with an AUC to compare with.")
        if abs(value - aucs[number]) <= AUC_TOLERANCE:
            return correct(f"The champion (version {number}) scores AUC {value:.3f} on the test rows, as its run recorded.")
        other = next((n for n, auc in aucs.items() if abs(value - auc) <= AUC_TOLERANCE), None)
        if other is not None:
            return incorrect(f"{value:.3f} is the AUC of version {other}, but the champion is version {number}: load models:/{MODEL_NAME}@champion.")
        return incorrect(
            f"champion_auc is {value:.3f}, but the champion (version {number}) scored {aucs[number]:.3f} when it was "
            "trained: score test_rows (not the training rows), with the AUC evaluator on the loaded model."
        )


class PromoteChallenger(Exercise):
    """q4: challenger compared with champion; champion ends on the best version, challenger on another."""

    key = "q4"
    title = "Compare, then promote"
    hints = (
        "client.set_registered_model_alias(MODEL_NAME, 'challenger', best_version.version), then load "
        "models:/...@challenger and score it like the champion.",
        "If the challenger scores higher: champion -> challenger's version, challenger -> the old champion's version.",
    )
    solution_code = """
client.set_registered_model_alias(MODEL_NAME, "challenger", best_version.version)
challenger_model = spark_flavor.load_model(f"models:/{MODEL_NAME}@challenger")
challenger_auc = evaluator.evaluate(challenger_model.transform(test_rows))
if challenger_auc > champion_auc + TIE:
    old = client.get_model_version_by_alias(MODEL_NAME, "champion").version
    client.set_registered_model_alias(MODEL_NAME, "champion", best_version.version)
    client.set_registered_model_alias(MODEL_NAME, "challenger", old)
"""

    def evaluate(self) -> CheckResult:
        client = MlflowClient()
        aliases = model_aliases(client)
        if aliases is None:
            return missing_model(client)
        mistake = alias_case_mistake(aliases, CHAMPION) or alias_case_mistake(aliases, CHALLENGER)
        if mistake:
            return mistake
        if CHALLENGER not in aliases:
            return not_attempted("No version has the alias 'challenger' yet: set it, compare, then decide.")
        if CHAMPION not in aliases:
            return incorrect("There is a challenger but no champion: run the cell of step 6 that sets 'champion'.")
        champion, challenger = aliases[CHAMPION], aliases[CHALLENGER]
        if champion == challenger:
            return incorrect(f"Both aliases point at version {champion}: after a promotion, give 'challenger' to the old champion.")
        aucs = version_aucs(client)
        if champion not in aucs or challenger not in aucs:
            return incorrect("An alias points at a version without a run AUC: point aliases at versions registered from runs.")
        best = max(aucs.values())
        if aucs[champion] < best - TIE:
            if aucs[challenger] >= best - TIE:
                return incorrect(
                    f"The challenger (version {challenger}, AUC {aucs[challenger]:.3f}) beats the champion (version "
                    f"{champion}, AUC {aucs[champion]:.3f}), but 'champion' was not moved: promote it."
                )
            leader = next(n for n, auc in aucs.items() if auc >= best - TIE)
            return incorrect(
                f"'champion' points at version {champion} (AUC {aucs[champion]:.3f}), but version {leader} scores "
                f"{best:.3f}: a champion should be the best version you have."
            )
        return correct(
            f"champion -> version {champion} (AUC {aucs[champion]:.3f}), challenger -> version {challenger} "
            f"(AUC {aucs[challenger]:.3f}). Loading models:/{MODEL_NAME}@champion now gives version {champion}."
        )


class ChampionLineage(Exercise):
    """q5: the params of the run behind the champion, read through the registry."""

    key = "q5"
    title = "Trace the champion back to its run"
    hints = (
        "client.get_model_version_by_alias(MODEL_NAME, 'champion') gives a ModelVersion; its run_id leads to the run.",
        "champion_params = dict(client.get_run(version.run_id).data.params)",
    )
    solution_code = """
champion_version = client.get_model_version_by_alias(MODEL_NAME, "champion")
champion_params = dict(client.get_run(champion_version.run_id).data.params)
"""

    def evaluate(self, champion_params: object = None) -> CheckResult:
        if is_blank(champion_params):
            return not_attempted("champion_params is still blank: set it to the params dict of the champion's run.")
        if isinstance(champion_params, Run):
            return incorrect("That is the whole Run: take its params, dict(run.data.params).")
        if not isinstance(champion_params, Mapping):
            return incorrect(f"champion_params is a {type(champion_params).__name__}; make it a dict like {{'numTrees': '60', ...}}.")
        given = {str(k).removeprefix("params."): v for k, v in champion_params.items()}
        client = MlflowClient()
        aliases = model_aliases(client)
        if aliases is None:
            return missing_model(client)
        if CHAMPION not in aliases:
            return incorrect("No version has the alias 'champion': run the cells of steps 6 and 7 first.")
        versions = {int(v.version): v for v in registered_versions(client)}
        runs = {n: version_run(v, client) for n, v in versions.items()}
        number = aliases[CHAMPION]
        stored = runs[number].data.params if runs.get(number) else {}
        if "AUC" in given and "numTrees" not in given:
            return incorrect("Those are the run's metrics; lineage here asks for its params (run.data.params).")
        for name in ("numTrees", "maxDepth"):
            if name not in given:
                return incorrect(f"champion_params has no {name!r}: take all the params of the champion's run.")
        unknown = sorted(k for k in given if k not in stored)
        if unknown:
            return incorrect(f"{unknown[0]!r} is not a param of the champion's run: copy run.data.params, do not retype it.")
        if all(same_param(given[k], stored[k]) for k in given):
            name = runs[number].info.run_name  # type: ignore[union-attr]
            return correct(f"Version {number} ← run '{name}': numTrees={stored['numTrees']}, maxDepth={stored['maxDepth']}.")
        for other, run in runs.items():
            if other != number and run is not None and all(same_param(v, run.data.params.get(k)) for k, v in given.items()):
                role = next((a for a, n in aliases.items() if n == other), "another version")
                return incorrect(
                    f"These are the settings of version {other} ({role}), not of the champion (version {number}): "
                    "start from client.get_model_version_by_alias(MODEL_NAME, 'champion')."
                )
        wrong = next(k for k in given if not same_param(given[k], stored[k]))
        return incorrect(f"{wrong} is {given[wrong]!r}, but the champion's run logged {stored[wrong]!r}.")


q1 = RegisterBest()
q2 = DescribeAndTag()
q3 = ChampionAuc()
q4 = PromoteChallenger()
q5 = ChampionLineage()
