"""`spine list`: what can run, and what each workflow needs from the tier."""

from __future__ import annotations

import click

from spine_basic.cli.context import current_settings, current_tier, run_cli_errors
from spine_core.capabilities import INTRODUCED_BY
from spine_core.registry import Registry, load_pipeline_modules
from spine_core.workflow import REQUIRED_CAPABILITY, StepKind, Workflow

KIND_LABELS = {
    StepKind.LAMBDA: "Step.lambda_",
    StepKind.PIPELINE: "Step.pipeline",
    StepKind.CHOICE: "Step.choice",
    StepKind.MAP: "Step.map",
    StepKind.WAIT: "Step.wait",
    StepKind.WORKFLOW: "Step.workflow",
}


def workflow_support(workflow: Workflow, capabilities: frozenset) -> tuple[list[str], list[str]]:
    """(step kinds the workflow uses, `kind needs distribution` for those the tier lacks)."""
    kinds = sorted(workflow.kinds(), key=lambda k: list(StepKind).index(k))
    missing = [
        f"{KIND_LABELS[k]} needs {INTRODUCED_BY[REQUIRED_CAPABILITY[k]]}"
        for k in kinds
        if REQUIRED_CAPABILITY[k] not in capabilities
    ]
    return [KIND_LABELS[k] for k in kinds], missing


@click.command("list")
@run_cli_errors
def list_() -> None:
    """List pipelines and workflows, each workflow's versions, and whether this tier runs it."""
    tier = current_tier()
    registry = Registry()
    load_pipeline_modules(registry, current_settings(tier).options.get("pipeline_modules", ""))
    pipelines = registry.pipelines()
    workflows = registry.workflows()
    width = max((len(n) for n in [*pipelines, *workflows]), default=10) + 2
    click.echo("Pipelines:")
    if not pipelines:
        click.echo("  (none registered)")
    for name, defn in sorted(pipelines.items()):
        first = (defn.description or "").strip().splitlines()
        click.echo(f"  {name:<{width}}{first[0] if first else ''}".rstrip())
    click.echo("")
    supported = ", ".join(
        KIND_LABELS[k] for k in StepKind if REQUIRED_CAPABILITY[k] in tier.capabilities
    )
    click.echo(f"Workflows (tier {tier.name} supports: {supported}):")
    if not workflows:
        click.echo("  (none registered)")
    for name, workflow in sorted(workflows.items()):
        first = (workflow.description or "").strip().splitlines()
        click.echo(f"  {name:<{width}}{first[0] if first else ''}".rstrip())
        versions = registry.versions(name)
        label = "version" if len(versions) == 1 else "versions"
        shown = ", ".join(map(str, versions))
        click.echo(f"  {'':<{width}}{label} {shown} (new runs start on {workflow.version})")
        used, missing = workflow_support(workflow, tier.capabilities)
        verdict = f"runs on {tier.name}" if not missing else "cannot run: " + "; ".join(missing)
        click.echo(f"  {'':<{width}}needs {', '.join(used)} -> {verdict}")
